//! A made snapshot opened for reading: each disk's frozen chain through the data path,
//! and a .vmx synthesized from the snapshot's configuration.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use vmsnapfs_io::ReadAt;
use vmsnapfs_vmdk::Disk;

use crate::source::api::{ChangeTracker, Frozen, FrozenDisk, SnapshotInfo, UnservedDisk};
use crate::source::disk::VmdkImage;

use super::cbt::{self, Prepared, VsChanges};
use super::client::Client;
use super::datapath::{self, DsResolver, HostRoute};
use super::errors::{Result, VsError};
use super::inventory::VmInfo;
use super::settings::Settings;
use super::snapshot::{self, Created};
use super::vmconfig::{self, DiskCfg, VmConfig};

/// Opens the disks and configuration of snapshot `created` of VM `info`. `datastores`
/// maps each datastore moref to its (datacenter, datastore name).
pub(super) fn open(
    c: &Arc<Client>,
    settings: &Settings,
    datastores: &HashMap<String, (String, String)>,
    info: &VmInfo,
    created: &Created,
    prepared: &Prepared,
) -> Result<Frozen> {
    let config = snapshot::config(c, &created.node.snapshot)?;
    let parsed = vmconfig::parse(&config);
    let dc_of = datacenters(datastores, &parsed);
    let route = host_route(c, info, settings.direct_host)?;
    let mut disks = Vec::new();
    let mut unserved = Vec::new();
    for (index, d) in parsed.disks.iter().enumerate() {
        let resolver = resolver(c, settings, d, &dc_of, &route)?;
        let disk = match Disk::open(resolver, &d.file).map_err(io::Error::from) {
            Ok(disk) => disk,
            // A file that is not there, a raw device mapping, a damaged chain: this disk
            // cannot be served, the others still can.
            Err(e) if unservable(&e) => {
                unserved.push(UnservedDisk {
                    index,
                    key: Some(d.key.clone()),
                    file: d.file.clone(),
                    why: e.to_string(),
                });
                continue;
            }
            // The server or the network failed: the freeze fails (and is retried) rather
            // than a backup seeing fewer disks.
            Err(e) => {
                return Err(VsError::Config(format!(
                    "{}: disk {}: {e}",
                    info.name, d.file
                )))
            }
        };
        let chain = disk.chain().to_vec();
        let image = VmdkImage(disk);
        // The snapshot's own changeId: tracking as it was when the snapshot was taken.
        let change_id = d.change_id.clone().filter(|_| parsed.change_tracking);
        let cbt = cbt::state(parsed.change_tracking, change_id.as_deref(), prepared);
        let changes = match (&change_id, d.device_key) {
            (Some(_), Some(device_key)) => Some(Arc::new(VsChanges {
                client: c.clone(),
                vm: info.moref.clone(),
                snapshot: created.node.snapshot.clone(),
                device_key,
                capacity: d.capacity.unwrap_or_else(|| image.size()),
                what: format!("{} disk{index}", info.name),
            }) as Arc<dyn ChangeTracker>),
            _ => None,
        };
        disks.push(FrozenDisk {
            index,
            key: Some(d.key.clone()),
            file: d.file.clone(),
            chain,
            image: Arc::new(image),
            notes: Vec::new(),
            change_id,
            cbt,
            changes,
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
        unserved,
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

fn unservable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::Unsupported | io::ErrorKind::InvalidData
    )
}

/// Datastore name → datacenter name, for the datastores of the VM's own datacenter (the
/// one holding its disks' datastores): names are unique within a datacenter only.
fn datacenters(
    datastores: &HashMap<String, (String, String)>,
    parsed: &VmConfig,
) -> HashMap<String, String> {
    let vm_dc = parsed
        .disks
        .iter()
        .filter_map(|d| datastores.get(d.datastore.as_deref()?))
        .map(|(dc, _)| dc.clone())
        .next();
    datastores
        .values()
        .filter(|(dc, _)| vm_dc.as_ref().is_none_or(|v| v == dc))
        .map(|(dc, ds)| (ds.clone(), dc.clone()))
        .collect()
}

/// The route straight to the VM's host, when `-o direct_host` asks for it and the
/// server is a vCenter (an ESXi is that host already).
fn host_route(c: &Client, info: &VmInfo, direct_host: bool) -> Result<Option<Arc<HostRoute>>> {
    let host = match (&info.host, direct_host) {
        (Some(host), true) if c.sc.api_type == "VirtualCenter" => host,
        _ => return Ok(None),
    };
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
    Ok((!name.is_empty()).then(|| Arc::new(HostRoute::new(name, scheme.into(), c.cfg.insecure))))
}

/// The resolver of disk `d`'s chain files: names relative to its head's folder, and the
/// snapshot's known backing files for absolute hints.
fn resolver(
    c: &Arc<Client>,
    settings: &Settings,
    d: &DiskCfg,
    dc_of: &HashMap<String, String>,
    route: &Option<Arc<HostRoute>>,
) -> Result<Arc<DsResolver>> {
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
    Ok(Arc::new(DsResolver {
        client: c.clone(),
        dc_of: dc_of.clone(),
        local: settings.datastore_map.clone(),
        known,
        home: (ds, dir),
        route: route.clone(),
    }))
}
