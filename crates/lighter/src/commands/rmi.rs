//! `lighter rmi`.

use super::Context;
use crate::cli::RmiArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: RmiArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter rmi").into())
}
