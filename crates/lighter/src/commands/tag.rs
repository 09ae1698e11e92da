//! `lighter tag`.

use super::Context;
use crate::cli::TagArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: TagArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter tag").into())
}
