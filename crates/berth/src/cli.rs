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
    /// Path to a signature-verification policy file (containers-policy.json) for pulls
    #[arg(long, global = true, value_name = "FILE")]
    pub signature_policy: Option<PathBuf>,
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
    /// Manage Docker image manifests and manifest lists
    #[command(subcommand)]
    Manifest(ManifestCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCmd),
    /// List port mappings or a specific mapping for the container
    #[command(override_usage = "berth port CONTAINER [PRIVATE_PORT[/PROTO]]")]
    Port(PortArgs),
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
    /// Manage signing keys (cosign-compatible)
    #[command(subcommand)]
    Key(KeyCmd),
    /// Sign an image in a registry (cosign-compatible)
    #[command(override_usage = "berth sign [OPTIONS] --key KEY IMAGE")]
    Sign(SignArgs),
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
    /// Verify an image's signatures in a registry (cosign-compatible)
    #[command(override_usage = "berth verify [OPTIONS] --key KEY IMAGE")]
    Verify(VerifyArgs),
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

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Generate an ECDSA P-256 key pair: an encrypted private key (cosign's format) and a PEM
    /// public key
    #[command(override_usage = "berth key generate [OPTIONS]")]
    Generate(KeyGenerateArgs),
}

#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// Write PREFIX.key and PREFIX.pub
    #[arg(long, default_value = "cosign", value_name = "PREFIX")]
    pub output_prefix: String,
    /// Read the private key's password from the first line of FILE (else COSIGN_PASSWORD, else a prompt)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Overwrite existing key files
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Private key: cosign's encrypted format or an unencrypted PKCS#8/SEC1 EC P-256 PEM
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Extra key=value pairs to sign (the payload's "optional" section)
    #[arg(short = 'a', long = "annotation", value_name = "key=value")]
    pub annotations: Vec<String>,
    /// When IMAGE is an index, sign each of its manifests too
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Read the private key's password from the first line of FILE (else COSIGN_PASSWORD, else a prompt)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    pub image: String,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Public key (PEM) to verify with
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    pub image: String,
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
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
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
    /// Commands to work on images in registry
    #[command(subcommand)]
    Imagetools(ImagetoolsCmd),
}

#[derive(Debug, Subcommand)]
pub enum ImagetoolsCmd {
    /// Create a new image based on source images
    Create(ImagetoolsCreateArgs),
    /// Show details of an image in the registry
    Inspect(ImagetoolsInspectArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ImagetoolsCreateArgs {
    /// Set reference for new image
    #[arg(short = 't', long = "tag", value_name = "stringArray")]
    pub tags: Vec<String>,
    /// Append to existing manifest
    #[arg(long)]
    pub append: bool,
    /// Add annotation to the image ("KEY=VALUE" or "index:KEY=VALUE")
    #[arg(long = "annotation", value_name = "stringArray")]
    pub annotations: Vec<String>,
    /// Show final image instead of pushing
    #[arg(long)]
    pub dry_run: bool,
    /// Read source descriptor from file
    #[arg(short = 'f', long = "file", value_name = "stringArray")]
    pub files: Vec<String>,
    pub sources: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ImagetoolsInspectArgs {
    /// Show original, unformatted JSON manifest
    #[arg(long)]
    pub raw: bool,
    /// Format the output using the given Go template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum ManifestCmd {
    /// Create a local manifest list for annotating and pushing to a registry
    Create(ManifestCreateArgs),
    /// Display an image manifest, or manifest list
    Inspect(ManifestInspectArgs),
    /// Add additional information to a local image manifest
    Annotate(ManifestAnnotateArgs),
    /// Push a manifest list to a repository
    Push(ManifestPushArgs),
    /// Delete one or more manifest lists from local storage
    Rm(ManifestRmArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ManifestCreateArgs {
    /// Amend an existing manifest list
    #[arg(short = 'a', long)]
    pub amend: bool,
    /// Allow communication with an insecure registry (configure it in the registries config)
    #[arg(long)]
    pub insecure: bool,
    #[arg(required = true)]
    pub list: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ManifestInspectArgs {
    /// Allow communication with an insecure registry (configure it in the registries config)
    #[arg(long)]
    pub insecure: bool,
    /// Output additional info including layers and platform
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// MANIFEST_LIST then MANIFEST, or only MANIFEST
    #[arg(required = true, num_args = 1..=2)]
    pub refs: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ManifestAnnotateArgs {
    /// Set architecture
    #[arg(long, value_name = "string")]
    pub arch: Option<String>,
    /// Set operating system
    #[arg(long, value_name = "string")]
    pub os: Option<String>,
    /// Set operating system feature
    #[arg(long = "os-features", value_name = "strings", value_delimiter = ',')]
    pub os_features: Vec<String>,
    /// Set operating system version
    #[arg(long = "os-version", value_name = "string")]
    pub os_version: Option<String>,
    /// Set architecture variant
    #[arg(long, value_name = "string")]
    pub variant: Option<String>,
    pub list: String,
    pub image: String,
}

#[derive(Debug, Args, Clone)]
pub struct ManifestPushArgs {
    /// Allow push to an insecure registry (configure it in the registries config)
    #[arg(long)]
    pub insecure: bool,
    /// Remove the local manifest list after push
    #[arg(short = 'p', long)]
    pub purge: bool,
    pub list: String,
}

#[derive(Debug, Args, Clone)]
pub struct ManifestRmArgs {
    #[arg(required = true)]
    pub lists: Vec<String>,
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
    /// Pull every platform of a multi-platform image, kept under the one name (wins over --platform)
    #[arg(long)]
    pub all_platforms: bool,
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
    /// Push only this platform of a multi-platform image (default: every platform stored)
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
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
    /// Inspect this platform of a multi-platform image (default: the host's)
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
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
    /// Show the history of this platform of a multi-platform image (default: the host's)
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
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
    /// Write build result metadata to a file
    #[arg(long, value_name = "string")]
    pub metadata_file: Option<PathBuf>,
    /// Set method for evaluating build ("build", "check", "outline", "targets")
    #[arg(long, value_name = "string")]
    pub call: Option<String>,
    /// Override the configured builder instance (berth has one: "default")
    #[arg(long, value_name = "string")]
    pub builder: Option<String>,
    /// Allow extra privileged entitlement (not supported by berth)
    #[arg(long, value_name = "stringArray")]
    pub allow: Vec<String>,
    /// Set the parent cgroup for the "RUN" instructions during build (not supported by berth)
    #[arg(long, value_name = "string")]
    pub cgroup_parent: Option<String>,
    /// Shared memory size for build containers (not supported by berth)
    #[arg(long, value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Ulimit options (not supported by berth)
    #[arg(long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
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
    /// Also re-unpack every layer from its blob and compare it with the unpacked copy
    /// (content, modes, owners, links): finds tampered layers. Slow: reads every layer.
    #[arg(long)]
    pub deep: bool,
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
    /// Connect a container to a network ("bridge", "host", "none", "container:NAME|ID" or a network name)
    #[arg(long, alias = "net", default_value = "bridge", value_name = "network")]
    pub network: String,
    /// Add network-scoped alias for the container
    #[arg(long, alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "string")]
    pub ip: Option<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long, value_name = "list")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long, alias = "dns-opt", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
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

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Create a network
    Create(NetworkCreateArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkConnectArgs),
    /// Display detailed information on one or more networks
    Inspect(NetworkInspectArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(NetworkLsArgs),
    /// Remove all unused networks
    Prune(NetworkPruneArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(NetworkRmArgs),
}

#[derive(Debug, Args, Clone)]
pub struct NetworkCreateArgs {
    /// Driver to manage the Network ("bridge")
    #[arg(short, long, default_value = "bridge", value_name = "string")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "strings")]
    pub subnet: Vec<String>,
    /// IPv4 Gateway for the master subnet
    #[arg(long, value_name = "strings")]
    pub gateway: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Set metadata on a network
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Network name
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

#[derive(Debug, Args, Clone)]
pub struct NetworkConnectArgs {
    /// Network
    pub network: String,
    /// Container
    pub container: String,
}

#[derive(Debug, Args, Clone)]
pub struct NetworkInspectArgs {
    /// Format output using a custom template
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct NetworkLsArgs {
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone)]
pub struct NetworkRmArgs {
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct NetworkPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}
