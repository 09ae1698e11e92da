//! `lighter analyze`.

use super::Context;
use crate::cli::AnalyzeArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter analyze").into())
}
