//! `lighter prune`.

use super::Context;
use crate::cli::PruneArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: PruneArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter prune").into())
}
