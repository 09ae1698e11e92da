//! `lighter save`.

use super::Context;
use crate::cli::SaveArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: SaveArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter save").into())
}
