//! Where frozen VMs come from. The FUSE tree only sees this trait, so the local folder
//! source and the vSphere source (snapshots over HTTPS) plug in the same way.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use vmsnapfs_io::ReadAt;

mod disk;
pub mod local;
pub mod vsphere;

/// One VM as listed by a source, before anything is frozen: listing must stay cheap
/// because `ls MOUNTPOINT` never freezes anything.
#[derive(Debug, Clone)]
pub struct VmEntry {
    /// Directory name under the mountpoint (unique within the source).
    pub name: String,
    /// Source-specific handle the source gets back in `freeze`.
    pub id: String,
}

/// A virtual disk as it was at freeze time, chain already resolved.
pub trait DiskImage: ReadAt {
    /// Byte ranges that hold data (allocated in some chain link); the rest reads as
    /// zeros. Drives SEEK_DATA/SEEK_HOLE.
    fn data_ranges(&self) -> io::Result<Vec<Range<u64>>> {
        Ok(std::iter::once(0..self.size()).collect())
    }
    /// `ddb.adapterType` of the head, if known, copied into the synthesized descriptor.
    fn adapter_type(&self) -> Option<String> {
        None
    }
}

/// One disk of a frozen VM.
pub struct FrozenDisk {
    /// Controller key from the config ("scsi0:0"); None for a bare .vmdk source.
    pub key: Option<String>,
    /// The chain files, head first, as the source names them (paths or datastore paths).
    pub chain: Vec<String>,
    pub image: Arc<dyn DiskImage>,
}

/// Snapshot metadata for status.json (sources without snapshots leave it empty).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SnapshotInfo {
    pub id: Option<String>,
    pub name: Option<String>,
    pub time: Option<String>,
}

/// What `freeze` returns: everything the tree needs, immutable until `thaw`.
pub struct Frozen {
    /// Original config text and its file name, or None (single disk source).
    pub config: Option<(String, String)>,
    pub disks: Vec<FrozenDisk>,
    pub snapshot: SnapshotInfo,
    pub quiesced: bool,
    /// Why the copy is (or is not) quiesced, in words for status.json.
    pub consistency: String,
    /// Fallbacks the source took (e.g. "retried without quiescing").
    pub fallbacks: Vec<String>,
    /// Opaque token the source needs to thaw (snapshot moref, …).
    #[allow(dead_code)] // read by snapshot-taking sources (vSphere)
    pub token: String,
}

/// A provider of VMs: a local folder today, vCenter/ESXi next.
pub trait Source: Send + Sync {
    /// A short description for status.json and hooks ("local:/path", "https://…").
    fn describe(&self) -> String;
    /// True when the source is exactly one VM: the mountpoint is that VM's folder.
    fn single_vm(&self) -> bool;
    fn list(&self) -> io::Result<Vec<VmEntry>>;
    /// Makes a consistent point-in-time view of one VM (a snapshot, or nothing for files
    /// at rest) and opens its disks.
    fn freeze(&self, vm: &VmEntry) -> io::Result<Frozen>;
    /// Releases what `freeze` made. Must be safe to call once per successful freeze.
    fn thaw(&self, vm: &VmEntry, frozen: &Frozen) -> io::Result<()>;
}

/// Opens SOURCE: an http(s):// URL is a vCenter/ESXi (the vSphere source), anything
/// else a local path.
pub fn open(
    source: &str,
    opts: &crate::mount::options::MountOptions,
) -> io::Result<Arc<dyn Source>> {
    if source.starts_with("https://") || source.starts_with("http://") {
        return Ok(Arc::new(vsphere::VsphereSource::open(
            source,
            &opts.source_opts,
            opts.mountpoint.as_deref(),
        )?));
    }
    Ok(Arc::new(local::LocalSource::open(
        std::path::Path::new(source),
        opts,
    )?))
}
