//! `lighter load`.

use super::Context;
use crate::cli::LoadArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: LoadArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter load").into())
}
