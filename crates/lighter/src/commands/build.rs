//! `lighter build`.

use super::Context;
use crate::cli::BuildArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: BuildArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter build").into())
}
