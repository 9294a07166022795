//! The vSphere source: VMs of a vCenter or ESXi under an inventory path. Freezing a VM
//! takes a (quiesced, per policy) snapshot, journaled first so it can never be orphaned;
//! its disks are the snapshot's frozen chains read over the datastore HTTP interface;
//! thawing removes exactly that snapshot.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::source::api::{Frozen, Source, SourceKeys, VmEntry};
use crate::sync::Relock;

use super::client::Client;
use super::errors::Result;
use super::freeze::Freezer;
use super::inventory;
use super::journal::{self, Journal};
use super::reap::{reap, remove_entry};
use super::settings::Settings;
use super::soap::Moref;

pub struct VsphereSource {
    pub settings: Settings,
    pub client: Arc<Client>,
    root: Moref,
    single: bool,
    journal: Journal,
    /// Datastore moref → (datacenter, datastore name).
    datastores: HashMap<String, (String, String)>,
    mountpoint: String,
    /// Journal entries of the snapshots this process holds, by VM moref.
    held: Mutex<HashMap<String, journal::Entry>>,
}

/// Connects and logs in (shared by the mount and the `snapshots` subcommands).
pub fn connect(settings: &Settings) -> Result<Arc<Client>> {
    Client::connect(settings.connect.clone())
}

impl VsphereSource {
    /// Opens SOURCE (a vCenter/ESXi URL) with `keys`, the `-o` options meant for this
    /// source (see `settings::KEYS`); `mountpoint`, where known, goes into the journal
    /// and the snapshots' descriptions.
    pub fn open(
        source: &str,
        keys: &SourceKeys,
        mountpoint: Option<&Path>,
    ) -> Result<VsphereSource> {
        let settings = Settings::parse(source, keys)?;
        let journal = Journal::open(&settings.state_dir)?;
        let client = connect(&settings)?;
        let root = inventory::resolve(&client, &settings.inventory_path)?;
        let datastores = inventory::datastores(&client)?;
        let src = VsphereSource {
            single: root.kind == "VirtualMachine",
            root,
            journal,
            datastores,
            mountpoint: mountpoint
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            held: Mutex::new(HashMap::new()),
            client,
            settings,
        };
        // Snapshots left by a process that died (kill -9, crash) go before we add ours.
        match reap(&src.client, &src.journal) {
            Ok(n) if n > 0 => tracing::info!("removed {n} snapshot(s) left by dead processes"),
            Ok(_) => {}
            Err(e) => tracing::warn!("cleaning up old snapshots: {e}"),
        }
        Ok(src)
    }

    fn freeze_vm(&self, entry: &VmEntry) -> Result<Frozen> {
        let freezer = Freezer {
            client: &self.client,
            journal: &self.journal,
            settings: &self.settings,
            datastores: &self.datastores,
            mountpoint: &self.mountpoint,
        };
        let (frozen, je) = freezer.freeze(entry)?;
        self.held().insert(entry.id.clone(), je);
        self.client.active.store(true, Ordering::Relaxed);
        Ok(frozen)
    }

    /// Our snapshots now held, by VM moref.
    fn held(&self) -> MutexGuard<'_, HashMap<String, journal::Entry>> {
        self.held.lock().relock()
    }

    /// Ends the session when no snapshot is held (all thawed, e.g. by idle release):
    /// vCenter sessions are a limited resource, and the next freeze logs in again.
    fn logout_if_idle(&self) {
        let held = self.held();
        if held.is_empty() {
            self.client.active.store(false, Ordering::Relaxed);
            self.client.logout();
        }
    }
}

impl Source for VsphereSource {
    fn describe(&self) -> String {
        self.settings.url.clone()
    }

    fn single_vm(&self) -> bool {
        self.single
    }

    fn list(&self) -> io::Result<Vec<VmEntry>> {
        let vms = inventory::vms(&self.client, &self.root)?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for v in &vms {
            *seen.entry(v.name.clone()).or_default() += 1;
        }
        let mut out = Vec::new();
        for v in vms {
            if v.template || v.disks == 0 {
                tracing::info!(
                    "{}: not shown ({})",
                    v.name,
                    if v.template { "template" } else { "no disks" }
                );
                continue;
            }
            let base = v.name.replace('/', "%2F");
            let name = if seen[&v.name] > 1 {
                format!("{base} ({})", v.moref.value)
            } else {
                base
            };
            let location = if self.single {
                self.settings.inventory_path.clone()
            } else {
                format!("{}/{}", self.settings.inventory_path, v.name)
            };
            out.push(VmEntry {
                name,
                id: v.moref.value,
                location,
            });
        }
        // Listing is all a mount does until a VM's folder is used.
        self.logout_if_idle();
        Ok(out)
    }

    fn freeze(&self, vm: &VmEntry) -> io::Result<Frozen> {
        self.freeze_vm(vm).map_err(io::Error::from)
    }

    fn thaw(&self, vm: &VmEntry, _frozen: &Frozen) -> io::Result<()> {
        let Some(mut je) = self.held().get(&vm.id).cloned() else {
            return Ok(());
        };
        // Held until removed: VMs thaw in parallel, and the session must outlive every
        // removal still under way (logout_if_idle ends it once nothing is held).
        let removed = remove_entry(&self.client, &self.journal, &mut je).is_some();
        self.held().remove(&vm.id);
        self.logout_if_idle();
        if removed {
            tracing::info!("{}: snapshot {} removed", je.vm_name, je.snapshot_name);
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "snapshot {} of {} not removed: {}",
                je.snapshot_name,
                je.vm_name,
                je.remove_error.unwrap_or_default()
            )))
        }
    }
}

impl Drop for VsphereSource {
    fn drop(&mut self) {
        self.client.logout();
    }
}
