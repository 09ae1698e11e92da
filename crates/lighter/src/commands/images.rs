//! `lighter images`.

use super::Context;
use crate::cli::ImagesArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: ImagesArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter images").into())
}
