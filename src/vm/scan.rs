//! What is on a frozen disk: its partition table, and on each partition (or the whole
//! disk when there is no table) the file system the first sectors name, opened. Shared by
//! the mount and `vmsnapfs inspect`, so both see the same volumes.

use std::sync::{Arc, Mutex};

use vmsnapfs_io::{ReadAt, Window};

use crate::guestfs::{self, GuestFs, VolumeInfo};
use crate::partition;

pub struct VolumeView {
    /// "disk0p1" or "disk0".
    pub name: String,
    /// The disk's number (`disk<N>`).
    pub disk: usize,
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
    let mut errors = errors.lock().unwrap_or_else(|p| p.into_inner());
    if errors.len() < 100 && !errors.contains(&what) {
        errors.push(what);
    }
}

/// A disk's partition table kind and its volumes; a table that cannot be read is an
/// entry in `errors` and no volumes (the image itself stays readable).
pub struct Scan {
    pub table: &'static str,
    pub volumes: Vec<VolumeView>,
}

pub fn scan_disk(n: usize, data: &Arc<dyn ReadAt>, errors: &mut Vec<String>) -> Scan {
    let (kind, parts) = match partition::read_table(data.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            errors.push(format!("disk{n}: partition table: {e}"));
            return Scan {
                table: "unreadable",
                volumes: Vec::new(),
            };
        }
    };
    let mut volumes = Vec::new();
    if parts.is_empty() {
        volumes.push(open_volume(format!("disk{n}"), n, None, data.clone()));
    }
    for p in parts {
        let window: Arc<dyn ReadAt> = match Window::new(data.clone(), p.start, p.size) {
            Ok(w) => Arc::new(w),
            Err(e) => {
                errors.push(format!("disk{n}p{}: {e}", p.number));
                continue;
            }
        };
        volumes.push(open_volume(
            format!("disk{n}p{}", p.number),
            n,
            Some(p),
            window,
        ));
    }
    Scan {
        table: kind.as_str(),
        volumes,
    }
}

fn open_volume(
    name: String,
    disk: usize,
    partition: Option<partition::Partition>,
    vol: Arc<dyn ReadAt>,
) -> VolumeView {
    let kind = crate::detect::detect(vol.as_ref());
    let mut view = VolumeView {
        name,
        disk,
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
