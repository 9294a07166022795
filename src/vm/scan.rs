//! What is on a frozen disk: its partition table, and on each partition (or the whole
//! disk when there is no table) the file system the first sectors name, opened. Shared by
//! the mount and `vmsnapfs inspect`, so both see the same volumes.

use std::sync::Arc;

use vmsnapfs_io::{ReadAt, Window};

use crate::partition;

use super::lvm::{self, FoundPv};
use super::volume::{open_volume, VolumeView};

/// A disk's partition table kind and its volumes; a table that cannot be read is an
/// entry in `errors` and no volumes (the image itself stays readable). LVM2 physical
/// volumes found among them are kept for the volume-manager step, which needs every disk
/// of the VM (a volume group may span several).
pub struct Scan {
    pub table: &'static str,
    pub volumes: Vec<VolumeView>,
    pub pvs: Vec<FoundPv>,
}

pub fn scan_disk(n: usize, data: &Arc<dyn ReadAt>, errors: &mut Vec<String>) -> Scan {
    let (kind, parts) = match partition::read_table(data.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            errors.push(format!("disk{n}: partition table: {e}"));
            return Scan {
                table: "unreadable",
                volumes: Vec::new(),
                pvs: Vec::new(),
            };
        }
    };
    let mut volumes = Vec::new();
    let mut pvs = Vec::new();
    if parts.is_empty() {
        volumes.push(open_volume(format!("disk{n}"), Some(n), None, data.clone()));
        lvm::probe(volumes.last_mut(), data, &mut pvs, errors);
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
            Some(n),
            Some(p),
            window.clone(),
        ));
        lvm::probe(volumes.last_mut(), &window, &mut pvs, errors);
    }
    Scan {
        table: kind.as_str(),
        volumes,
        pvs,
    }
}
