//! What one frozen VM looks like: the rewritten .vmx, the disk images with their
//! synthesized descriptors, the volumes found on them, and the errors met. Built once
//! per freeze and immutable afterwards (but for the error lists), so readers need no
//! locks.

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use vmsnapfs_io::ReadAt;

use crate::cache::BlockCache;
use crate::guestfs::GuestFs;
use crate::source::{DiskImage, Frozen};

use super::changes::SinceCache;
use super::descriptor;
use super::error::{Error, Result};
use super::scan;
use super::volume::{self, VolumeView};

static NEXT_FREEZE: AtomicU64 = AtomicU64::new(1);

pub struct DiskView {
    /// `disk<N>`: the disk's place in the VM's controller order.
    pub number: usize,
    /// The image read through the shared block cache.
    pub data: Arc<dyn ReadAt>,
    pub image: Arc<dyn DiskImage>,
    pub descriptor: Vec<u8>,
    pub table: &'static str,
    ranges: OnceLock<Vec<Range<u64>>>,
}

impl DiskView {
    pub fn size(&self) -> u64 {
        self.image.size()
    }

    /// Sorted and merged, as SEEK_DATA/SEEK_HOLE search them.
    pub fn data_ranges(&self) -> &[Range<u64>] {
        self.ranges.get_or_init(|| {
            self.image
                .data_ranges()
                .map(crate::source::merge_ranges)
                .unwrap_or_else(|e| {
                    tracing::warn!("allocation map unavailable, reporting all data: {e}");
                    std::iter::once(0..self.image.size()).collect()
                })
        })
    }
}

pub struct FrozenVm {
    pub frozen: Frozen,
    pub vmx_name: Option<String>,
    pub vmx: Vec<u8>,
    pub disks: Vec<DiskView>,
    /// Every partition/whole disk examined; only those with `fs` appear under volumes/.
    pub volumes: Vec<VolumeView>,
    pub frozen_at: SystemTime,
    /// Errors met at freeze (disks not served, partition tables, …) and later while
    /// reading disks.
    pub errors: Mutex<Vec<String>>,
    /// Unique per freeze: tells the FUSE layer when cached pages may be stale.
    pub freeze_id: u64,
    /// Changed-block views asked for (`disks/since/<id>/`).
    pub since: SinceCache,
}

impl FrozenVm {
    pub fn build(frozen: Frozen, cache: &Arc<BlockCache>) -> FrozenVm {
        let mut errors = Vec::new();
        for u in &frozen.unserved {
            tracing::error!("disk{} ({}) not served: {}", u.index, u.file, u.why);
            errors.push(format!(
                "disk{} ({}) not served: {}",
                u.index, u.file, u.why
            ));
        }
        let mut disks = Vec::new();
        let mut volumes = Vec::new();
        let mut pvs = Vec::new();
        for d in &frozen.disks {
            for note in &d.notes {
                tracing::warn!("disk{}: {note}", d.index);
            }
            let inner: Arc<dyn ReadAt> = d.image.clone();
            let data: Arc<dyn ReadAt> = Arc::new(cache.wrap(inner));
            let found = scan::scan_disk(d.index, &data, &mut errors);
            volumes.extend(found.volumes);
            pvs.extend(found.pvs);
            disks.push(DiskView {
                number: d.index,
                descriptor: descriptor::synthesize(d.index, d.image.as_ref()),
                data,
                image: d.image.clone(),
                table: found.table,
                ranges: OnceLock::new(),
            });
        }
        volumes.extend(super::lvm::assemble(pvs, &mut errors));
        let (vmx_name, vmx) = match &frozen.config {
            Some((name, text)) => {
                let parsed = crate::vmx::Vmx::parse(text);
                let renames: Vec<(String, String)> = frozen
                    .disks
                    .iter()
                    .filter_map(|d| {
                        let key = d.key.clone()?;
                        Some((key, format!("disks/disk{}.vmdk", d.index)))
                    })
                    .collect();
                (
                    Some(name.clone()),
                    parsed.rewrite_disk_files(&renames).into_bytes(),
                )
            }
            None => (None, Vec::new()),
        };
        FrozenVm {
            frozen,
            vmx_name,
            vmx,
            disks,
            volumes,
            frozen_at: SystemTime::now(),
            errors: Mutex::new(errors),
            freeze_id: NEXT_FREEZE.fetch_add(1, Ordering::Relaxed),
            since: SinceCache::default(),
        }
    }

    pub fn note_error(&self, what: String) {
        volume::note(&self.errors, what);
    }

    /// Volumes that have a readable file system, i.e. the entries of volumes/.
    pub fn mounted_volumes(&self) -> impl Iterator<Item = (usize, &VolumeView)> {
        self.volumes
            .iter()
            .enumerate()
            .filter(|(_, v)| v.fs.is_some())
    }

    pub fn disk(&self, i: usize) -> Result<&DiskView> {
        self.disks.get(i).ok_or(Error::Stale)
    }

    pub fn volume(&self, i: usize) -> Result<&VolumeView> {
        self.volumes.get(i).ok_or(Error::Stale)
    }

    /// The file system of volume `i`, for a node of this freeze.
    pub fn guest_fs(&self, i: usize) -> Result<&Arc<dyn GuestFs>> {
        self.volume(i)?.fs.as_ref().ok_or(Error::Stale)
    }

    /// A guest call's outcome as this layer's error; damage goes into status.json and
    /// the log, ordinary answers (no such name) do not.
    pub fn guest<T>(&self, vol: usize, op: &'static str, r: io::Result<T>) -> Result<T> {
        r.map_err(|source| {
            let name = self
                .volumes
                .get(vol)
                .map(|v| v.name.clone())
                .unwrap_or_else(|| format!("volume {vol}"));
            let e = Error::Guest {
                volume: name,
                op,
                source,
            };
            if e.is_noteworthy() {
                tracing::warn!("{e}");
                if let Some(v) = self.volumes.get(vol) {
                    if let Error::Guest { source, .. } = &e {
                        v.note_error(format!("{op}: {source}"));
                    }
                }
            }
            e
        })
    }

    /// Reads disk `i` (clamped to its end): a failure is EIO and a line in status.json.
    pub fn read_disk(&self, i: usize, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let d = self.disk(i)?;
        read_clamped(d.data.as_ref(), offset, buf).map_err(|e| self.disk_error(d, offset, e))
    }

    /// A failed read of a disk: the error, noted for status.json and logged.
    pub fn disk_error(&self, d: &DiskView, offset: u64, source: io::Error) -> Error {
        let e = Error::Disk {
            disk: d.number,
            offset,
            source,
        };
        tracing::warn!("{e}");
        self.note_error(e.to_string());
        e
    }
}

/// Reads `buf.len()` bytes at `offset` from a fixed-size source, clamped to its end.
pub fn read_clamped(src: &dyn ReadAt, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let size = src.size();
    if offset >= size {
        return Ok(0);
    }
    let n = ((size - offset) as usize).min(buf.len());
    src.read_at(offset, &mut buf[..n])?;
    Ok(n)
}
