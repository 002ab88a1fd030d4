//! Command-line definitions (clap). Flags, names and usage lines follow docker's CLI so that
//! `alias docker=berth` works for image workflows.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::cli_ext::*;

const HELP_TEMPLATE: &str = "\nUsage:  {usage}\n\n{about}\n\n{all-args}{after-help}";
const TOP_AFTER: &str = "\nRun 'berth COMMAND --help' for more information on a command.\n";

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "A daemonless, Docker-compatible tool for container images",
    override_usage = "berth [OPTIONS] COMMAND",
    help_template = HELP_TEMPLATE,
    after_help = TOP_AFTER,
    disable_version_flag = true,
    subcommand_value_name = "COMMAND",
    subcommand_help_heading = "Commands",
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Location of the image store
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Location of client config files (config.json)
    #[arg(long, global = true, env = "DOCKER_CONFIG", value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(short = 'l', long, value_name = "LEVEL", value_parser = ["debug", "info", "warn", "error", "fatal"], hide_possible_values = true)]
    pub log_level: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Print version information and quit
    #[arg(short = 'v', long)]
    pub version: bool,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Build an image from a Dockerfile
    #[command(override_usage = "berth build [OPTIONS] PATH | URL | -")]
    Build(BuildArgs),
    /// Manage builds
    #[command(subcommand)]
    Builder(BuilderCmd),
    /// Docker Buildx compatibility (`buildx build`)
    #[command(subcommand)]
    Buildx(BuildxCmd),
    /// Copy files/folders between a container and the local filesystem
    #[command(
        override_usage = "berth cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
    )]
    Cp(ContainerCpArgs),
    /// Generate the shell completion script (bash, zsh or fish)
    #[command(override_usage = "berth completion bash|zsh|fish")]
    Completion(CompletionArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Create a new container
    #[command(disable_help_flag = true, override_usage = "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Create(RunArgs),
    /// Inspect changes to files or directories on a container's filesystem
    #[command(override_usage = "berth diff CONTAINER")]
    Diff(DiffArgs),
    /// Developer tools
    #[command(subcommand, hide = true)]
    Debug(DebugCmd),
    /// Get real time events from berth
    #[command(override_usage = "berth events [OPTIONS]")]
    Events(EventsArgs),
    /// Execute a command in a running container
    #[command(override_usage = "berth exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
    Exec(ExecArgs),
    /// Export a container's filesystem as a tar archive
    #[command(override_usage = "berth export [OPTIONS] CONTAINER")]
    Export(ExportArgs),
    /// Run health checks
    #[command(subcommand)]
    Healthcheck(HealthcheckCmd),
    /// Show the history of an image
    #[command(override_usage = "berth history [OPTIONS] IMAGE")]
    History(HistoryArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// List images
    #[command(override_usage = "berth images [OPTIONS] [REPOSITORY[:TAG]]")]
    Images(ImagesArgs),
    /// Display system-wide information
    #[command(override_usage = "berth info [OPTIONS]")]
    Info(InfoArgs),
    /// Import the contents from a tarball to create a filesystem image
    #[command(override_usage = "berth import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]")]
    Import(ImportArgs),
    /// Return low-level information on images and containers
    #[command(override_usage = "berth inspect [OPTIONS] NAME|ID [NAME|ID...]")]
    Inspect(InspectArgs),
    /// Kill one or more running containers
    #[command(override_usage = "berth kill [OPTIONS] CONTAINER [CONTAINER...]")]
    Kill(KillArgs),
    /// Load an image from a tar archive or STDIN
    #[command(override_usage = "berth load [OPTIONS]")]
    Load(LoadArgs),
    /// Log in to a registry
    #[command(override_usage = "berth login [OPTIONS] [SERVER]")]
    Login(LoginArgs),
    /// Log out from a registry
    #[command(override_usage = "berth logout [SERVER]")]
    Logout(LogoutArgs),
    /// Fetch the logs of a container
    #[command(override_usage = "berth logs [OPTIONS] CONTAINER")]
    Logs(LogsArgs),
    /// List containers
    #[command(override_usage = "berth ps [OPTIONS]")]
    Ps(PsArgs),
    /// Download an image from a registry
    #[command(override_usage = "berth pull [OPTIONS] NAME[:TAG|@DIGEST]")]
    Pull(PullArgs),
    /// Upload an image to a registry
    #[command(override_usage = "berth push [OPTIONS] NAME[:TAG]")]
    Push(PushArgs),
    /// Pause all processes within one or more containers
    #[command(override_usage = "berth pause CONTAINER [CONTAINER...]")]
    Pause(PauseArgs),
    /// Rename a container
    #[command(override_usage = "berth rename CONTAINER NEW_NAME")]
    Rename(RenameArgs),
    /// Restart one or more containers
    #[command(override_usage = "berth restart [OPTIONS] CONTAINER [CONTAINER...]")]
    Restart(RestartArgs),
    /// Remove one or more containers
    #[command(override_usage = "berth rm [OPTIONS] CONTAINER [CONTAINER...]")]
    Rm(RmArgs),
    /// Remove one or more images
    #[command(override_usage = "berth rmi [OPTIONS] IMAGE [IMAGE...]")]
    Rmi(RmiArgs),
    /// Create and run a new container from an image
    #[command(disable_help_flag = true, override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Run(RunArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    #[command(override_usage = "berth save [OPTIONS] IMAGE [IMAGE...]")]
    Save(SaveArgs),
    /// Search registries for images
    #[command(override_usage = "berth search [OPTIONS] TERM")]
    Search(SearchArgs),
    /// Start one or more stopped containers
    #[command(override_usage = "berth start [OPTIONS] CONTAINER [CONTAINER...]")]
    Start(StartArgs),
    /// Stop one or more running containers
    #[command(override_usage = "berth stop [OPTIONS] CONTAINER [CONTAINER...]")]
    Stop(StopArgs),
    /// Manage berth's store
    #[command(subcommand)]
    System(SystemCmd),
    /// Display a live stream of container(s) resource usage statistics
    #[command(override_usage = "berth stats [OPTIONS] [CONTAINER...]")]
    Stats(StatsArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    #[command(override_usage = "berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]")]
    Tag(TagArgs),
    /// Display the running processes of a container
    #[command(override_usage = "berth top CONTAINER [ps OPTIONS]")]
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    #[command(override_usage = "berth unpause CONTAINER [CONTAINER...]")]
    Unpause(PauseArgs),
    /// Show the berth version information
    Version(VersionArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Write man pages generated from the command definitions
    #[command(name = "__man", hide = true)]
    Man(ManArgs),
    /// Block until one or more containers stop, then print their exit codes
    #[command(override_usage = "berth wait CONTAINER [CONTAINER...]")]
    Wait(WaitArgs),
    /// Create a new image from a container's changes
    #[command(override_usage = "berth commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]")]
    Commit(CommitArgs),
    /// Internal: container supervisor (started by `run -d`)
    #[command(name = "__supervise", hide = true)]
    Supervise(InternalArgs),
    /// Internal: minimal init for `run --init`
    #[command(name = "__init", hide = true)]
    Init(InternalArgs),
}

#[derive(Debug, Args)]
pub struct InternalArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum ImageCmd {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Copy an image between transports (registry, store, OCI layout, archives)
    #[command(override_usage = "berth image copy [OPTIONS] SOURCE DESTINATION")]
    Copy(ImageCopyArgs),
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum ContainerCmd {
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(ContainerCpArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(RunArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(alias = "ps", alias = "list")]
    Ls(PsArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// Remove all stopped containers
    Prune(ContainerPruneArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(RestartArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Block until one or more containers stop
    Wait(WaitArgs),
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum BuilderCmd {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Remove build cache
    Prune(BuilderPruneArgs),
    /// Show build cache disk usage
    Du(BuilderDuArgs),
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum BuildxCmd {
    /// Start a build
    Build(BuildArgs),
}

#[derive(Debug, Subcommand)]
pub enum SystemCmd {
    /// Verify every blob and reference of the store
    Check(SystemCheckArgs),
    /// Show disk usage
    Df(SystemDfArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Get real time events from berth
    Events(EventsArgs),
}

#[derive(Debug, Args, Clone)]
pub struct InfoArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum HealthcheckCmd {
    /// Run a container's health check once
    Run(HealthcheckRunArgs),
}

#[derive(Debug, Subcommand)]
pub enum DebugCmd {
    /// Print a Dockerfile's parse tree in BuildKit's dump format
    #[command(name = "dockerfile-ast")]
    DockerfileAst {
        /// Path to the Dockerfile ("-" for stdin)
        file: PathBuf,
    },
}

// ------------------------------------------------------------------------------------------------
// Image commands

#[derive(Debug, Args, Clone)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM", value_name = "string")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Maximum concurrent layer downloads
    #[arg(long, default_value_t = 3, value_name = "int")]
    pub max_concurrent_downloads: usize,
    /// Skip image verification (accepted for compatibility; digests are always verified)
    #[arg(long, hide = true)]
    pub disable_content_trust: bool,
    pub name: String,
}

#[derive(Debug, Args, Clone)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Maximum concurrent layer uploads
    #[arg(long, default_value_t = 5, value_name = "int")]
    pub max_concurrent_uploads: usize,
    /// Compression for layers stored uncompressed ("gzip" or "zstd")
    #[arg(long, default_value = "gzip", value_name = "string")]
    pub compression_format: String,
    /// Accepted for compatibility
    #[arg(long, hide = true)]
    pub disable_content_trust: bool,
    pub name: String,
}

#[derive(Debug, Args, Clone)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    pub repository: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct InspectArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    /// Display total file sizes (containers)
    #[arg(short, long)]
    pub size: bool,
    /// Return JSON for specified type
    #[arg(long = "type", value_name = "string")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value = "true", value_name = "bool", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub human: String,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Debug, Args, Clone)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Args, Clone)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "string")]
    pub output: Option<PathBuf>,
    /// Save only the given platform
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long, value_name = "string")]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
    /// Load only the given platform
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long, value_name = "list")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long, value_name = "string")]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    pub source: String,
    pub reference: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ImageCopyArgs {
    /// Copy every platform of a multi-platform image
    #[arg(short, long)]
    pub all: bool,
    /// Platform to copy from a multi-platform image
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Recompress layers ("gzip" or "zstd")
    #[arg(long, value_name = "string")]
    pub dest_compress_format: Option<String>,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
    /// Maximum concurrent blob transfers
    #[arg(long, default_value_t = 3, value_name = "int")]
    pub max_concurrent: usize,
    pub source: String,
    pub destination: String,
}

#[derive(Debug, Args, Clone)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long, value_name = "string")]
    pub username: Option<String>,
    /// Password
    #[arg(short, long, value_name = "string")]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    pub server: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct SearchArgs {
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(long, default_value_t = 25, value_name = "int")]
    pub limit: usize,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    pub term: String,
}

// ------------------------------------------------------------------------------------------------
// Build

#[derive(Debug, Args, Clone, Default)]
pub struct BuildArgs {
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long, value_name = "list")]
    pub add_host: Vec<String>,
    /// Set build-time variables
    #[arg(long, value_name = "list")]
    pub build_arg: Vec<String>,
    /// Additional build contexts (e.g., name=path)
    #[arg(long, value_name = "list")]
    pub build_context: Vec<String>,
    /// External cache sources (e.g., "type=local,src=path/to/dir")
    #[arg(long, value_name = "list")]
    pub cache_from: Vec<String>,
    /// Cache export destinations (e.g., "type=local,dest=path/to/dir")
    #[arg(long, value_name = "list")]
    pub cache_to: Vec<String>,
    /// Shorthand for "--call=check"
    #[arg(long)]
    pub check: bool,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short = 'f', long, value_name = "string")]
    pub file: Option<String>,
    /// Write the image ID to a file
    #[arg(long, value_name = "string")]
    pub iidfile: Option<PathBuf>,
    /// Set metadata for an image
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Shorthand for "--output=type=docker"
    #[arg(long)]
    pub load: bool,
    /// Set the networking mode for the "RUN" instructions during build
    #[arg(long, default_value = "default", value_name = "string")]
    pub network: String,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Do not cache specified stages
    #[arg(long, value_name = "list")]
    pub no_cache_filter: Vec<String>,
    /// Output destination (format: "type=local,dest=path")
    #[arg(short = 'o', long, value_name = "list")]
    pub output: Vec<String>,
    /// Set target platform for build
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM", value_name = "list")]
    pub platform: Option<String>,
    /// Print result of information request (e.g., outline, targets)
    #[arg(long, value_name = "string")]
    pub print: Option<String>,
    /// Set type of progress output ("auto", "plain", "tty", "quiet", "rawjson")
    #[arg(long, env = "BUILDKIT_PROGRESS", default_value = "auto", value_name = "string")]
    pub progress: String,
    /// Always attempt to pull all referenced images
    #[arg(long)]
    pub pull: bool,
    /// Shorthand for "--output=type=registry"
    #[arg(long)]
    pub push: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Remove intermediate containers after a successful build (always true)
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub rm: Option<String>,
    /// Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")
    #[arg(long, value_name = "stringArray")]
    pub secret: Vec<String>,
    /// SSH agent socket or keys to expose to the build
    #[arg(long, value_name = "stringArray")]
    pub ssh: Vec<String>,
    /// Name and optionally a tag (format: "name:tag")
    #[arg(short = 't', long, value_name = "list")]
    pub tag: Vec<String>,
    /// Set the target build stage to build
    #[arg(long, value_name = "string")]
    pub target: Option<String>,
    /// Use an external OCI runtime binary (e.g. runc) for RUN
    #[arg(long, value_name = "path")]
    pub runtime: Option<PathBuf>,
    /// Build context: a directory, a tar on stdin, or "-" for a Dockerfile on stdin
    pub context: String,
}

#[derive(Debug, Args, Clone)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Amount of disk space to keep for cache
    #[arg(long, value_name = "bytes")]
    pub keep_storage: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct BuilderDuArgs {
    /// Provide a more verbose output
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Args, Clone)]
pub struct SystemCheckArgs {
    /// Only report; do not remove stale temporary files
    #[arg(long, hide = true)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone)]
pub struct SystemDfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Prune volumes (accepted for compatibility)
    #[arg(long)]
    pub volumes: bool,
}

// ------------------------------------------------------------------------------------------------
// Containers

#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// Print usage (`-h` is `--hostname`, as in docker)
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long, value_name = "list")]
    pub add_host: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long, value_name = "list")]
    pub attach: Vec<String>,
    /// Add Linux capabilities
    #[arg(long, value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long, value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short, long, value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long, value_name = "list")]
    pub env_file: Vec<PathBuf>,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    /// Command to run to check health
    #[arg(long, value_name = "string")]
    pub health_cmd: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    pub hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Set meta data on a container
    #[arg(short, long, value_name = "list")]
    pub label: Vec<String>,
    /// Memory limit
    #[arg(short, long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Attach a filesystem mount to the container
    #[arg(long, value_name = "mount")]
    pub mount: Vec<String>,
    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    pub name: Option<String>,
    /// Connect a container to a network ("host" or "none")
    #[arg(long, alias = "net", default_value = "host", value_name = "network")]
    pub network: String,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long, value_name = "list")]
    pub publish: Vec<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing", value_name = "string")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short, long)]
    pub quiet: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Use an external OCI runtime binary (e.g. runc)
    #[arg(long, value_name = "path")]
    pub runtime: Option<PathBuf>,
    /// Signal to stop the container
    #[arg(long, value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long, value_name = "int")]
    pub stop_timeout: Option<i64>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long, value_name = "string")]
    pub user: Option<String>,
    /// Bind mount a volume
    #[arg(short, long, value_name = "list")]
    pub volume: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "string")]
    pub workdir: Option<String>,
    #[command(flatten)]
    pub ext: RunExtArgs,
    /// Image, then the command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub image_and_command: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "string")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short, long, value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long, value_name = "list")]
    pub env_file: Vec<PathBuf>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID
    #[arg(short, long, value_name = "string")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "string")]
    pub workdir: Option<String>,
    /// Container, then the command and its arguments
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONTAINER COMMAND [ARG...]")]
    pub container_and_command: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "string")]
    pub output: Option<PathBuf>,
    pub container: String,
}

#[derive(Debug, Args, Clone)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL", value_name = "string")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string")]
    pub tail: Option<String>,
    /// Show logs since timestamp or relative (e.g. 42m)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
    pub container: String,
}

#[derive(Debug, Args, Clone)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, value_name = "int")]
    pub last: Option<usize>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ContainerPruneArgs {
    /// Provide filter values
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short, long, value_name = "string")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", visible_alias = "time", value_name = "int", allow_negative_numbers = true)]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    /// Wait until the container is not-running (default), exits next (next-exit) or is removed
    #[arg(long, value_name = "string", value_parser = ["not-running", "next-exit", "removed"])]
    pub condition: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long, value_name = "string")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long, value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long, value_name = "string")]
    pub message: Option<String>,
    /// Pause container during commit (accepted for compatibility)
    #[arg(short, long, default_value = "true", value_name = "bool", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub pause: String,
    pub container: String,
    pub reference: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct HealthcheckRunArgs {
    pub container: String,
}

#[derive(Debug, Args, Clone)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
}

/// The clap command with docker's help layout on every subcommand: usage first, then the
/// description, then options (and subcommands for management commands).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    fn style(c: clap::Command, path: &str) -> clap::Command {
        let has_subs = c.get_subcommands().next().is_some();
        let tmpl = if has_subs {
            format!(
                "\nUsage:  {{usage}}\n\n{{about}}\n\nCommands:\n{{subcommands}}\n\nOptions:\n{{options}}\n\nRun '{path} COMMAND --help' for more information on a command.\n"
            )
        } else {
            "\nUsage:  {usage}\n\n{about}\n\nOptions:\n{options}\n".to_string()
        };
        c.help_template(tmpl).mut_subcommands(|sc| {
            let name = format!("{path} {}", sc.get_name());
            style(sc, &name)
        })
    }
    let top = Cli::command();
    let subs: Vec<String> = top.get_subcommands().map(|s| s.get_name().to_string()).collect();
    let mut top = top;
    for name in subs {
        top = top.mut_subcommand(name.clone(), |sc| style(sc, &format!("berth {name}")));
    }
    let tmpl = grouped_help(&top);
    top.help_template(tmpl)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        super::command().debug_assert();
    }
}
