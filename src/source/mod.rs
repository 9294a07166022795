//! Where frozen VMs come from. The vm layer only sees the `Source` trait, so the local
//! folder source and the vSphere source (snapshots over HTTPS) plug in the same way.
//! Each source declares and checks its own `-o` keys.

use std::io;
use std::path::Path;
use std::sync::Arc;

mod api;
mod disk;
pub mod local;
pub mod vsphere;

pub use api::{
    merge_ranges, Cbt, CbtState, ChangeError, ChangeTracker, DiskImage, Frozen, FrozenDisk,
    SnapshotInfo, Source, SourceKeys, UnservedDisk, VmEntry,
};

/// Whether `key` is an option some source reads; the mount passes those through.
pub fn accepts(key: &str) -> bool {
    vsphere::settings::KEYS.contains(&key)
}

fn is_remote(source: &str) -> bool {
    source.starts_with("https://") || source.starts_with("http://")
}

/// Opens SOURCE: an http(s):// URL is a vCenter/ESXi (the vSphere source), anything
/// else a local path. `mountpoint` is recorded by snapshot-taking sources.
pub fn open(
    source: &str,
    keys: &SourceKeys,
    mountpoint: Option<&Path>,
) -> io::Result<Arc<dyn Source>> {
    if is_remote(source) {
        return Ok(Arc::new(vsphere::VsphereSource::open(
            source, keys, mountpoint,
        )?));
    }
    Ok(Arc::new(local::LocalSource::open(Path::new(source), keys)?))
}
