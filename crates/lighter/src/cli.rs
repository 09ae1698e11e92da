//! Command-line arguments: docker-compatible verbs and flags, parsed with clap.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// lighter: a daemonless, Docker-compatible image builder that shows where the bytes go.
#[derive(Debug, Parser)]
#[command(name = "lighter", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Store root (default: $LIGHTER_ROOT, /var/lib/lighter for root, else $XDG_DATA_HOME/lighter).
    #[arg(long, global = true, env = "LIGHTER_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print debug messages to stderr.
    #[arg(long, global = true)]
    pub debug: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile.
    Build(BuildArgs),
    /// List images.
    Images(ImagesArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Display detailed information on images.
    Inspect(InspectArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Remove one or more images.
    Rmi(RmiArgs),
    /// Load an image from a tar archive or STDIN.
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// Log in to a registry.
    Login(LoginArgs),
    /// Log out from a registry.
    Logout(LogoutArgs),
    /// Remove unused data (unreferenced blobs, build cache).
    Prune(PruneArgs),
    /// Show where an image's bytes go: layers, files, waste, efficiency.
    Analyze(AnalyzeArgs),
    /// Compare two images: files, sizes, config, layers.
    Diff(DiffArgs),
    /// Check a Dockerfile against BuildKit's rules and size-reduction rules.
    Lint(LintArgs),
    /// Run a command in a new container from an image.
    Run(RunArgs),
    /// Manage the store (`system check [--repair]`).
    #[command(subcommand)]
    System(SystemCommand),
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Check that the store is sound: blobs, images, names, layers, the cache and chunk indexes.
    /// Exit codes as fsck's: 0 sound, 1 damage found and repaired, 4 damage found and not repaired.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Remove what is broken or unreachable (never what is sound).
    #[arg(long)]
    pub repair: bool,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `build --network`: the RUN steps' network.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum BuildNetwork {
    Default,
    Host,
    None,
}

/// `run --network`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RunNetwork {
    Host,
    None,
}

/// `save --format`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SaveFormatArg {
    /// docker save's archive
    Docker,
    /// an OCI layout tar
    Oci,
    /// an OCI layout directory (-o DIR)
    OciDir,
}

/// `lint --format`: hadolint's formats (`tty` is `text`).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LintFormat {
    #[value(alias = "tty")]
    Text,
    Json,
    Sarif,
    Checkstyle,
    Codeclimate,
    #[value(name = "gitlab_codeclimate")]
    GitlabCodeclimate,
    Junit,
}

/// `lint --failure-threshold`: the lowest severity that fails the run (hadolint's levels; lighter's
/// findings are warnings or errors, and `info` and `style` fail on warnings too).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FailureThreshold {
    Error,
    Warning,
    Info,
    Style,
    Ignore,
}

impl LintFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LintFormat::Text => "text",
            LintFormat::Json => "json",
            LintFormat::Sarif => "sarif",
            LintFormat::Checkstyle => "checkstyle",
            LintFormat::Codeclimate => "codeclimate",
            LintFormat::GitlabCodeclimate => "gitlab_codeclimate",
            LintFormat::Junit => "junit",
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Progress {
    Auto,
    Tty,
    Plain,
    Rawjson,
    Quiet,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Build context directory, or `-` to read a Dockerfile from STDIN with no context.
    #[arg(value_name = "PATH|-")]
    pub context: String,
    /// Name of the Dockerfile (default: PATH/Dockerfile); `-` reads it from STDIN.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<String>,
    /// Name and optionally a tag (format: name:tag); repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Do not use cache when building the image.
    #[arg(long)]
    pub no_cache: bool,
    /// Always check the registry for newer versions of the images the build reads.
    #[arg(long)]
    pub pull: bool,
    /// Push the image to its registry (the -t names), as -o type=registry.
    #[arg(long)]
    pub push: bool,
    /// Suppress the build output and print the image ID on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// Set type of progress output.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
    /// Output destination (format: type=local,dest=path); types: image, docker, oci, local, tar.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,
    /// Set target platform for build (only linux/amd64 is supported).
    #[arg(long)]
    pub platform: Option<String>,
    /// Set metadata for an image (KEY=VALUE).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Write the image ID to the file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Secret to expose to the build (format: id=mysecret[,src=/local/secret] or id=x,env=VAR).
    #[arg(long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,
    /// SSH agent socket or keys to expose to the build (format: default|<id>[=<socket>|<key>[,<key>]]).
    #[arg(long = "ssh", value_name = "SPEC")]
    pub ssh: Vec<String>,
    /// Set the networking mode for the RUN instructions during build.
    #[arg(long, value_enum, default_value = "default")]
    pub network: BuildNetwork,
    /// Add a custom host-to-IP mapping (format: host:ip) to the RUN instructions' /etc/hosts.
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,
    /// Size of /dev/shm for the RUN instructions (e.g. 128m; default 64m).
    #[arg(long = "shm-size", value_name = "BYTES")]
    pub shm_size: Option<String>,
    /// Allow extra privileged entitlement (security.insecure: RUN --security=insecure runs
    /// privileged; network.host is accepted, the host network being the default here).
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// Ulimit options for the RUN instructions (format: name=soft[:hard], e.g. nofile=1024:2048).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// Build caches to read (type=registry,ref=REF or type=local,src=DIR; repeatable, first hit wins).
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Where to write the build cache (type=registry,ref=REF or type=local,dest=DIR, with
    /// mode=min|max and ignore-error=true).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Additional build contexts (NAME=DIR or NAME=docker-image://REF).
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// Check the Dockerfile and report warnings and errors without building.
    #[arg(long)]
    pub check: bool,
    /// What to do instead of building, as buildx: build (default), check, outline (the build
    /// arguments, secrets and SSH agents the target uses), targets (the stages and their
    /// descriptions); `,format=json` for JSON.
    #[arg(long, value_name = "METHOD[,format=text|json]")]
    pub call: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Filter by repository[:tag].
    pub reference: Option<String>,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: table (default) or json.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Image (store reference or ID, docker-archive file, OCI layout dir or archive).
    pub image: String,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output: table, json, or a template.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images to inspect.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Format output using a template or `json`.
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Force removal of the image.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Archive format.
    #[arg(long, value_enum, default_value = "docker")]
    pub format: SaveFormatArg,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Rootfs tarball (optionally compressed), or `-` for STDIN.
    pub file: String,
    /// Repository and tag for the new image.
    pub reference: Option<String>,
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR).
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    pub reference: String,
    /// Set platform if the image is multi-platform (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    pub reference: String,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry (Docker Hub when omitted).
    pub server: Option<String>,
    /// Username.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (insecure: prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (Docker Hub when omitted).
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused build cache, not just dangling entries.
    #[arg(short, long)]
    pub all: bool,
    /// Amount of build cache storage to keep (e.g. 5GB).
    #[arg(long)]
    pub keep_storage: Option<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Image (store reference or ID, docker-archive file, OCI layout dir or archive).
    pub image: String,
    /// CI mode: check thresholds and exit non-zero when one fails.
    #[arg(long)]
    pub ci: bool,
    /// Lowest allowed efficiency (0..1).
    #[arg(long)]
    pub lowest_efficiency: Option<f64>,
    /// Highest allowed wasted bytes (e.g. 20MB).
    #[arg(long)]
    pub highest_wasted_bytes: Option<String>,
    /// Highest allowed wasted bytes as a fraction of the image (0..1).
    #[arg(long)]
    pub highest_user_wasted_percent: Option<f64>,
    /// CI configuration (.dive-ci style YAML).
    #[arg(long)]
    pub ci_config: Option<PathBuf>,
    /// Write the JSON report to FILE (`-` for stdout).
    #[arg(long)]
    pub json: Option<String>,
    /// Write a SARIF report to FILE.
    #[arg(long)]
    pub sarif: Option<PathBuf>,
    /// Write a JUnit XML report to FILE.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report to FILE.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Explore the image interactively (TUI).
    #[arg(short, long)]
    pub interactive: bool,
    /// How many top offenders to list.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// For a registry image with several platforms: which one (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Read an archive's uncompressed layers in place, headers only, without hashing their
    /// contents against the image's digests (no number of the analysis depends on them).
    #[arg(long)]
    pub no_verify: bool,
    /// The Dockerfile the image was built from: each layer is attributed to its line.
    #[arg(long, value_name = "PATH")]
    pub dockerfile: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub image_a: String,
    pub image_b: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Read archives' uncompressed layers in place without hashing their contents (as analyze's).
    #[arg(long)]
    pub no_verify: bool,
    /// How many directories to list by size delta.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Also write a self-contained HTML page comparing the two images by directory.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Dockerfile to check (default: ./Dockerfile; `-` for STDIN).
    pub file: Option<String>,
    /// Dockerfile to check, as `docker build -f` names it (then FILE is the context directory).
    #[arg(short = 'f', long = "file", value_name = "DOCKERFILE")]
    pub dockerfile: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: LintFormat,
    /// The lowest severity that makes the exit code 1 (default: error, or the config file's).
    #[arg(long, value_enum)]
    pub failure_threshold: Option<FailureThreshold>,
    /// A rule to skip: lighter's name or hadolint's code (DL3009); repeatable.
    #[arg(long, value_name = "RULE")]
    pub ignore: Vec<String>,
    /// A configuration file (default: ./.lighter.toml's [lint], else ./.hadolint.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// An image built from this Dockerfile (store, archive or registry): size findings get the
    /// bytes they cost in it.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Apply the safe fixes in place: keyword casing, JSON form for plain CMD/ENTRYPOINT,
    /// --no-install-recommends.
    #[arg(long)]
    pub fix: bool,
    /// Write the multi-stage rewrite of a single-stage Dockerfile (MakeMultiStage) to FILE.
    #[arg(long, value_name = "FILE")]
    pub write_multi_stage: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Automatically remove the container when it exits (containers are always ephemeral in lighter).
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Connect a container to a network.
    #[arg(long, value_enum, default_value = "host")]
    pub network: RunNetwork,
    /// Add a custom host-to-IP mapping (format: host:ip).
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,
    /// Size of /dev/shm (e.g. 128m; default 64m).
    #[arg(long = "shm-size", value_name = "BYTES")]
    pub shm_size: Option<String>,
    /// Ulimit options (format: name=soft[:hard]).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Keep STDIN open (accepted for compatibility).
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY (accepted for compatibility).
    #[arg(short, long)]
    pub tty: bool,
    /// Image to run.
    pub image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
