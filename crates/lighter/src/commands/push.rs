//! `lighter push`.

use super::Context;
use crate::cli::PushArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: PushArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter push").into())
}
