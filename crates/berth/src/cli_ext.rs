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
