//! The volume: MFT access, file assembly, data streams and directories.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use vmsnapfs_io::{fill, Places, ReadAt};

use crate::attribute_header::{
    self as ah, Attribute, NonResident, Value, ATTRIBUTE_LIST, DATA, INDEX_ALLOCATION, INDEX_ROOT,
    REPARSE_POINT,
};
use crate::boot_sector::BootSector;
use crate::error::{Error, Result};
use crate::fields::ref_record;
use crate::file_info::{self, FileInfo};
use crate::file_name::{self, ATTR_DIRECTORY_INDEX, NAMESPACE_DOS};
use crate::file_record::{self, FileRecord, FLAG_DIRECTORY, FLAG_IN_USE};
use crate::index_allocation::index_record;
use crate::index_entry::IndexEntry;
use crate::index_root;
use crate::name;
use crate::reparse_point::{self, ReparseTarget};
use crate::runlist::{self, Run};
use crate::types::*;
use crate::upcase::UpCase;
use crate::wof;
use crate::{lznt1, volume_information};
use vmsnapfs_io::ShardedLru;

mod directory;
mod metadata;
mod stream;

const MFT_RECORD: u64 = 0;
const VOLUME_RECORD: u64 = 3;
const BITMAP_RECORD: u64 = 6;
const SECURE_RECORD: u64 = 9;
const UPCASE_RECORD: u64 = 10;

/// Bounds on values read whole into memory, so a corrupt size cannot make us allocate
/// gigabytes.
const MAX_ATTRIBUTE_LIST: u64 = 4 << 20;
const MAX_REPARSE: u64 = 16 * 1024;
const MAX_SECURITY_DESCRIPTOR: u64 = 1 << 20;
const MAX_EXTENSION_RECORDS: usize = 4096;
const BOOTSTRAP_RECORDS: u64 = 24;
const MAX_INDEX_DEPTH: usize = 32;
const MAX_COMPRESSION_UNIT: u64 = 4 << 20;

const I30: &[u16] = &[0x24, 0x49, 0x33, 0x30]; // "$I30"

/// Which index of a file an index block belongs to, for the cache key.
#[derive(Clone, Copy, Hash, PartialEq, Eq)]
enum IndexKind {
    FileName,
    SecurityId,
}

struct IndexCtx<'a> {
    record: u64,
    alloc: Option<&'a NonResident>,
    block_size: u32,
    kind: IndexKind,
}

type SecurityMap = HashMap<u32, (u64, u32)>;

/// An open NTFS volume. All methods take `&self`; the type is `Send + Sync` so one
/// `Arc<Volume>` can serve every FUSE thread.
pub struct Volume {
    reader: Arc<dyn ReadAt>,
    boot: BootSector,
    mft_runs: Vec<Run>,
    mft_records: u64,
    upcase: UpCase,
    info: VolumeInfo,
    files: ShardedLru<u64, Arc<FileInfo>>,
    index_blocks: ShardedLru<(u64, IndexKind, u64), Arc<Vec<IndexEntry>>>,
    units: ShardedLru<(u64, u64, u64), Arc<Vec<u8>>>,
    security: OnceLock<std::result::Result<SecurityMap, String>>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    records_read: AtomicU64,
    index_blocks_read: AtomicU64,
    units_decoded: AtomicU64,
}

impl std::fmt::Debug for Volume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume")
            .field("boot", &self.boot)
            .field("mft_records", &self.mft_records)
            .finish()
    }
}

fn stream_key(type_code: u32, name: &[u16]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    type_code.hash(&mut h);
    name.hash(&mut h);
    h.finish()
}

impl Volume {
    pub fn open(reader: Arc<dyn ReadAt>) -> Result<Volume> {
        let mut sector = vec![0u8; 512];
        reader.read_at(0, &mut sector).map_err(|source| Error::Io {
            offset: 0,
            len: 512,
            source,
        })?;
        let boot = BootSector::parse(&sector)?;
        let info = VolumeInfo {
            label: String::new(),
            major_version: 0,
            minor_version: 0,
            dirty: false,
            hibernated: false,
            cluster_size: boot.cluster_size,
            sector_size: boot.bytes_per_sector,
            file_record_size: boot.file_record_size,
            total_clusters: boot.total_clusters,
            serial_number: boot.serial_number,
        };
        // Until $MFT's own runlist is known, assume its first BOOTSTRAP_RECORDS records
        // are contiguous (formatters lay out at least that much, and extension records of
        // $MFT itself live there) so its base record and extensions can be read.
        let rs = boot.file_record_size as u64;
        let cs = boot.cluster_size as u64;
        let boot_run = Run {
            vcn: 0,
            lcn: Some(boot.mft_lcn),
            len: (BOOTSTRAP_RECORDS * rs).div_ceil(cs).max(1),
        };
        let mut vol = Volume {
            reader,
            boot,
            mft_runs: vec![boot_run],
            mft_records: BOOTSTRAP_RECORDS,
            upcase: UpCase::identity(),
            info,
            files: ShardedLru::new(4096),
            index_blocks: ShardedLru::new(4096),
            units: ShardedLru::new(256),
            security: OnceLock::new(),
            counters: Counters::default(),
        };
        if let Err(e) = vol.load_mft() {
            // $MFTMirr holds copies of the first records: enough to find $MFT's runlist
            // when record 0 itself is damaged.
            vol.mft_runs = vec![Run {
                lcn: Some(vol.boot.mft_mirror_lcn),
                ..boot_run
            }];
            vol.mft_records = BOOTSTRAP_RECORDS;
            if vol.load_mft().is_err() {
                return Err(e);
            }
        }
        vol.upcase = vol
            .read_whole(UPCASE_RECORD, None, 131072)
            .ok()
            .and_then(|b| UpCase::from_bytes(&b))
            .unwrap_or_else(UpCase::fallback);
        vol.load_volume_info();
        Ok(vol)
    }

    /// $MFT's runlist may itself be spread over extension records listed in its
    /// $ATTRIBUTE_LIST; those records are found through the part of the runlist already
    /// known (Windows keeps them in the first extent).
    fn load_mft(&mut self) -> Result<()> {
        let rec0 = self.record(MFT_RECORD)?;
        if rec0.flags & FLAG_IN_USE == 0 || rec0.base_record != 0 {
            return Err(Error::corrupt(
                0,
                "$MFT record is not an in-use base record",
            ));
        }
        let mut attrs = rec0.attributes.clone();
        // The base record normally holds the first extent; with an attribute list it may
        // hold none, and the bootstrap run has to do until the extensions are read.
        self.set_mft_runs(&attrs)?;
        if let Some(al) = rec0
            .attributes
            .iter()
            .find(|a| a.type_code == ATTRIBUTE_LIST)
        {
            let bytes = self.attr_value(MFT_RECORD, al, MAX_ATTRIBUTE_LIST)?;
            let entries = crate::attribute_list::parse(&bytes)
                .map_err(|m| Error::corrupt(0, format!("$MFT attribute list: {m}")))?;
            let mut pending: Vec<u64> = entries
                .iter()
                .map(|e| e.record)
                .filter(|&r| r != MFT_RECORD)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            pending.sort_unstable();
            pending.truncate(MAX_EXTENSION_RECORDS);
            // Each pass may extend the runlist enough to reach further extension records.
            for _pass in 0..4 {
                let mut progress = false;
                let mut still = Vec::new();
                for r in pending {
                    match self.record(r) {
                        Ok(ext)
                            if ext.base_record == MFT_RECORD && ext.flags & FLAG_IN_USE != 0 =>
                        {
                            attrs.extend(
                                ext.attributes
                                    .into_iter()
                                    .filter(|a| a.type_code != ATTRIBUTE_LIST),
                            );
                            self.set_mft_runs(&attrs)?;
                            progress = true;
                        }
                        Ok(_) => {}
                        Err(_) => still.push(r),
                    }
                }
                pending = still;
                if pending.is_empty() || !progress {
                    break;
                }
            }
        }
        if !self.set_mft_runs(&attrs)? {
            return Err(Error::corrupt(0, "$MFT has no $DATA attribute"));
        }
        Ok(())
    }

    /// Installs $MFT's runlist from the (possibly partial) attributes; `false` when no
    /// $DATA extent is known yet.
    fn set_mft_runs(&mut self, attrs: &[Attribute]) -> Result<bool> {
        let merged = file_info::merge(attrs.to_vec()).map_err(|m| Error::corrupt(0, m))?;
        let Some(data) = merged
            .iter()
            .find(|a| a.type_code == DATA && a.name.is_empty())
        else {
            return Ok(false);
        };
        match &data.value {
            Value::NonResident(nr) => {
                if nr.runs.first().map(|r| r.vcn) != Some(0) {
                    // Later extents without the first: not usable for addressing yet.
                    return Ok(false);
                }
                self.mft_runs = nr.runs.clone();
                let mapped = nr
                    .runs
                    .last()
                    .map(|r| r.end_vcn())
                    .unwrap_or(0)
                    .saturating_mul(self.boot.cluster_size as u64);
                self.mft_records = nr.data_size.min(mapped) / self.boot.file_record_size as u64;
                Ok(true)
            }
            Value::Resident(_) => Err(Error::corrupt(0, "$MFT $DATA is resident")),
        }
    }

    fn load_volume_info(&mut self) {
        if let Ok(f) = self.load_file(VOLUME_RECORD) {
            if let Some(Value::Resident(v)) = f.find(ah::VOLUME_NAME, &[]).map(|a| &a.value) {
                let units: Vec<u16> = v
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                self.info.label = name::from_utf16(&units);
            }
            if let Some(Value::Resident(v)) = f.find(ah::VOLUME_INFORMATION, &[]).map(|a| &a.value)
            {
                // Version and dirty flag are informational: a short attribute leaves the
                // defaults rather than failing the mount.
                if let Ok((maj, min, flags)) = volume_information::parse(v) {
                    self.info.major_version = maj;
                    self.info.minor_version = min;
                    self.info.dirty = flags & volume_information::FLAG_DIRTY != 0;
                }
            }
        }
        self.info.hibernated = self.detect_hibernation();
    }

    /// Windows writes "hibr"/"HIBR" (hibernate, Fast Startup) or "wake"/"rstr" variants
    /// at the start of hiberfil.sys while a hibernated image is live; it zeroes the header
    /// on resume.
    fn detect_hibernation(&self) -> bool {
        let Ok(Some(id)) = self.lookup(FileId::ROOT, "hiberfil.sys") else {
            return false;
        };
        let mut sig = [0u8; 4];
        match fill(&mut sig, |at, b| self.read(id, None, at as u64, b)) {
            Ok(4) => {
                let s = sig.to_ascii_lowercase();
                s == *b"hibr" || s == *b"wake" || s == *b"rstr"
            }
            _ => false,
        }
    }

    pub fn root(&self) -> FileId {
        FileId::ROOT
    }

    pub fn info(&self) -> VolumeInfo {
        self.info.clone()
    }

    pub fn boot_sector(&self) -> &BootSector {
        &self.boot
    }

    /// Counts free clusters in $Bitmap. Reads the whole bitmap (total clusters / 8 bytes),
    /// so a caller serving statfs should cache the result.
    pub fn free_clusters(&self) -> Result<u64> {
        let total = self.boot.total_clusters;
        let mut free = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        let mut byte_off = 0u64;
        let total_bytes = total.div_ceil(8);
        while byte_off < total_bytes {
            let want = ((total_bytes - byte_off) as usize).min(buf.len());
            let n = fill(&mut buf[..want], |at, b| {
                self.read(FileId(BITMAP_RECORD), None, byte_off + at as u64, b)
            })?;
            if n == 0 {
                break;
            }
            for (i, &b) in buf[..n].iter().enumerate() {
                let first_cluster = (byte_off + i as u64) * 8;
                let valid = (total - first_cluster).min(8) as u32;
                let mask = if valid == 8 { 0xFF } else { (1u8 << valid) - 1 };
                free += (!b & mask).count_ones() as u64;
            }
            byte_off += n as u64;
        }
        Ok(free)
    }

    /// Checks that `len` bytes at `offset` lie on the volume: a corrupt runlist must
    /// surface as this file's error, not as whatever the underlying source says about
    /// a read past its end.
    fn on_volume(&self, offset: u64, len: u64, record: u64) -> Result<()> {
        offset
            .checked_add(len)
            .filter(|&e| e <= self.reader.size())
            .map(|_| ())
            .ok_or_else(|| {
                Error::corrupt(
                    record,
                    format!(
                        "run reaches byte {offset}+{len} past the volume end ({})",
                        self.reader.size()
                    ),
                )
            })
    }

    fn read_disk(&self, offset: u64, buf: &mut [u8], record: u64) -> Result<()> {
        self.on_volume(offset, buf.len() as u64, record)?;
        self.reader
            .read_at(offset, buf)
            .map_err(|source| Error::Io {
                offset,
                len: buf.len(),
                source,
            })
    }

    /// Where byte `pos` of the VCN space of `runs` lies: how many bytes from it to the
    /// end of its run, and its byte offset on the volume (None in a sparse run).
    fn run_at(&self, runs: &[Run], pos: u64, record: u64) -> Result<(u64, Option<u64>)> {
        let cs = self.boot.cluster_size as u64;
        let vcn = pos / cs;
        let run = runlist::find(runs, vcn).ok_or_else(|| {
            Error::corrupt(record, format!("VCN {vcn} (byte {pos}) is not mapped"))
        })?;
        let run_end = run
            .end_vcn()
            .checked_mul(cs)
            .ok_or_else(|| Error::corrupt(record, "run end overflows"))?;
        let disk = match run.lcn {
            None => None,
            Some(lcn) => Some(
                (lcn + (vcn - run.vcn))
                    .checked_mul(cs)
                    .and_then(|d| d.checked_add(pos % cs))
                    .ok_or_else(|| Error::corrupt(record, "cluster offset overflows"))?,
            ),
        };
        Ok((run_end - pos, disk))
    }

    /// Reads `buf.len()` bytes at byte `offset` of the VCN space described by `runs`.
    fn read_runs(&self, runs: &[Run], offset: u64, buf: &mut [u8], record: u64) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let (left, disk) = self.run_at(runs, offset + done as u64, record)?;
            let n = (left as usize).min(buf.len() - done);
            let piece = &mut buf[done..done + n];
            match disk {
                None => piece.fill(0),
                Some(disk) => self.read_disk(disk, piece, record)?,
            }
            done += n;
        }
        Ok(())
    }

    /// Places `len` bytes at `offset` of the VCN space of `runs` as `read_runs` reads
    /// them: sparse runs as zeros, the rest where the volume's source holds them.
    fn place_runs(&self, runs: &[Run], offset: u64, len: u64, out: &mut Places) -> bool {
        let mut done = 0u64;
        while done < len {
            let Ok((left, disk)) = self.run_at(runs, offset + done, 0) else {
                return false;
            };
            let n = left.min(len - done);
            match disk {
                None => out.zero(n),
                Some(disk) => {
                    if self.on_volume(disk, n, 0).is_err() || !self.reader.place(disk, n, out) {
                        return false;
                    }
                }
            }
            done += n;
        }
        true
    }

    /// Work counters since open: how often the caches missed.
    pub fn stats(&self) -> Stats {
        Stats {
            records_read: self.counters.records_read.load(Relaxed),
            index_blocks_read: self.counters.index_blocks_read.load(Relaxed),
            units_decoded: self.counters.units_decoded.load(Relaxed),
        }
    }

    fn record(&self, n: u64) -> Result<FileRecord> {
        self.counters.records_read.fetch_add(1, Relaxed);
        if n >= self.mft_records {
            return Err(Error::NoSuchRecord {
                record: n,
                count: self.mft_records,
            });
        }
        let rs = self.boot.file_record_size as usize;
        let mut buf = vec![0u8; rs];
        self.read_runs(&self.mft_runs, n * rs as u64, &mut buf, n)?;
        file_record::parse(buf).map_err(|m| Error::corrupt(n, m))
    }

    fn file(&self, n: u64) -> Result<Arc<FileInfo>> {
        self.files
            .get_or_try_insert(n, || self.load_file(n).map(Arc::new))
    }

    fn load_file(&self, n: u64) -> Result<FileInfo> {
        let rec = self.record(n)?;
        if rec.flags & FLAG_IN_USE == 0 {
            return Err(Error::NotInUse { record: n });
        }
        if rec.base_record != 0 {
            return Err(Error::ExtensionRecord {
                record: n,
                base: rec.base_record,
            });
        }
        let mut attrs = rec.attributes;
        if let Some(al) = attrs
            .iter()
            .find(|a| a.type_code == ATTRIBUTE_LIST)
            .cloned()
        {
            let bytes = self.attr_value(n, &al, MAX_ATTRIBUTE_LIST)?;
            let entries = crate::attribute_list::parse(&bytes)
                .map_err(|m| Error::corrupt(n, format!("attribute list: {m}")))?;
            let mut seen = HashSet::new();
            for e in entries {
                // Entries naming the base record itself are normal (its own attributes)
                // and must not be loaded twice; a list naming only itself is harmless.
                if e.record == n || !seen.insert(e.record) {
                    continue;
                }
                if seen.len() > MAX_EXTENSION_RECORDS {
                    return Err(Error::corrupt(n, "attribute list names too many records"));
                }
                let ext = self.record(e.record)?;
                if ext.flags & FLAG_IN_USE == 0 || ext.base_record != n {
                    return Err(Error::corrupt(
                        n,
                        format!(
                            "attribute list names record {} which belongs to record {}",
                            e.record, ext.base_record
                        ),
                    ));
                }
                attrs.extend(
                    ext.attributes
                        .into_iter()
                        .filter(|a| a.type_code != ATTRIBUTE_LIST),
                );
            }
        }
        let attrs = file_info::merge(attrs).map_err(|m| Error::corrupt(n, m))?;
        Ok(FileInfo {
            record: n,
            sequence: rec.sequence,
            flags: rec.flags,
            attrs,
        })
    }

    /// The whole value of a small attribute, refusing values larger than `max`.
    fn attr_value(&self, n: u64, a: &Attribute, max: u64) -> Result<Vec<u8>> {
        match &a.value {
            Value::Resident(v) => Ok(v.clone()),
            Value::NonResident(nr) => {
                if nr.data_size > max {
                    return Err(Error::corrupt(
                        n,
                        format!(
                            "attribute {:#x} is {} bytes, more than the {max} allowed",
                            a.type_code, nr.data_size
                        ),
                    ));
                }
                let mut buf = vec![0u8; nr.data_size as usize];
                let got = fill(&mut buf, |at, b| self.read_attr(n, a, at as u64, b))?;
                buf.truncate(got);
                Ok(buf)
            }
        }
    }

    fn read_whole(&self, n: u64, stream: Option<&str>, max: u64) -> Result<Vec<u8>> {
        let f = self.file(n)?;
        let a = self.data_attr(&f, stream)?;
        self.attr_value(n, a, max)
    }
}
