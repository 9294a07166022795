//! The vSphere source: VMs of a vCenter or ESXi under an inventory path. Freezing a VM
//! takes a (quiesced, per policy) snapshot, journaled first so it can never be orphaned;
//! its disks are the snapshot's frozen chains read over the datastore HTTP interface;
//! thawing removes exactly that snapshot.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use vmsnapfs_vmdk::Disk;

use crate::mount::options::MountOptions;

use crate::net::tls;

use super::disk::VmdkImage;
use super::{Frozen, FrozenDisk, SnapshotInfo, Source, VmEntry};

pub mod client;
pub mod credentials;
pub mod datapath;
pub mod errors;
pub mod inventory;
pub mod journal;
pub mod snapshot;
pub mod soap;
pub mod task;
mod vmconfig;

use client::{Client, ConnectConfig};
use errors::{Result, VsError};
use journal::Journal;
use snapshot::Quiesce;
use soap::Moref;

/// Everything the vSphere options and the SOURCE URL say.
#[derive(Debug, Clone)]
pub struct Settings {
    pub connect: ConnectConfig,
    /// The URL as given, without user info: names the source in status.json.
    pub url: String,
    pub inventory_path: String,
    pub quiesce: Quiesce,
    pub datastore_map: HashMap<String, PathBuf>,
    pub state_dir: PathBuf,
    /// Through a vCenter, read disks from the VM's host with service tickets.
    pub direct_host: bool,
}

/// Decodes %XX escapes in a URL path segment.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Settings {
    pub fn parse(source: &str, opts: &[(String, Option<String>)]) -> Result<Settings> {
        let url = reqwest::Url::parse(source)
            .map_err(|e| VsError::Config(format!("{source}: not a URL: {e}")))?;
        if url.password().is_some() {
            return Err(VsError::Config(
                "a password in the URL would be visible to every user in ps; \
                 put it in a credentials file (-o credentials=FILE)"
                    .into(),
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| VsError::Config(format!("{source}: no host")))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let base = format!("{}://{}:{port}", url.scheme(), url.host_str().unwrap_or(""));
        let inventory_path = url
            .path_segments()
            .map(|s| {
                s.filter(|p| !p.is_empty())
                    .map(percent_decode)
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_default();
        let mut creds = None;
        let mut thumbprint = None;
        let mut insecure = credentials::env_insecure();
        let mut quiesce = Quiesce::Preferred;
        let mut datastore_map = HashMap::new();
        let mut state_dir = PathBuf::from(journal::DEFAULT_DIR);
        let mut direct_host = false;
        for (k, v) in opts {
            let need = || {
                v.clone()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| VsError::Config(format!("option {k} needs a value")))
            };
            match k.as_str() {
                "credentials" => creds = Some(credentials::from_file(&PathBuf::from(need()?))?),
                "thumbprint" => {
                    thumbprint = Some(tls::parse_thumbprint(&need()?).map_err(VsError::Config)?)
                }
                "insecure" => insecure = true,
                "quiesce" => quiesce = Quiesce::parse(&need()?)?,
                "datastore_map" => {
                    let v = need()?;
                    let (ds, path) = v.split_once(':').ok_or_else(|| {
                        VsError::Config(format!("datastore_map={v}: expected DATASTORE:PATH"))
                    })?;
                    datastore_map.insert(ds.to_owned(), PathBuf::from(path));
                }
                "state_dir" => state_dir = PathBuf::from(need()?),
                "direct_host" => direct_host = true,
                other => return Err(VsError::Config(format!("unknown option {other}"))),
            }
        }
        let creds =
            match creds.or_else(credentials::from_env) {
                Some(c) => c,
                None => return Err(VsError::Credentials(
                    "none given: use -o credentials=FILE (username=/password= lines, mode 600) \
                     or GOVC_USERNAME/GOVC_PASSWORD"
                        .into(),
                )),
            };
        let mut shown = url.clone();
        let _ = shown.set_username("");
        Ok(Settings {
            connect: ConnectConfig {
                base,
                host,
                port,
                creds,
                thumbprint,
                insecure,
                soap_timeout: client::soap_timeout(),
            },
            url: shown.to_string(),
            inventory_path,
            quiesce,
            datastore_map,
            state_dir,
            direct_host,
        })
    }
}

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
    pub fn open(source: &str, opts: &MountOptions) -> Result<VsphereSource> {
        let settings = Settings::parse(source, &opts.source_opts)?;
        let journal = Journal::open(&settings.state_dir)?;
        let client = connect(&settings)?;
        let root = inventory::resolve(&client, &settings.inventory_path)?;
        let datastores = inventory::datastores(&client)?;
        let src = VsphereSource {
            single: root.kind == "VirtualMachine",
            root,
            journal,
            datastores,
            mountpoint: opts
                .mountpoint
                .as_ref()
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
        let c = &self.client;
        c.ensure_session()?;
        let vm = Moref::new("VirtualMachine", &entry.id);
        let info = inventory::vms(c, &vm)?
            .into_iter()
            .next()
            .ok_or_else(|| VsError::NotFound {
                server: c.server.clone(),
                what: format!("VM {}", entry.name),
            })?;
        let host = Some(journal::this_host())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        let (stamp, created) = journal::utc_now();
        let name = format!("vmsnapfs-{host}-{stamp}");
        let description = format!(
            "vmsnapfs backup view of {} at {} (pid {}); removed when unmounted",
            entry.name,
            if self.mountpoint.is_empty() {
                "?"
            } else {
                &self.mountpoint
            },
            std::process::id()
        );
        let mut je = journal::Entry {
            server: c.server.clone(),
            instance: c.sc.instance_uuid.clone(),
            vm: vm.clone(),
            vm_name: info.name.clone(),
            snapshot_name: name.clone(),
            snapshot: None,
            pid: std::process::id(),
            pid_start: journal::process_start(std::process::id()),
            host: journal::this_host(),
            boot_id: journal::boot_id(),
            mountpoint: self.mountpoint.clone(),
            created: created.clone(),
            remove_error: None,
        };
        // Durable before the request: if we die between here and thaw, the journal
        // still names the snapshot.
        self.journal.write(&je)?;
        let created = match snapshot::create(
            c,
            &vm,
            &info.name,
            &name,
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
            name,
            created.node.snapshot.value,
            created.consistency
        );
        match self.open_frozen(&info, &created) {
            Ok(frozen) => {
                self.held().insert(vm.value.clone(), je);
                c.active.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(frozen)
            }
            Err(e) => {
                // The lifecycle never thaws a failed freeze: remove it now.
                self.remove_journaled(&mut je);
                Err(e)
            }
        }
    }

    /// After a failed create, make sure no half-made snapshot of ours stays behind.
    /// `unknown` says why the server may yet make it: then an entry for a snapshot not
    /// there (yet) stays, for `snapshots cleanup` once this process is gone.
    fn undo_create(&self, je: &journal::Entry, vm: &Moref, unknown: Option<String>) {
        let mut je = je.clone();
        match snapshot::find(&self.client, vm, |n| n.name == je.snapshot_name) {
            Ok(Some(n)) => {
                je.snapshot = Some(n.snapshot);
                self.remove_journaled(&mut je);
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

    /// Our snapshots now held, by VM moref.
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, journal::Entry>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the session when no snapshot is held (all thawed, e.g. by idle release):
    /// vCenter sessions are a limited resource, and the next freeze logs in again.
    fn logout_if_idle(&self) {
        let held = self.held();
        if held.is_empty() {
            self.client
                .active
                .store(false, std::sync::atomic::Ordering::Relaxed);
            self.client.logout();
        }
    }

    fn remove_journaled(&self, je: &mut journal::Entry) -> bool {
        remove_entry(&self.client, &self.journal, je).is_some()
    }

    fn open_frozen(&self, info: &inventory::VmInfo, created: &snapshot::Created) -> Result<Frozen> {
        let c = &self.client;
        let config = snapshot::config(c, &created.node.snapshot)?;
        let parsed = vmconfig::parse(&config);
        // Datastore names are unique within a datacenter only: resolve them in the
        // VM's own datacenter, the one holding its disks' datastores.
        let vm_dc = parsed
            .disks
            .iter()
            .filter_map(|d| self.datastores.get(d.datastore.as_deref()?))
            .map(|(dc, _)| dc.clone())
            .next();
        let dc_of: HashMap<String, String> = self
            .datastores
            .values()
            .filter(|(dc, _)| vm_dc.as_ref().is_none_or(|v| v == dc))
            .map(|(dc, ds)| (ds.clone(), dc.clone()))
            .collect();
        let route = match (&info.host, self.settings.direct_host) {
            (Some(host), true) if c.sc.api_type == "VirtualCenter" => {
                let name = c
                    .properties(host, &["name"])?
                    .get("name")
                    .map(|e| e.text.trim().to_owned())
                    .unwrap_or_default();
                let scheme = if c.cfg.base.starts_with("https://") {
                    "https"
                } else {
                    "http"
                };
                (!name.is_empty()).then(|| {
                    Arc::new(datapath::HostRoute::new(
                        name,
                        scheme.into(),
                        c.cfg.insecure,
                    ))
                })
            }
            _ => None,
        };
        let mut disks = Vec::new();
        for d in &parsed.disks {
            let (ds, path) = datapath::parse_ds_path(&d.file)
                .ok_or_else(|| c.protocol("snapshot config", format!("disk file {:?}", d.file)))?;
            let dir = path
                .rsplit_once('/')
                .map(|(d, _)| d)
                .unwrap_or("")
                .to_owned();
            let known = d
                .chain
                .iter()
                .filter_map(|f| {
                    let base = f.rsplit('/').next()?.to_owned();
                    Some((base, f.clone()))
                })
                .collect();
            let resolver = Arc::new(datapath::DsResolver {
                client: c.clone(),
                dc_of: dc_of.clone(),
                local: self.settings.datastore_map.clone(),
                known,
                home: (ds, dir),
                route: route.clone(),
            });
            let disk = Disk::open(resolver, &d.file)
                .map_err(|e| VsError::Config(format!("{}: disk {}: {e}", info.name, d.file)))?;
            let chain = disk.chain().to_vec();
            disks.push(FrozenDisk {
                key: Some(d.key.clone()),
                chain,
                image: Arc::new(VmdkImage(disk)),
            });
        }
        let vmx_name = parsed
            .vmx_path
            .as_deref()
            .and_then(|p| p.rsplit('/').next())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}.vmx", info.name));
        let vmx_text = vmconfig::synthesize_vmx(&parsed, &info.name);
        Ok(Frozen {
            config: Some((vmx_name, vmx_text)),
            disks,
            snapshot: SnapshotInfo {
                id: Some(created.node.snapshot.value.clone()),
                name: Some(created.node.name.clone()),
                time: Some(created.node.create_time.clone()).filter(|t| !t.is_empty()),
            },
            quiesced: created.node.quiesced,
            consistency: created.consistency.clone(),
            fallbacks: created.fallbacks.clone(),
            token: created.node.snapshot.value.clone(),
        })
    }
}

/// Removes the snapshot a journal entry names (matching name and moref), then the
/// entry; on failure records why in the entry and returns None. Some(true) when a
/// snapshot was removed, Some(false) when none of ours was there any more.
pub fn remove_entry(c: &Client, j: &Journal, je: &mut journal::Entry) -> Option<bool> {
    let target = match &je.snapshot {
        Some(s) => Ok(Some(s.clone())),
        None => match snapshot::find(c, &je.vm, |n| n.name == je.snapshot_name) {
            Ok(n) => Ok(n.map(|n| n.snapshot)),
            // The VM itself is gone, and its snapshots with it.
            Err(e) if e.fault_kind() == Some("ManagedObjectNotFound") => Ok(None),
            Err(e) => Err(e),
        },
    };
    let result = target.and_then(|t| match t {
        // Only a snapshot with our name at that moref is ours.
        Some(s) => match snapshot::find(c, &je.vm, |n| n.snapshot == s) {
            Ok(Some(n)) if n.name == je.snapshot_name => {
                snapshot::remove(c, &s, &format!("{} snapshot {}", je.vm_name, n.name))
                    .map(|()| true)
            }
            Ok(Some(n)) => {
                tracing::warn!(
                    "{}: snapshot {} is named {:?}, not ours ({}); left alone",
                    je.vm_name,
                    s.value,
                    n.name,
                    je.snapshot_name
                );
                Ok(false)
            }
            Ok(None) => Ok(false),
            Err(e) if e.fault_kind() == Some("ManagedObjectNotFound") => Ok(false),
            Err(e) => Err(e),
        },
        None => Ok(false),
    });
    match result {
        Ok(removed) => {
            if let Err(e) = j.remove(je) {
                tracing::warn!("{e}");
            }
            Some(removed)
        }
        Err(e) => {
            tracing::error!(
                "{}: snapshot {} not removed: {e}; it stays in the journal (vmsnapfs snapshots list)",
                je.vm_name,
                je.snapshot_name
            );
            je.remove_error = Some(e.to_string());
            let _ = j.write(je);
            None
        }
    }
}

/// Removes the snapshots journaled by processes that are gone. Returns how many.
pub fn reap(c: &Client, j: &Journal) -> Result<usize> {
    let mut n = 0;
    for mut e in j.entries(&c.server, &c.sc.instance_uuid)? {
        if journal::owner_alive(&e) {
            continue;
        }
        tracing::info!(
            "{}: removing snapshot {} left by pid {} ({})",
            e.vm_name,
            e.snapshot_name,
            e.pid,
            if e.mountpoint.is_empty() {
                "unknown mountpoint"
            } else {
                &e.mountpoint
            }
        );
        if remove_entry(c, j, &mut e) == Some(true) {
            n += 1;
        }
    }
    Ok(n)
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
            out.push(VmEntry {
                name,
                id: v.moref.value,
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
        let removed = self.remove_journaled(&mut je);
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
