//! Command-line definitions of the commands added for docker CLI parity (issue 15), kept
//! apart from `cli.rs` so each command's flags live in one struct here.

use clap::Args;

#[derive(Debug, Args, Clone)]
pub struct ContainerCpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if
    /// no terminal is attached
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH|-
    #[arg(allow_hyphen_values = true)]
    pub source: String,
    /// DEST_PATH|- or CONTAINER:DEST_PATH
    #[arg(allow_hyphen_values = true)]
    pub destination: String,
}

#[derive(Debug, Args, Clone)]
pub struct RestartArgs {
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
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Debug, Args, Clone)]
pub struct PauseArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct TopArgs {
    pub container: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ps OPTIONS")]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct DiffArgs {
    pub container: String,
}

#[derive(Debug, Args, Clone)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum VolumeCmd {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// Display detailed information on one or more volumes
    Inspect(VolumeInspectArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Remove unused local volumes
    Prune(VolumePruneArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(VolumeRmArgs),
}

#[derive(Debug, Args, Clone)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local", value_name = "string")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long, value_name = "map")]
    pub opt: Vec<String>,
    pub name: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct VolumeInspectArgs {
    /// Format output using a custom template ('json' or a Go template)
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct VolumeLsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct CompletionArgs {
    /// The shell: bash, zsh or fish
    #[arg(value_parser = ["bash", "zsh", "fish"])]
    pub shell: String,
}

#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// Directory to write the pages to (berth.1, berth-run.1, berth-image-ls.1, ...)
    #[arg(short, long, value_name = "DIR")]
    pub output: std::path::PathBuf,
}

/// `run`/`create` flags added for docker parity; flattened into `RunArgs`.
#[derive(Debug, Args, Clone, Default)]
pub struct RunExtArgs {
    /// Restart policy to apply when a container exits ("no", "always", "unless-stopped", "on-failure[:N]")
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    /// Mount a tmpfs directory (DEST[:size=…,mode=…])
    #[arg(long, value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Add a host device to the container
    #[arg(long, value_name = "list")]
    pub device: Vec<String>,
    /// GPU devices to add to the container ('all' to pass all GPUs)
    #[arg(long, value_name = "gpu-request")]
    pub gpus: Option<String>,
    /// Security Options (no-new-privileges, seccomp=PROFILE|unconfined, label=disable)
    #[arg(long, value_name = "list")]
    pub security_opt: Vec<String>,
    /// User namespace to use ("host" only)
    #[arg(long, value_name = "string")]
    pub userns: Option<String>,
    /// Ulimit options (name=soft[:hard])
    #[arg(long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm
    #[arg(long, value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_name = "int")]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long, value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// IPC mode to use ("private" or "shareable"; berth gives every container its own)
    #[arg(long, value_name = "string")]
    pub ipc: Option<String>,
    /// PID namespace to use ("private"; berth gives every container its own)
    #[arg(long, value_name = "string")]
    pub pid: Option<String>,
    /// UTS namespace to use ("private"; berth gives every container its own)
    #[arg(long, value_name = "string")]
    pub uts: Option<String>,
    /// Sysctl options (name=value)
    #[arg(long, value_name = "map")]
    pub sysctl: Vec<String>,
    /// Add additional groups to join
    #[arg(long, value_name = "list")]
    pub group_add: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long, value_name = "list")]
    pub label_file: Vec<std::path::PathBuf>,
    /// Write the container ID to the file
    #[arg(long, value_name = "string")]
    pub cidfile: Option<std::path::PathBuf>,
    /// Logging driver for the container ("json-file"; "none" is not supported yet)
    #[arg(long, value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long, value_name = "list")]
    pub log_opt: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long, value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long, value_name = "int")]
    pub health_retries: Option<u32>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long, value_name = "duration")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period
    #[arg(long, value_name = "duration")]
    pub health_start_interval: Option<String>,
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "string")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long, value_name = "bool", num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct EventsArgs {
    /// Filter output based on conditions provided (type, event, container, image, label)
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('json' or a Go template)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
}

/// Docker's grouping of the top-level help: common commands, management commands, the rest.
const COMMON: &[&str] =
    &["run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "search", "version", "info"];
const MANAGEMENT: &[&str] = &["builder", "buildx", "container", "image", "system", "volume"];

/// The top-level help template with the commands grouped as docker groups them.
pub fn grouped_help(top: &clap::Command) -> String {
    let mut subs: Vec<&clap::Command> = top.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    subs.sort_by_key(|s| s.get_name());
    let width =
        subs.iter().map(|s| s.get_name().len() + usize::from(MANAGEMENT.contains(&s.get_name()))).max().unwrap_or(10)
            + 2;
    let line = |s: &clap::Command| {
        let name =
            if MANAGEMENT.contains(&s.get_name()) { format!("{}*", s.get_name()) } else { s.get_name().to_string() };
        format!("  {name:<width$}{}\n", s.get_about().map(|a| a.to_string()).unwrap_or_default())
    };
    let mut common = String::new();
    for n in COMMON {
        if let Some(s) = subs.iter().find(|s| s.get_name() == *n) {
            common.push_str(&line(s));
        }
    }
    let mut mgmt = String::new();
    let mut rest = String::new();
    for s in &subs {
        if MANAGEMENT.contains(&s.get_name()) {
            mgmt.push_str(&line(s));
        } else if !COMMON.contains(&s.get_name()) {
            rest.push_str(&line(s));
        }
    }
    format!(
        "\nUsage:  {{usage}}\n\n{{about}}\n\nCommon Commands:\n{common}\nManagement Commands:\n{mgmt}\nCommands:\n{rest}\nGlobal Options:\n{{options}}\n{{after-help}}"
    )
}
