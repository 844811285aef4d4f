//! RunPod serverless client. (Being implemented: issue 4.)

use crate::cli::{CancelArgs, SendArgs, StatusArgs};
use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::send::Prepared;

/// `comfyctl send --endpoint`.
pub async fn send(_args: &SendArgs, _prepared: Prepared, _reporter: &Reporter) -> Result<i32> {
    Err(Error::Usage("sending to RunPod is not built yet".into()))
}

/// `comfyctl status JOB_ID`.
pub async fn status(_args: &StatusArgs) -> Result<i32> {
    Err(Error::Usage("status is not built yet".into()))
}

/// `comfyctl cancel JOB_ID`.
pub async fn cancel(_args: &CancelArgs) -> Result<i32> {
    Err(Error::Usage("cancel is not built yet".into()))
}
