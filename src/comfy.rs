//! Direct ComfyUI client: upload, queue, follow (websocket with /history fallback), fetch
//! outputs. (Being implemented: issue 3.)

use crate::cli::SendArgs;
use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::send::Prepared;

/// `comfyctl send` to a ComfyUI server.
pub async fn send(_args: &SendArgs, _prepared: Prepared, _reporter: &Reporter) -> Result<i32> {
    Err(Error::Usage("sending to ComfyUI is not built yet".into()))
}
