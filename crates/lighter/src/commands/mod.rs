//! One module per verb; `dispatch` routes parsed arguments to them.

use crate::cli::Command;
use std::path::PathBuf;
use std::process::ExitCode;

mod analyze;
mod attribute;
mod build;
mod build_lint;
mod call;
mod diff;
mod explore;
mod history;
mod images;
mod import;
mod inspect;
mod lint;
mod lint_config;
mod lint_format;
mod load;
mod login;
mod prune;
mod pull;
mod push;
mod registry;
mod report;
mod report_diff;
mod rmi;
mod run;
mod save;
mod system;
mod tag;
mod tls_check;

/// Settings shared by every command, resolved from CLI flags and the environment.
#[derive(Debug, Clone)]
pub struct Context {
    /// The store root given by `--root` / `$LIGHTER_ROOT`; `None` means the default root.
    pub root: Option<PathBuf>,
    pub debug: bool,
}

impl Context {
    pub fn new(root: Option<PathBuf>, debug: bool) -> Self {
        Context { root, debug }
    }

    /// Opens the store (creating it when missing).
    pub fn store(&self) -> anyhow::Result<lighter_store::Store> {
        let root = self.root.clone().unwrap_or_else(default_root);
        if self.debug {
            eprintln!("debug: store at {}", root.display());
        }
        Ok(lighter_store::Store::open(&root)?.with_settings(store_settings()?))
    }
}

/// Told while an exclusive hold of the store waits for other processes.
pub fn waiting_note(pids: &[u32]) {
    let who: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
    eprintln!(
        "waiting for other lighter processes using the store to finish{}",
        if who.is_empty() {
            String::new()
        } else {
            format!(" (pids {})", who.join(", "))
        }
    );
}

/// Process-wide settings from the environment, applied before any command runs:
/// `LIGHTER_MAX_EXPANSION`, the ratio past which decompressed layers and archives are refused as
/// bombs (0 lifts the limit; see `lighter_store::compress::Expansion`).
pub fn apply_process_settings() -> anyhow::Result<()> {
    let Some(v) = std::env::var("LIGHTER_MAX_EXPANSION")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        return Ok(());
    };
    let ratio = v.parse::<u64>().map_err(|_| {
        anyhow::anyhow!("LIGHTER_MAX_EXPANSION={v}: expected a whole number (0 lifts the limit)")
    })?;
    lighter_store::compress::set_max_expansion(ratio);
    Ok(())
}

/// The store's settings from the environment: `SOURCE_DATE_EPOCH`, `LIGHTER_GZIP_THREADS` and
/// `LIGHTER_SNAPSHOTTER` (overlay, copy or auto). A value that does not parse is refused.
pub fn store_settings() -> anyhow::Result<lighter_store::Settings> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let number = |name: &str| -> anyhow::Result<Option<i64>> {
        var(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| anyhow::anyhow!("{name}={v}: expected a whole number"))
            })
            .transpose()
    };
    let snapshotter = match var("LIGHTER_SNAPSHOTTER") {
        Some(v) => v
            .parse()
            .map_err(|e| anyhow::anyhow!("LIGHTER_SNAPSHOTTER={e}"))?,
        None => Default::default(),
    };
    let gzip_threads = match number("LIGHTER_GZIP_THREADS")? {
        Some(n) if n > 0 => Some(n as usize),
        Some(n) => anyhow::bail!("LIGHTER_GZIP_THREADS={n}: expected at least 1"),
        None => None,
    };
    Ok(lighter_store::Settings {
        source_date_epoch: number("SOURCE_DATE_EPOCH")?,
        gzip_threads,
        snapshotter,
    })
}

/// `LIGHTER_COPY=overlay` writes COPY layers through the overlay copy (the fallback) instead of
/// from a plan of the copy.
pub fn plan_copies() -> anyhow::Result<bool> {
    match std::env::var("LIGHTER_COPY").ok().as_deref() {
        None | Some("") | Some("planned") | Some("plan") => Ok(true),
        Some("overlay") => Ok(false),
        Some(other) => anyhow::bail!("LIGHTER_COPY={other}: expected planned or overlay"),
    }
}

pub fn dispatch(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Build(a) => build::run(ctx, a),
        Command::Images(a) => images::run(ctx, a),
        Command::History(a) => history::run(ctx, a),
        Command::Inspect(a) => inspect::run(ctx, a),
        Command::Tag(a) => tag::run(ctx, a),
        Command::Rmi(a) => rmi::run(ctx, a),
        Command::Load(a) => load::run(ctx, a),
        Command::Save(a) => save::run(ctx, a),
        Command::Import(a) => import::run(ctx, a),
        Command::Pull(a) => pull::run(ctx, a),
        Command::Push(a) => push::run(ctx, a),
        Command::Login(a) => login::run(ctx, a),
        Command::Logout(a) => login::logout(ctx, a),
        Command::Prune(a) => prune::run(ctx, a),
        Command::Analyze(a) => analyze::run(ctx, a),
        Command::Diff(a) => diff::run(ctx, a),
        Command::Lint(a) => lint::run(ctx, a),
        Command::Run(a) => run::run(ctx, a),
        Command::System(crate::cli::SystemCommand::Check(a)) => system::check(ctx, a),
    }
}

/// `$LIGHTER_ROOT`, else `/var/lib/lighter` for root, else `$XDG_DATA_HOME/lighter` (or
/// `~/.local/share/lighter`). Settings from the environment are read here, at the edge; the
/// libraries are given the path.
fn default_root() -> PathBuf {
    if let Some(r) = std::env::var_os("LIGHTER_ROOT") {
        return PathBuf::from(r);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/lighter");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("lighter");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/share/lighter")
}
