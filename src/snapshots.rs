//! `vmsnapfs snapshots list|cleanup SOURCE`: what snapshots vmsnapfs holds or left on a
//! vCenter/ESXi, and removal of those whose process is gone (only ever ours: matched by
//! journal entry, name and moref).

use std::process::ExitCode;

use crate::options::Opt;
use crate::source::vsphere::errors::Result;
use crate::source::vsphere::{self, inventory, journal::Journal, snapshot, Settings};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Show our journaled snapshots, every vmsnapfs-* snapshot under SOURCE, VMs that
    /// need disk consolidation, and each VM's changed block tracking (on/off).
    List(Target),
    /// Remove the journaled snapshots whose vmsnapfs process is gone.
    Cleanup(Target),
}

#[derive(clap::Args)]
struct Target {
    /// https://vcenter/DC/vm/folder (or a VM), as for mount.
    source: String,
    /// credentials=, thumbprint=, insecure, state_dir= (comma-separated; repeatable).
    #[arg(short = 'o', value_name = "OPTS")]
    options: Vec<String>,
}

pub fn run(args: Args) -> ExitCode {
    let (cleanup, t) = match args.action {
        Action::List(t) => (false, t),
        Action::Cleanup(t) => (true, t),
    };
    crate::logging::init(crate::logging::Logging {
        verbose: true,
        colour: true,
        time: false,
    });
    match go(cleanup, &t) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmsnapfs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn go(cleanup: bool, t: &Target) -> Result<()> {
    let settings = Settings::parse(&t.source, &keys(&t.options))?;
    let journal = Journal::open(&settings.state_dir)?;
    let c = vsphere::connect(&settings)?;
    let result = if cleanup {
        vsphere::reap(&c, &journal)
            .map(|n| println!("removed {n} snapshot(s) left by vmsnapfs processes that are gone"))
    } else {
        list(&c, &journal, &settings)
    };
    c.logout();
    result
}

/// `-o` lists as `key[=value]` pairs, in order, as the mount's options parser splits
/// them; only the vSphere keys (`settings::KEYS`) mean anything here.
fn keys(lists: &[String]) -> Vec<(String, Option<String>)> {
    lists
        .iter()
        .flat_map(|l| Opt::list(l))
        .map(|o| (o.key.to_owned(), o.value.map(str::to_owned)))
        .collect()
}

fn list(c: &vsphere::client::Client, journal: &Journal, settings: &Settings) -> Result<()> {
    let entries = journal.entries(&c.server, &c.sc.instance_uuid)?;
    println!(
        "journal {} ({} entries for {}):",
        settings.state_dir.display(),
        entries.len(),
        c.server
    );
    for e in &entries {
        let state = match (&e.remove_error, vsphere::journal::owner_alive(e)) {
            _ if vsphere::journal::foreign_host(e) => {
                format!("recorded on host {}: run cleanup there", e.host)
            }
            (Some(err), _) => format!("removal failed: {err}"),
            (None, true) => "held by a running mount".into(),
            (None, false) => {
                "orphaned (process gone): vmsnapfs snapshots cleanup removes it".into()
            }
        };
        println!(
            "  {}\t{}\tpid {}\t{}\t{}",
            e.vm_name,
            e.snapshot_name,
            e.pid,
            if e.mountpoint.is_empty() {
                "-"
            } else {
                &e.mountpoint
            },
            state
        );
    }
    let root = inventory::resolve(c, &settings.inventory_path)?;
    let paths = [
        "name",
        "snapshot.rootSnapshotList",
        "runtime.consolidationNeeded",
        "config.template",
        "summary.config.numVirtualDisks",
        "config.changeTrackingEnabled",
    ];
    let objs = if root.kind == "VirtualMachine" {
        vec![vsphere::client::ObjectContent {
            props: c.properties(&root, &paths)?,
            obj: root.clone(),
        }]
    } else {
        inventory::in_view(c, &root, "VirtualMachine", &paths)?
    };
    let mut ours = Vec::new();
    let mut consolidate = Vec::new();
    let mut hidden = Vec::new();
    let mut cbt = Vec::new();
    for o in &objs {
        let name = o
            .props
            .get("name")
            .map(|e| e.text.clone())
            .unwrap_or_default();
        if let Some(list) = o.props.get("snapshot.rootSnapshotList") {
            for n in snapshot::nodes(list) {
                if n.name.starts_with("vmsnapfs-") {
                    let journaled = entries
                        .iter()
                        .any(|e| e.vm == o.obj && e.snapshot_name == n.name);
                    ours.push(format!(
                        "  {name}\t{}\t{}\t{}\t{}",
                        n.name,
                        n.snapshot.value,
                        n.create_time,
                        if journaled {
                            "journaled here"
                        } else {
                            "not in this journal (another host or state_dir)"
                        }
                    ));
                }
            }
        }
        if o.props
            .get("runtime.consolidationNeeded")
            .map(|e| e.text.trim())
            == Some("true")
        {
            consolidate.push(format!("  {name} ({})", o.obj.value));
        }
        let text = |k: &str| o.props.get(k).map(|e| e.text.trim()).unwrap_or("");
        cbt.push(format!(
            "  {name} ({}): changeTrackingEnabled {}",
            o.obj.value,
            if text("config.changeTrackingEnabled") == "true" {
                "on"
            } else {
                "off (incrementals need a full read; mount with -o cbt=enable to switch it on)"
            }
        ));
        if text("config.template") == "true" {
            hidden.push(format!("  {name} ({}): template", o.obj.value));
        } else if text("summary.config.numVirtualDisks") == "0" {
            hidden.push(format!("  {name} ({}): no disks", o.obj.value));
        }
    }
    ours.sort();
    println!("vmsnapfs snapshots on the server ({}):", ours.len());
    for l in ours {
        println!("{l}");
    }
    println!("VMs that need disk consolidation ({}):", consolidate.len());
    for l in consolidate {
        println!("{l}");
    }
    hidden.sort();
    println!("VMs a mount does not show ({}):", hidden.len());
    for l in hidden {
        println!("{l}");
    }
    cbt.sort();
    println!("Changed block tracking per VM ({}):", cbt.len());
    for l in cbt {
        println!("{l}");
    }
    Ok(())
}
