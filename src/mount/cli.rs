//! The command-line faces of mounting: `vmsnapfs mount …`, `vmsnapfs umount …`, and the
//! form mount.fuse3 (`mount -t fuse.vmsnapfs`, fstab, autofs) calls:
//! `vmsnapfs SOURCE MOUNTPOINT [-o opt[,opt…]] [-f]`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::options::MountOptions;
use crate::logging::Logging;

#[derive(clap::Args)]
pub struct MountArgs {
    /// A VM folder, a folder of VM folders, a .vmdk, or (later) a vCenter/ESXi URL.
    pub source: String,
    pub mountpoint: PathBuf,
    /// Mount options, comma-separated (see README "Options"); may be repeated.
    #[arg(short = 'o', value_name = "OPTS")]
    pub options: Vec<String>,
    /// Stay in the foreground and log to stderr.
    #[arg(short = 'f', long)]
    pub foreground: bool,
}

#[derive(clap::Args)]
pub struct UmountArgs {
    pub mountpoint: PathBuf,
    /// Detach now even if files are open (umount -l).
    #[arg(short = 'l', long)]
    pub lazy: bool,
    /// Seconds to wait for the serving process to thaw and exit.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

pub fn mount(args: MountArgs) -> ExitCode {
    let mut opts = MountOptions::default();
    opts.process.foreground = args.foreground;
    for o in &args.options {
        if let Err(e) = opts.apply(o) {
            return fail(&e);
        }
    }
    let p = &opts.process;
    // A log file asked for is meant to be read: log what the foreground would.
    crate::logging::init(Logging {
        verbose: p.foreground || p.log_file.is_some(),
        colour: p.foreground,
        time: true,
    });
    match super::run(&args.source, &args.mountpoint, opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

pub fn umount(args: UmountArgs) -> ExitCode {
    match super::umount::run(
        &args.mountpoint,
        args.lazy,
        Duration::from_secs(args.timeout),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("vmsnapfs: {e}");
    ExitCode::FAILURE
}

/// Recognizes the mount.fuse3 form before clap sees it: the first argument is neither a
/// subcommand nor a flag, and two positional arguments follow the program name.
pub fn fuse_form(subcommands: &[&str]) -> Option<MountArgs> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let first = args.first()?;
    if first.starts_with('-') || subcommands.contains(&first.as_str()) {
        return None;
    }
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut foreground = false;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" => options.push(it.next()?),
            "-f" | "--foreground" => foreground = true,
            // mount(8) passes -n (no mtab) and -s (sloppy), -v for verbose.
            "-n" | "-s" | "-v" => {}
            s if s.starts_with("-o") => options.push(s[2..].to_owned()),
            _ => positional.push(a),
        }
    }
    let [source, mountpoint]: [String; 2] = positional.try_into().ok()?;
    Some(MountArgs {
        source,
        mountpoint: mountpoint.into(),
        options,
        foreground,
    })
}
