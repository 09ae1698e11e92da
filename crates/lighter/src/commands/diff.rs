//! `lighter diff`.

use super::Context;
use crate::cli::DiffArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: DiffArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter diff").into())
}
