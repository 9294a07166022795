//! Freezing one VM: a snapshot journaled before it is asked for and again once made, so
//! that no outcome (an error, a lost answer, a crash) leaves one of ours unaccounted
//! for; then its disks opened. A freeze that fails removes what it made, because the
//! lifecycle only ever thaws a freeze that succeeded.

use std::collections::HashMap;
use std::sync::Arc;

use crate::source::api::{Frozen, VmEntry};

use super::cbt;
use super::client::Client;
use super::errors::{Result, VsError};
use super::frozen;
use super::inventory::{self, VmInfo};
use super::journal::{self, Journal};
use super::reap::remove_entry;
use super::settings::Settings;
use super::snapshot;
use super::soap::Moref;

/// What a freeze needs of the source.
pub(super) struct Freezer<'a> {
    pub client: &'a Arc<Client>,
    pub journal: &'a Journal,
    pub settings: &'a Settings,
    /// Datastore moref → (datacenter, datastore name).
    pub datastores: &'a HashMap<String, (String, String)>,
    /// Where we are mounted ("" when unknown), for the journal and the description.
    pub mountpoint: &'a str,
}

impl Freezer<'_> {
    /// Snapshots `entry` and opens the snapshot; returns it with the journal entry that
    /// names it, which the thaw removes.
    pub(super) fn freeze(&self, entry: &VmEntry) -> Result<(Frozen, journal::Entry)> {
        let c = self.client;
        c.ensure_session()?;
        let vm = Moref::new("VirtualMachine", &entry.id);
        let info = inventory::vms(c, &vm)?
            .into_iter()
            .next()
            .ok_or_else(|| VsError::NotFound {
                server: c.server.clone(),
                what: format!("VM {}", entry.name),
            })?;
        // Tracking switched on now takes effect at the snapshot below (a stun).
        let prepared = if info.change_tracking {
            cbt::Prepared::default()
        } else {
            cbt::prepare(c, &vm, &info.name, self.settings.cbt)?
        };
        let (mut je, description) = self.new_entry(&vm, &info, &entry.name);
        // Durable before the request: if we die between here and thaw, the journal
        // still names the snapshot.
        self.journal.write(&je)?;
        let created = match snapshot::create(
            c,
            &vm,
            &info.name,
            &je.snapshot_name,
            &description,
            self.settings.quiesce,
            &info.tools,
        ) {
            Ok(s) => s,
            Err(e) => {
                // A transport failure (a lost answer, a timeout while the task ran)
                // leaves open whether the server made the snapshot, or still will.
                let unknown = matches!(e, VsError::Unreachable { .. });
                self.undo_create(&je, &vm, unknown.then(|| e.to_string()));
                return Err(e);
            }
        };
        je.snapshot = Some(created.node.snapshot.clone());
        self.journal.write(&je)?;
        tracing::info!(
            "{}: snapshot {} ({}) created; {}",
            info.name,
            je.snapshot_name,
            created.node.snapshot.value,
            created.consistency
        );
        match frozen::open(
            c,
            self.settings,
            self.datastores,
            &info,
            &created,
            &prepared,
        ) {
            Ok(frozen) => Ok((frozen, je)),
            Err(e) => {
                remove_entry(c, self.journal, &mut je);
                Err(e)
            }
        }
    }

    /// The journal entry of a snapshot about to be made of `vm`, and its description.
    /// The name says which host made it, and when; the description, for whoever finds
    /// it in the vSphere client, which mount holds it. `shown` is the VM's folder name.
    fn new_entry(&self, vm: &Moref, info: &VmInfo, shown: &str) -> (journal::Entry, String) {
        let c = self.client;
        let host = Some(journal::this_host())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        let (stamp, created) = journal::utc_now();
        let description = format!(
            "vmsnapfs backup view of {shown} at {} (pid {}); removed when unmounted",
            if self.mountpoint.is_empty() {
                "?"
            } else {
                self.mountpoint
            },
            std::process::id()
        );
        let je = journal::Entry {
            server: c.server.clone(),
            instance: c.sc.instance_uuid.clone(),
            vm: vm.clone(),
            vm_name: info.name.clone(),
            snapshot_name: format!("vmsnapfs-{host}-{stamp}"),
            snapshot: None,
            pid: std::process::id(),
            pid_start: journal::process_start(std::process::id()),
            host: journal::this_host(),
            boot_id: journal::boot_id(),
            mountpoint: self.mountpoint.to_owned(),
            created,
            remove_error: None,
        };
        (je, description)
    }

    /// After a failed create, make sure no half-made snapshot of ours stays behind.
    /// `unknown` says why the server may yet make it: then an entry for a snapshot not
    /// there (yet) stays, for `snapshots cleanup` once this process is gone.
    fn undo_create(&self, je: &journal::Entry, vm: &Moref, unknown: Option<String>) {
        let mut je = je.clone();
        match snapshot::find(self.client, vm, |n| n.name == je.snapshot_name) {
            Ok(Some(n)) => {
                je.snapshot = Some(n.snapshot);
                remove_entry(self.client, self.journal, &mut je);
            }
            Ok(None) => match unknown {
                None => {
                    let _ = self.journal.remove(&je);
                }
                Some(why) => {
                    tracing::warn!(
                        "{}: snapshot {} may still be made ({why}); it stays in the journal \
                         for vmsnapfs snapshots cleanup",
                        je.vm_name,
                        je.snapshot_name
                    );
                    je.remove_error = Some(format!("creation's outcome unknown: {why}"));
                    if let Err(e) = self.journal.write(&je) {
                        tracing::warn!("{e}");
                    }
                }
            },
            Err(e) => tracing::warn!(
                "{}: cannot check for a half-made snapshot ({e}); left in the journal",
                je.vm_name
            ),
        }
    }
}
