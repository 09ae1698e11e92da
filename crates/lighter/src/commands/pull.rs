//! `lighter pull`.

use super::Context;
use crate::cli::PullArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: PullArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter pull").into())
}
