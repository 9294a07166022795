//! What one frozen VM looks like inside the mount: the rewritten .vmx, the disk images
//! with their synthesized descriptors, the volumes found on them, and status.json.
//! Built once per freeze and immutable afterwards, so readers need no locks.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use vmsnapfs_io::{ReadAt, Window};

use crate::cache::BlockCache;
use crate::guestfs::{self, GuestFs, VolumeInfo};
use crate::partition;
use crate::source::{DiskImage, Frozen};

static NEXT_FREEZE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub struct DiskView {
    /// The image read through the shared block cache.
    pub data: Arc<dyn ReadAt>,
    pub image: Arc<dyn DiskImage>,
    pub descriptor: Vec<u8>,
    pub table: &'static str,
    pub ranges: OnceLock<Vec<std::ops::Range<u64>>>,
}

impl DiskView {
    pub fn size(&self) -> u64 {
        self.image.size()
    }

    pub fn data_ranges(&self) -> &[std::ops::Range<u64>] {
        self.ranges.get_or_init(|| {
            self.image.data_ranges().unwrap_or_else(|e| {
                tracing::warn!("allocation map unavailable, reporting all data: {e}");
                std::iter::once(0..self.image.size()).collect()
            })
        })
    }
}

pub struct VolumeView {
    /// "disk0p1" or "disk0".
    pub name: String,
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
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < 100 && !errors.contains(&what) {
            errors.push(what);
        }
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
    /// Errors met at freeze (partition tables, …) and later while reading disks.
    pub errors: Mutex<Vec<String>>,
    /// Unique per freeze: tells the FUSE layer when cached pages may be stale.
    pub freeze_id: u64,
}

impl FrozenVm {
    pub fn build(frozen: Frozen, cache: &Arc<BlockCache>) -> FrozenVm {
        let mut errors = Vec::new();
        let mut disks = Vec::new();
        let mut volumes = Vec::new();
        for (n, d) in frozen.disks.iter().enumerate() {
            let inner: Arc<dyn ReadAt> = d.image.clone();
            let data: Arc<dyn ReadAt> = Arc::new(cache.wrap(inner));
            let (table, found) = scan_disk(n, &data, &mut errors);
            volumes.extend(found);
            disks.push(DiskView {
                descriptor: descriptor(n, d.image.as_ref()),
                data,
                image: d.image.clone(),
                table,
                ranges: OnceLock::new(),
            });
        }
        let (vmx_name, vmx) = match &frozen.config {
            Some((name, text)) => {
                let parsed = crate::vmx::Vmx::parse(text);
                let renames: Vec<(String, String)> = frozen
                    .disks
                    .iter()
                    .enumerate()
                    .filter_map(|(n, d)| d.key.clone().map(|k| (k, format!("disks/disk{n}.vmdk"))))
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
            freeze_id: NEXT_FREEZE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    pub fn note_error(&self, what: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < 100 && !errors.contains(&what) {
            errors.push(what);
        }
    }

    /// Volumes that have a readable file system, i.e. the entries of volumes/.
    pub fn mounted_volumes(&self) -> impl Iterator<Item = (usize, &VolumeView)> {
        self.volumes
            .iter()
            .enumerate()
            .filter(|(_, v)| v.fs.is_some())
    }
}

fn scan_disk(
    n: usize,
    data: &Arc<dyn ReadAt>,
    errors: &mut Vec<String>,
) -> (&'static str, Vec<VolumeView>) {
    let (kind, parts) = match partition::read_table(data.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            errors.push(format!("disk{n}: partition table: {e}"));
            return ("unreadable", Vec::new());
        }
    };
    let mut out = Vec::new();
    if parts.is_empty() {
        out.push(open_volume(format!("disk{n}"), n, None, data.clone()));
    }
    for p in parts {
        let window: Arc<dyn ReadAt> = match Window::new(data.clone(), p.start, p.size) {
            Ok(w) => Arc::new(w),
            Err(e) => {
                errors.push(format!("disk{n}p{}: {e}", p.number));
                continue;
            }
        };
        out.push(open_volume(
            format!("disk{n}p{}", p.number),
            n,
            Some(p),
            window,
        ));
    }
    let kind: &'static str = kind.as_str();
    (kind, out)
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
    if let Some(kind) = kind {
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

/// A monolithicFlat descriptor pointing at the sibling `disk<N>-flat.vmdk`, so the disks/
/// folder opens in qemu-img, VMware and anything else that reads VMDK.
fn descriptor(n: usize, image: &dyn DiskImage) -> Vec<u8> {
    let sectors = image.size().div_ceil(512);
    // Geometry as VMware computes it for SCSI disks (255 heads, 63 sectors/track).
    let cylinders = (sectors / (255 * 63)).clamp(1, 65535);
    let adapter = image.adapter_type().unwrap_or_else(|| "lsilogic".into());
    format!(
        "# Disk DescriptorFile\n\
         version=1\n\
         encoding=\"UTF-8\"\n\
         CID=fffffffe\n\
         parentCID=ffffffff\n\
         createType=\"monolithicFlat\"\n\
         \n\
         # Extent description\n\
         RW {sectors} FLAT \"disk{n}-flat.vmdk\" 0\n\
         \n\
         # The Disk Data Base\n\
         #DDB\n\
         \n\
         ddb.virtualHWVersion = \"4\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"255\"\n\
         ddb.geometry.sectors = \"63\"\n\
         ddb.adapterType = \"{adapter}\"\n"
    )
    .into_bytes()
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
