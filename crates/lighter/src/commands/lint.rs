//! `lighter lint`.

use super::Context;
use crate::cli::LintArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: LintArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter lint").into())
}
