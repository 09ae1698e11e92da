//! The `lighter` binary: parse arguments, dispatch to `commands/<verb>.rs`, render errors for people.

mod cli;
mod commands;
mod diagnostics;
mod printer;
mod tty;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // The RUN sandbox re-executes this binary as its init; that path never returns.
    lighter_sandbox::init_hook();
    let cli = cli::Cli::parse();
    let ctx = commands::Context::new(cli.root.clone(), cli.debug);
    match commands::dispatch(&ctx, cli.command) {
        Ok(code) => code,
        Err(err) => diagnostics::report(&err),
    }
}
