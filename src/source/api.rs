//! What every source provides: VMs to list, a freeze that yields their disks as they were
//! at that instant, and a thaw. The vm layer above sees only these types.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use vmsnapfs_io::ReadAt;

/// `-o` options meant for a source, passed through as given (key, value).
pub type SourceKeys = [(String, Option<String>)];

/// One VM as listed by a source, before anything is frozen: listing must stay cheap
/// because `ls MOUNTPOINT` never freezes anything.
#[derive(Debug, Clone)]
pub struct VmEntry {
    /// Directory name under the mountpoint (unique within the source).
    pub name: String,
    /// Source-specific handle the source gets back in `freeze`.
    pub id: String,
    /// Where the VM lives, in the source's terms (a folder, an inventory path).
    pub location: String,
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

/// Whether a disk's changes can be asked for, and why (status.json's `cbt`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cbt {
    pub state: CbtState,
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CbtState {
    /// Changes since an earlier change id can be listed.
    Enabled,
    /// No tracking: every incremental must be a full read.
    Disabled,
    /// Tracking was restarted (disk moved, resized, tracking switched off and on):
    /// earlier ids are void, the next backup must be full.
    Reset,
}

impl Cbt {
    pub fn new(state: CbtState, why: impl Into<String>) -> Cbt {
        Cbt {
            state,
            why: why.into(),
        }
    }
}

/// Asking a frozen disk what changed: answered by the source (a snapshot chain's own
/// grains, or the hypervisor's changed block tracking).
pub trait ChangeTracker: Send + Sync {
    /// The extents changed since the disk's state `id` (an earlier freeze's
    /// `change_id`), or for `*` every allocated extent: sorted, merged, within the disk.
    /// An id the disk cannot count from is `ChangeError::Unknown`, never "no changes".
    fn changed_since(&self, id: &str) -> Result<Vec<Range<u64>>, ChangeError>;
}

/// `ranges` in the form a ChangeTracker answers: sorted, with overlapping or touching
/// ranges made one and empty ones left out. Trackers gather theirs from several answers
/// (a hypervisor's stretches asked at once, a chain's links), which may overlap.
pub fn merge_ranges(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("change id {id:?} is unknown to this disk ({why}): a full backup is needed")]
    Unknown { id: String, why: String },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// One disk of a frozen VM.
pub struct FrozenDisk {
    /// The disk's number in the VM (`disk<N>` in the tree): its place in controller
    /// order, kept even when an earlier disk could not be served.
    pub index: usize,
    /// Controller key from the config ("scsi0:0"); None for a bare .vmdk source.
    pub key: Option<String>,
    /// The chain head as the config names it.
    pub file: String,
    /// The chain files, head first, as the source names them (paths or datastore paths).
    pub chain: Vec<String>,
    pub image: Arc<dyn DiskImage>,
    /// What was odd about the disk's config lines, though it is served (status.json).
    pub notes: Vec<String>,
    /// The id of this frozen state, for the next incremental's `since/<id>/`.
    pub change_id: Option<String>,
    pub cbt: Cbt,
    pub changes: Option<Arc<dyn ChangeTracker>>,
}

/// A disk the config attaches that cannot be served (missing file, raw device mapping,
/// unreadable chain): never dropped in silence, it is listed with the reason.
#[derive(Debug, Clone)]
pub struct UnservedDisk {
    pub index: usize,
    pub key: Option<String>,
    pub file: String,
    pub why: String,
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
    pub unserved: Vec<UnservedDisk>,
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

/// A provider of VMs: a local folder or a vCenter/ESXi.
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
