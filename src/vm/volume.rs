//! One volume of a frozen VM (a partition, a whole disk, or a logical volume) and the
//! file system found on it, opened.

use std::sync::{Arc, Mutex};

use vmsnapfs_io::ReadAt;

use crate::guestfs::{self, GuestFs, VolumeInfo};
use crate::partition;
use crate::sync::Relock;

pub struct VolumeView {
    /// "disk0p1", "disk0", or an LV's `<vg>-<lv>`.
    pub name: String,
    /// The disk's number (`disk<N>`); None for a logical volume (it may span disks).
    pub disk: Option<usize>,
    /// Where a logical volume lives and how (status.json).
    pub lvm: Option<LvInfo>,
    pub partition: Option<partition::Partition>,
    pub fs_kind: Option<&'static str>,
    pub fs: Option<Arc<dyn GuestFs>>,
    /// Errors met while opening or reading, for status.json (capped).
    pub errors: Mutex<Vec<String>>,
}

impl VolumeView {
    /// Asked for only by status.json and statfs: free space can mean reading a whole
    /// allocation bitmap, which must not delay the freeze.
    pub fn info(&self) -> Option<VolumeInfo> {
        self.fs.as_ref().map(|f| f.info())
    }

    pub fn note_error(&self, what: String) {
        note(&self.errors, what);
    }
}

/// Adds `what` to a capped list of distinct errors: a damaged file read a million times
/// is one line, and a badly damaged volume cannot grow status.json without bound.
pub fn note(errors: &Mutex<Vec<String>>, what: String) {
    let mut errors = errors.lock().relock();
    if errors.len() < 100 && !errors.contains(&what) {
        errors.push(what);
    }
}

/// What status.json says of a logical volume.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LvInfo {
    pub vg: String,
    pub lv: String,
    /// Segment types in order ("linear", "striped", "raid1", "thin", …).
    pub segments: Vec<String>,
    /// "readable", or why not.
    pub status: String,
    /// PVs of the VG that were not found (uuids).
    pub vg_missing_pvs: Vec<String>,
}

pub(super) fn open_volume(
    name: String,
    disk: Option<usize>,
    partition: Option<partition::Partition>,
    vol: Arc<dyn ReadAt>,
) -> VolumeView {
    let kind = crate::detect::detect(vol.as_ref());
    let mut view = VolumeView {
        name,
        disk,
        lvm: None,
        partition,
        fs_kind: kind.map(|k| k.as_str()),
        fs: None,
        errors: Mutex::new(Vec::new()),
    };
    if let Some(kind) = kind.filter(|k| k.has_files()) {
        match guestfs::open(kind, vol) {
            Ok(fs) => view.fs = Some(fs),
            Err(e) => {
                tracing::warn!("{}: cannot open {}: {e}", view.name, kind.as_str());
                view.note_error(format!("open {}: {e}", kind.as_str()));
            }
        }
    }
    view
}
