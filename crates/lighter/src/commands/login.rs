//! `lighter login`.

use super::Context;
use crate::cli::LoginArgs;
use crate::diagnostics::NotImplemented;
use std::process::ExitCode;

pub fn run(_ctx: &Context, _args: LoginArgs) -> anyhow::Result<ExitCode> {
    Err(NotImplemented("lighter login").into())
}
