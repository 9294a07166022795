//! The one logging setup of every subcommand: `VMSNAPFS_LOG` (an EnvFilter) overrides the
//! level each subcommand picks.

/// How a subcommand wants its log lines.
#[derive(Debug, Clone, Copy)]
pub struct Logging {
    /// `info` instead of `warn` when VMSNAPFS_LOG is unset.
    pub verbose: bool,
    /// Colours when stderr is a terminal (a background server's stderr is its log file).
    pub colour: bool,
    /// Timestamps on each line (a one-shot command's output reads better without them).
    pub time: bool,
}

pub fn init(how: Logging) {
    let default = if how.verbose { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VMSNAPFS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(how.colour && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if how.time {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}
