//! `lighter run`.

use super::Context;
use crate::cli::RunArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: RunArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter run").into())
}
