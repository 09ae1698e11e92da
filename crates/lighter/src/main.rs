//! The `lighter` binary: parse arguments, dispatch to `commands/<verb>.rs`, render errors for people.

/// `print!` that ends the command quietly when standard output is a closed pipe
/// (`lighter images | head -1`), as a tool killed by SIGPIPE would, instead of panicking.
macro_rules! out {
    ($($t:tt)*) => { $crate::printer::out(format_args!($($t)*)) };
}

/// `println!` with [`out!`]'s handling of a closed pipe.
macro_rules! outln {
    () => { $crate::printer::out(format_args!("\n")) };
    ($($t:tt)*) => { $crate::printer::out(format_args!("{}\n", format_args!($($t)*))) };
}

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
    stop_on_signals();
    let cli = cli::Cli::parse();
    let ctx = commands::Context::new(cli.root.clone(), cli.debug);
    if let Err(err) = commands::apply_process_settings() {
        return diagnostics::report(&err);
    }
    match commands::dispatch(&ctx, cli.command) {
        Ok(code) => code,
        Err(err) => diagnostics::report(&err),
    }
}

/// SIGINT and SIGTERM stop the command as a kill would, but tidily: this process's mounts are
/// unmounted and its temporary files removed, and its RUN step dies with it (the sandbox init
/// has `PR_SET_PDEATHSIG`). What it committed stays committed; nothing half-written is visible.
fn stop_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            lighter_store::session::close_all();
            eprintln!(
                "lighter: stopped by {}",
                if sig == SIGINT { "SIGINT" } else { "SIGTERM" }
            );
            std::process::exit(128 + sig);
        }
    });
}
