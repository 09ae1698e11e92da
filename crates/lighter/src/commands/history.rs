//! `lighter history`.

use super::Context;
use crate::cli::HistoryArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: HistoryArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter history").into())
}
