//! The volume: MFT access, file assembly, data streams and directories.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use vmsnapfs_io::ReadAt;

use crate::attribute_header::{
    self as ah, Attribute, NonResident, Value, ATTRIBUTE_LIST, DATA, INDEX_ALLOCATION, INDEX_ROOT,
    REPARSE_POINT,
};
use crate::boot_sector::BootSector;
use crate::bytes::{ref_record, u32_at, u64_at};
use crate::cache::ShardedCache;
use crate::error::{Error, Result};
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
    files: ShardedCache<u64, FileInfo>,
    index_blocks: ShardedCache<(u64, IndexKind, u64), Vec<IndexEntry>>,
    units: ShardedCache<(u64, u64, u64), Vec<u8>>,
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
            files: ShardedCache::new(4096),
            index_blocks: ShardedCache::new(4096),
            units: ShardedCache::new(256),
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
                let mapped = nr.runs.last().map(|r| r.end_vcn()).unwrap_or(0)
                    * self.boot.cluster_size as u64;
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
                if let Some((maj, min, flags)) = volume_information::parse(v) {
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
        match self.read(id, None, 0, &mut sig) {
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
            let n = self.read(FileId(BITMAP_RECORD), None, byte_off, &mut buf[..want])?;
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

    // ---- raw access ----

    fn read_disk(&self, offset: u64, buf: &mut [u8], record: u64) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.reader.size())
            .ok_or_else(|| {
                Error::corrupt(
                    record,
                    format!(
                        "run reaches byte {offset}+{} past the volume end ({})",
                        buf.len(),
                        self.reader.size()
                    ),
                )
            })?;
        let _ = end;
        self.reader
            .read_at(offset, buf)
            .map_err(|source| Error::Io {
                offset,
                len: buf.len(),
                source,
            })
    }

    /// Reads `buf.len()` bytes at byte `offset` of the VCN space described by `runs`.
    fn read_runs(&self, runs: &[Run], offset: u64, buf: &mut [u8], record: u64) -> Result<()> {
        let cs = self.boot.cluster_size as u64;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let vcn = pos / cs;
            let run = runlist::find(runs, vcn).ok_or_else(|| {
                Error::corrupt(record, format!("VCN {vcn} (byte {pos}) is not mapped"))
            })?;
            let run_end = run
                .end_vcn()
                .checked_mul(cs)
                .ok_or_else(|| Error::corrupt(record, "run end overflows"))?;
            let n = ((run_end - pos) as usize).min(buf.len() - done);
            let piece = &mut buf[done..done + n];
            match run.lcn {
                None => piece.fill(0),
                Some(lcn) => {
                    let disk = (lcn + (vcn - run.vcn))
                        .checked_mul(cs)
                        .and_then(|d| d.checked_add(pos % cs))
                        .ok_or_else(|| Error::corrupt(record, "cluster offset overflows"))?;
                    self.read_disk(disk, piece, record)?;
                }
            }
            done += n;
        }
        Ok(())
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
        self.files.get_or_try(n, || self.load_file(n))
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
                let got = self.read_attr(n, a, 0, &mut buf)?;
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

    // ---- data ----

    fn data_attr<'a>(&self, f: &'a FileInfo, stream: Option<&str>) -> Result<&'a Attribute> {
        let wanted = stream.map(name::to_utf16).unwrap_or_default();
        f.find(DATA, &wanted).ok_or_else(|| Error::NoSuchStream {
            record: f.record,
            stream: stream.unwrap_or("").to_string(),
        })
    }

    fn read_attr(&self, n: u64, a: &Attribute, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let nr = match &a.value {
            Value::Resident(v) => {
                if offset >= v.len() as u64 {
                    return Ok(0);
                }
                let src = &v[offset as usize..];
                let len = src.len().min(buf.len());
                buf[..len].copy_from_slice(&src[..len]);
                return Ok(len);
            }
            Value::NonResident(nr) => nr,
        };
        if a.flags & ah::FLAG_ENCRYPTED != 0 {
            return Err(Error::Encrypted { record: n });
        }
        let size = nr.data_size;
        if offset >= size {
            return Ok(0);
        }
        let len = ((size - offset).min(buf.len() as u64)) as usize;
        let buf = &mut buf[..len];
        let init = nr.initialized_size.min(size);
        let valid = if offset < init {
            ((init - offset) as usize).min(len)
        } else {
            0
        };
        if a.flags & ah::FLAG_COMPRESSED != 0 && nr.compression_unit != 0 {
            self.read_compressed(n, a, nr, offset, &mut buf[..valid])?;
        } else {
            self.read_runs(&nr.runs, offset, &mut buf[..valid], n)?;
        }
        buf[valid..].fill(0);
        Ok(len)
    }

    fn unit_bytes(&self, n: u64, nr: &NonResident) -> Result<u64> {
        let ub = (self.boot.cluster_size as u64) << nr.compression_unit;
        if ub > MAX_COMPRESSION_UNIT {
            return Err(Error::Unsupported {
                record: n,
                msg: format!("compression unit of {ub} bytes"),
            });
        }
        Ok(ub)
    }

    fn read_compressed(
        &self,
        n: u64,
        a: &Attribute,
        nr: &NonResident,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        let ub = self.unit_bytes(n, nr)?;
        let key = stream_key(a.type_code, &a.name);
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let unit = pos / ub;
            let data = self
                .units
                .get_or_try((n, key, unit), || self.decode_unit(n, nr, unit, ub))?;
            let in_unit = (pos % ub) as usize;
            let take = (data.len() - in_unit).min(buf.len() - done);
            buf[done..done + take].copy_from_slice(&data[in_unit..in_unit + take]);
            done += take;
        }
        Ok(())
    }

    /// One LZNT1 compression unit: all sparse → zeros; fully allocated → stored raw;
    /// otherwise its allocated clusters hold the compressed stream.
    fn decode_unit(&self, n: u64, nr: &NonResident, unit: u64, ub: u64) -> Result<Vec<u8>> {
        self.counters.units_decoded.fetch_add(1, Relaxed);
        let cs = self.boot.cluster_size as u64;
        let uc = ub / cs;
        let vcn0 = unit * uc;
        let mut pieces = Vec::new();
        let mut allocated = 0u64;
        let mut vcn = vcn0;
        while vcn < vcn0 + uc {
            let Some(r) = runlist::find(&nr.runs, vcn) else {
                break;
            };
            let take = r.end_vcn().min(vcn0 + uc) - vcn;
            if let Some(l) = r.lcn {
                pieces.push((l + (vcn - r.vcn), take));
                allocated += take;
            }
            vcn += take;
        }
        let mut out = vec![0u8; ub as usize];
        if allocated == 0 {
            return Ok(out);
        }
        let mut raw = vec![0u8; (allocated * cs) as usize];
        let mut at = 0usize;
        for (lcn, len) in pieces {
            let bytes = (len * cs) as usize;
            let disk = lcn
                .checked_mul(cs)
                .ok_or_else(|| Error::corrupt(n, "cluster offset overflows"))?;
            self.read_disk(disk, &mut raw[at..at + bytes], n)?;
            at += bytes;
        }
        if allocated >= uc {
            return Ok(raw);
        }
        lznt1::decompress(&raw, &mut out).map_err(|msg| Error::Decompress {
            record: n,
            what: "LZNT1 unit",
            offset: unit * ub,
            msg,
        })?;
        Ok(out)
    }

    /// Positional read of a data stream (`None` = the unnamed one). Returns fewer bytes
    /// than asked only at end of stream. WOF-compressed files are decompressed.
    pub fn read(
        &self,
        id: FileId,
        stream: Option<&str>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let f = self.file(id.0)?;
        if stream.is_none() {
            if let Some(w) = self.wof_info(&f)? {
                return self.read_wof(&f, &w, offset, buf);
            }
        }
        let a = self.data_attr(&f, stream)?;
        if stream.is_none() && f.has_reparse_point() {
            self.check_content_on_volume(&f, a)?;
        }
        self.read_attr(id.0, a, offset, buf)
    }

    /// Dedup, cloud-files and HSM reparse points can leave the unnamed stream as one
    /// big hole while the content lives elsewhere; reading that as zeros would hand a
    /// backup garbage, so it is an error instead.
    fn check_content_on_volume(&self, f: &FileInfo, a: &Attribute) -> Result<()> {
        let Value::NonResident(nr) = &a.value else {
            return Ok(());
        };
        if nr.data_size == 0 || nr.runs.iter().any(|r| r.lcn.is_some()) {
            return Ok(());
        }
        let tag = match self.reparse_data(f)? {
            Some(rp) => reparse_point::tag(&rp).unwrap_or(0),
            None => return Ok(()),
        };
        if reparse_point::is_link_tag(tag) {
            return Ok(());
        }
        Err(Error::Unsupported {
            record: f.record,
            msg: format!(
                "reparse tag {tag:#010x}: the file's content is stored outside this volume"
            ),
        })
    }

    fn reparse_data(&self, f: &FileInfo) -> Result<Option<Vec<u8>>> {
        match f.find(REPARSE_POINT, &[]) {
            Some(a) => Ok(Some(self.attr_value(f.record, a, MAX_REPARSE)?)),
            None => Ok(None),
        }
    }

    fn wof_info(&self, f: &FileInfo) -> Result<Option<wof::WofFile>> {
        if !f.has_reparse_point() {
            return Ok(None);
        }
        let Some(rp) = self.reparse_data(f)? else {
            return Ok(None);
        };
        if reparse_point::tag(&rp) != Some(reparse_point::TAG_WOF) {
            return Ok(None);
        }
        let alg = wof::parse_reparse(&rp).map_err(|msg| Error::Unsupported {
            record: f.record,
            msg,
        })?;
        let stream = name::to_utf16(wof::STREAM_NAME);
        let Some(sa) = f.find(DATA, &stream) else {
            // Not (or no longer) compressed: the unnamed stream holds the data.
            return Ok(None);
        };
        let size = match f.data().map(|a| &a.value) {
            Some(Value::NonResident(nr)) => nr.data_size,
            Some(Value::Resident(v)) => v.len() as u64,
            None => 0,
        };
        let stream_size = match &sa.value {
            Value::NonResident(nr) => nr.data_size,
            Value::Resident(v) => v.len() as u64,
        };
        Ok(Some(wof::WofFile {
            algorithm: alg,
            size,
            stream_size,
        }))
    }

    fn read_wof(
        &self,
        f: &FileInfo,
        w: &wof::WofFile,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let n = f.record;
        let stream = name::to_utf16(wof::STREAM_NAME);
        let sa = f
            .find(DATA, &stream)
            .ok_or_else(|| Error::corrupt(n, "WofCompressedData vanished"))?;
        if offset >= w.size {
            return Ok(0);
        }
        let len = ((w.size - offset).min(buf.len() as u64)) as usize;
        let chunk = w.algorithm.chunk_size() as u64;
        let key = stream_key(DATA, &stream);
        let mut done = 0usize;
        while done < len {
            let pos = offset + done as u64;
            let idx = pos / chunk;
            let data = self.units.get_or_try((n, key, idx), || {
                let mut read = |off: u64, b: &mut [u8]| -> std::result::Result<(), String> {
                    match self.read_attr(n, sa, off, b) {
                        Ok(got) if got == b.len() => Ok(()),
                        Ok(_) => Err("compressed stream shorter than its chunk table says".into()),
                        Err(e) => Err(e.to_string()),
                    }
                };
                self.counters.units_decoded.fetch_add(1, Relaxed);
                wof::read_chunk(w, idx, &mut read).map_err(|msg| Error::Decompress {
                    record: n,
                    what: "WOF chunk",
                    offset: idx * chunk,
                    msg,
                })
            })?;
            let in_chunk = (pos % chunk) as usize;
            let take = (data.len().saturating_sub(in_chunk)).min(len - done);
            if take == 0 {
                return Err(Error::corrupt(n, "WOF chunk shorter than expected"));
            }
            buf[done..done + take].copy_from_slice(&data[in_chunk..in_chunk + take]);
            done += take;
        }
        Ok(len)
    }

    /// Byte ranges of `stream` backed by storage; everything else reads as zeros
    /// (SEEK_DATA / SEEK_HOLE). Ranges are sorted, disjoint and clipped to the size.
    pub fn allocated_ranges(&self, id: FileId, stream: Option<&str>) -> Result<Vec<Range<u64>>> {
        let f = self.file(id.0)?;
        if stream.is_none() {
            if let Some(w) = self.wof_info(&f)? {
                return Ok(std::iter::once(0..w.size)
                    .filter(|r| !r.is_empty())
                    .collect());
            }
        }
        let a = self.data_attr(&f, stream)?;
        let nr = match &a.value {
            Value::Resident(v) => {
                return Ok(std::iter::once(0..v.len() as u64)
                    .filter(|r| !r.is_empty())
                    .collect())
            }
            Value::NonResident(nr) => nr,
        };
        let cs = self.boot.cluster_size as u64;
        let granule = if a.flags & ah::FLAG_COMPRESSED != 0 && nr.compression_unit != 0 {
            self.unit_bytes(id.0, nr)?
        } else {
            cs
        };
        let mut out: Vec<Range<u64>> = Vec::new();
        for r in nr.runs.iter().filter(|r| r.lcn.is_some()) {
            let start = (r.vcn.saturating_mul(cs) / granule).saturating_mul(granule);
            let end = r
                .end_vcn()
                .saturating_mul(cs)
                .div_ceil(granule)
                .saturating_mul(granule);
            let (start, end) = (start.min(nr.data_size), end.min(nr.data_size));
            if start >= end {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.end >= start => last.end = last.end.max(end),
                _ => out.push(start..end),
            }
        }
        Ok(out)
    }

    /// Named data streams (alternate data streams) of a file.
    pub fn streams(&self, id: FileId) -> Result<Vec<StreamInfo>> {
        let f = self.file(id.0)?;
        Ok(f.attrs
            .iter()
            .filter(|a| a.type_code == DATA && !a.name.is_empty())
            .map(|a| StreamInfo {
                name: name::from_utf16(&a.name),
                size: match &a.value {
                    Value::Resident(v) => v.len() as u64,
                    Value::NonResident(nr) => nr.data_size,
                },
            })
            .collect())
    }

    // ---- metadata ----

    pub fn stat(&self, id: FileId) -> Result<Metadata> {
        let n = id.0;
        let f = self.file(n)?;
        let si = f.standard_information().map_err(|m| Error::corrupt(n, m))?;
        let link_count = f
            .file_names()
            .iter()
            .filter(|fnm| fnm.namespace != NAMESPACE_DOS)
            .count() as u32;
        let reparse_tag = match self.reparse_data(&f)? {
            Some(rp) => reparse_point::tag(&rp),
            None => None,
        };
        let is_dir = f.flags & FLAG_DIRECTORY != 0;
        let kind = match reparse_tag {
            Some(t) if reparse_point::is_link_tag(t) => FileKind::Symlink,
            _ if is_dir => FileKind::Directory,
            None | Some(reparse_point::TAG_WOF) => FileKind::File,
            Some(_) => FileKind::OtherReparse,
        };
        let cs = self.boot.cluster_size as u64;
        let (mut size, allocated_size) = match f.data().map(|a| &a.value) {
            Some(Value::Resident(v)) => (v.len() as u64, 0),
            Some(Value::NonResident(nr)) => (
                nr.data_size,
                nr.runs
                    .iter()
                    .filter(|r| r.lcn.is_some())
                    .map(|r| r.len.saturating_mul(cs))
                    .fold(0u64, u64::saturating_add),
            ),
            None => (0, 0),
        };
        if is_dir {
            size = 0;
        }
        Ok(Metadata {
            id,
            sequence: f.sequence,
            kind,
            size,
            allocated_size,
            created: NtfsTime(si.created),
            modified: NtfsTime(si.modified),
            mft_modified: NtfsTime(si.mft_modified),
            accessed: NtfsTime(si.accessed),
            attributes: si.attributes,
            link_count,
            reparse_tag,
            security_id: si.security_id.filter(|&s| s != 0),
        })
    }

    pub fn read_link(&self, id: FileId) -> Result<ReparseTarget> {
        let f = self.file(id.0)?;
        let rp = self.reparse_data(&f)?.ok_or(Error::NotALink {
            record: id.0,
            tag: 0,
        })?;
        let tag = reparse_point::tag(&rp).unwrap_or(0);
        if !reparse_point::is_link_tag(tag) {
            return Err(Error::NotALink { record: id.0, tag });
        }
        reparse_point::parse_link(&rp).map_err(|m| Error::corrupt(id.0, m))
    }

    /// The raw self-relative SECURITY_DESCRIPTOR of a file: from $Secure:$SDS through its
    /// security id (NTFS 3.x), else from a legacy $SECURITY_DESCRIPTOR attribute.
    pub fn security_descriptor(&self, id: FileId) -> Result<Option<Vec<u8>>> {
        let f = self.file(id.0)?;
        let si = f
            .standard_information()
            .map_err(|m| Error::corrupt(id.0, m))?;
        if let Some(a) = f.find(ah::SECURITY_DESCRIPTOR, &[]) {
            return Ok(Some(self.attr_value(id.0, a, MAX_SECURITY_DESCRIPTOR)?));
        }
        let Some(sid) = si.security_id.filter(|&s| s != 0) else {
            return Ok(None);
        };
        let map = self
            .security
            .get_or_init(|| self.load_security_index().map_err(|e| e.to_string()));
        let map = map
            .as_ref()
            .map_err(|m| Error::corrupt(SECURE_RECORD, m.clone()))?;
        let Some(&(off, len)) = map.get(&sid) else {
            return Ok(None);
        };
        if len < 20 || len as u64 > MAX_SECURITY_DESCRIPTOR {
            return Err(Error::corrupt(
                SECURE_RECORD,
                format!("$SDS entry length {len}"),
            ));
        }
        let mut buf = vec![0u8; len as usize - 20];
        let got = self.read(FileId(SECURE_RECORD), Some("$SDS"), off + 20, &mut buf)?;
        if got != buf.len() {
            return Err(Error::corrupt(
                SECURE_RECORD,
                "$SDS entry past end of stream",
            ));
        }
        Ok(Some(buf))
    }

    fn load_security_index(&self) -> Result<SecurityMap> {
        let f = self.file(SECURE_RECORD)?;
        let sii: Vec<u16> = "$SII".encode_utf16().collect();
        let mut map = HashMap::new();
        self.walk_index(&f, &sii, IndexKind::SecurityId, &mut |e| {
            if let (Some(id), Some(off), Some(len)) =
                (u32_at(&e.data, 4), u64_at(&e.data, 8), u32_at(&e.data, 16))
            {
                map.insert(id, (off, len));
            }
            Ok(())
        })?;
        Ok(map)
    }

    // ---- directories ----

    fn index_parts<'a>(
        &self,
        f: &'a FileInfo,
        name: &[u16],
        kind: IndexKind,
    ) -> Result<(index_root::IndexRoot, IndexCtx<'a>)> {
        let n = f.record;
        let root_attr = f
            .find(INDEX_ROOT, name)
            .ok_or(Error::NotADirectory { record: n })?;
        let Value::Resident(v) = &root_attr.value else {
            return Err(Error::corrupt(n, "non-resident $INDEX_ROOT"));
        };
        let root = index_root::parse(v, kind == IndexKind::SecurityId)
            .map_err(|m| Error::corrupt(n, format!("$INDEX_ROOT: {m}")))?;
        let alloc = match f.find(INDEX_ALLOCATION, name).map(|a| &a.value) {
            Some(Value::NonResident(nr)) => Some(nr),
            _ => None,
        };
        let ctx = IndexCtx {
            record: n,
            alloc,
            block_size: root.block_size,
            kind,
        };
        Ok((root, ctx))
    }

    fn index_block(&self, ctx: &IndexCtx<'_>, vcn: u64) -> Result<Arc<Vec<IndexEntry>>> {
        let n = ctx.record;
        self.index_blocks.get_or_try((n, ctx.kind, vcn), || {
            self.counters.index_blocks_read.fetch_add(1, Relaxed);
            let alloc = ctx.alloc.ok_or_else(|| {
                Error::corrupt(
                    n,
                    "index entry points below the root but there is no $INDEX_ALLOCATION",
                )
            })?;
            let cs = self.boot.cluster_size;
            // Blocks smaller than a cluster are addressed in 512-byte units.
            let unit = if ctx.block_size >= cs { cs } else { 512 } as u64;
            let bs = ctx.block_size as u64;
            let off = vcn
                .checked_mul(unit)
                .filter(|o| o.checked_add(bs).is_some_and(|e| e <= alloc.data_size))
                .ok_or_else(|| {
                    Error::corrupt(
                        n,
                        format!("index block VCN {vcn} outside $INDEX_ALLOCATION"),
                    )
                })?;
            let mut buf = vec![0u8; bs as usize];
            self.read_runs(&alloc.runs, off, &mut buf, n)?;
            index_record::parse(buf, vcn, ctx.kind == IndexKind::SecurityId)
                .map_err(|m| Error::corrupt(n, format!("index block: {m}")))
        })
    }

    /// In-order traversal of a whole index, each block visited at most once.
    fn walk_index(
        &self,
        f: &FileInfo,
        name: &[u16],
        kind: IndexKind,
        visit: &mut dyn FnMut(&IndexEntry) -> Result<()>,
    ) -> Result<()> {
        let (root, ctx) = self.index_parts(f, name, kind)?;
        let mut visited = HashSet::new();
        self.walk_node(&ctx, &root.entries, 0, &mut visited, visit)
    }

    fn walk_node(
        &self,
        ctx: &IndexCtx<'_>,
        entries: &[IndexEntry],
        depth: usize,
        visited: &mut HashSet<u64>,
        visit: &mut dyn FnMut(&IndexEntry) -> Result<()>,
    ) -> Result<()> {
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::corrupt(ctx.record, "index tree too deep"));
        }
        for e in entries {
            if let Some(vcn) = e.child_vcn {
                if !visited.insert(vcn) {
                    return Err(Error::corrupt(
                        ctx.record,
                        format!("index block VCN {vcn} is referenced twice (cycle)"),
                    ));
                }
                let block = self.index_block(ctx, vcn)?;
                self.walk_node(ctx, &block, depth + 1, visited, visit)?;
            }
            if !e.is_last() {
                visit(e)?;
            }
        }
        Ok(())
    }

    /// Directory listing in collation order, without "." and DOS 8.3 aliases.
    pub fn read_dir(&self, dir: FileId) -> Result<Vec<DirEntry>> {
        let f = self.file(dir.0)?;
        let mut out = Vec::new();
        self.walk_index(&f, I30, IndexKind::FileName, &mut |e| {
            let fnm = file_name::parse(&e.key)
                .map_err(|m| Error::corrupt(dir.0, format!("index key: {m}")))?;
            if fnm.namespace == NAMESPACE_DOS {
                return Ok(());
            }
            let id = ref_record(e.header);
            if id == dir.0 && fnm.name == [0x2E] {
                return Ok(());
            }
            out.push(DirEntry {
                name: name::from_utf16(&fnm.name),
                id: FileId(id),
                kind_hint: kind_hint(&fnm),
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// Looks `name` up by descending the B+ tree with the volume's $UpCase collation.
    /// Exact (case-sensitive) match; DOS 8.3 aliases are not matched, like `read_dir`.
    pub fn lookup(&self, dir: FileId, name_str: &str) -> Result<Option<FileId>> {
        let f = self.file(dir.0)?;
        let (root, ctx) = self.index_parts(&f, I30, IndexKind::FileName)?;
        let target = name::to_utf16(name_str);
        let mut visited = HashSet::new();
        let mut block: Option<Arc<Vec<IndexEntry>>> = None;
        loop {
            let entries: &[IndexEntry] = match &block {
                Some(b) => b,
                None => &root.entries,
            };
            let mut next = None;
            for e in entries {
                if e.is_last() {
                    next = e.child_vcn;
                    break;
                }
                let fnm = file_name::parse(&e.key)
                    .map_err(|m| Error::corrupt(dir.0, format!("index key: {m}")))?;
                match self.upcase.collate(&target, &fnm.name) {
                    std::cmp::Ordering::Greater => continue,
                    std::cmp::Ordering::Equal if fnm.namespace != NAMESPACE_DOS => {
                        return Ok(Some(FileId(ref_record(e.header))));
                    }
                    std::cmp::Ordering::Equal => return Ok(None),
                    std::cmp::Ordering::Less => {
                        next = e.child_vcn;
                        break;
                    }
                }
            }
            let Some(vcn) = next else {
                return Ok(None);
            };
            if !visited.insert(vcn) || visited.len() > MAX_INDEX_DEPTH {
                return Err(Error::corrupt(dir.0, "index descent loops"));
            }
            block = Some(self.index_block(&ctx, vcn)?);
        }
    }

    /// Resolves a `/`-separated path from the root.
    pub fn lookup_path(&self, path: &str) -> Result<Option<FileId>> {
        let mut cur = FileId::ROOT;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            match self.lookup(cur, comp)? {
                Some(id) => cur = id,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }
}

fn kind_hint(f: &file_name::FileName) -> FileKind {
    if f.attributes & attr::REPARSE_POINT != 0 && reparse_point::is_link_tag(f.reparse_tag) {
        FileKind::Symlink
    } else if f.attributes & ATTR_DIRECTORY_INDEX != 0 {
        FileKind::Directory
    } else {
        FileKind::File
    }
}
