//! One file per subcommand. Each turns its parsed arguments into settings, runs the layers below
//! it, and returns the exit code of a run that did not fail; `main` prints errors.

pub mod batch;
pub mod cancel;
pub mod convert;
pub mod diff;
pub mod normalize;
pub mod replay;
pub mod schema;
pub mod send;
pub mod status;
pub mod verify;
