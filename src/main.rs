//! vmsnapfs: a read-only view of frozen virtual machines for backup software.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use vmsnapfs::{inspect, mount, snapshots};

#[derive(Parser)]
#[command(
    name = "vmsnapfs",
    version,
    about = "Read-only view of frozen virtual machines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the VMs, disks, chains, partitions and file systems under PATH.
    Inspect {
        /// A .vmdk file, a VM folder (.vmx + disks), a folder of VM folders, or a
        /// vCenter/ESXi URL (its VMs are snapshotted for the look, then released).
        source: String,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
        /// Source options (credentials=, thumbprint=, …), comma-separated; repeatable.
        #[arg(short = 'o', value_name = "OPTS")]
        options: Vec<String>,
    },
    /// Mount SOURCE at MOUNTPOINT (returns once the mount is live; -f stays in front).
    Mount(mount::cli::MountArgs),
    /// Unmount, thaw every VM, and wait for the serving process to exit.
    Umount(mount::cli::UmountArgs),
    /// List or clean up the snapshots vmsnapfs made on a vCenter/ESXi.
    Snapshots(snapshots::Args),
}

fn main() -> ExitCode {
    if let Some(args) = mount::cli::fuse_form(&["inspect", "mount", "umount", "snapshots", "help"])
    {
        return mount::cli::mount(args);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mount(args) => return mount::cli::mount(args),
        Command::Umount(args) => return mount::cli::umount(args),
        Command::Snapshots(args) => return snapshots::run(args),
        Command::Inspect {
            source,
            json,
            options,
        } => inspect::run(&source, &options, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmsnapfs: {e}");
            ExitCode::FAILURE
        }
    }
}
