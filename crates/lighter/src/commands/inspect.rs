//! `lighter inspect`.

use super::Context;
use crate::cli::InspectArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: InspectArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter inspect").into())
}
