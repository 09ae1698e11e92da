//! `lighter import`.

use super::Context;
use crate::cli::ImportArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: ImportArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter import").into())
}
