//! The public `Volume`: open-time parsing, the caches, and the operations shared by all
//! four variants. Format-specific directory parsing lives in `fat_dir` and `exfat`.

use std::collections::HashMap;
use std::sync::Arc;

use vmsnapfs_io::{Places, ReadAt, ShardedLru};

use crate::dir_cache::{dir_cache, DirCache, Listing};
use crate::dir_data::{DirData, DirMap};
use crate::dir_entry::{slot_kind, ShortEntry, SlotKind};
use crate::error::{Error, Result};
use crate::exfat;
use crate::fat::{Chain, FatTable, Want, Width};
use crate::{bpb, fat_dir, fsinfo, oem, read_exact};
use crate::{Attributes, DirEntry, FatType, FileId, FileKind, Metadata, VolumeInfo};

/// FAT directories hold at most 65 536 entries of 32 bytes (FAT spec §6).
const FAT_MAX_DIR_BYTES: u64 = 65_536 * 32;
/// Free clusters are counted at open up to this many FAT entries (8 MiB of FAT32).
const MAX_COUNTED_CLUSTERS: u64 = 2 * 1024 * 1024;
/// Runs held in all cached chains (16 bytes each): a badly fragmented 4 GiB file in
/// 512-byte clusters alone can have 8 Mi runs.
const MAX_CACHED_RUNS: usize = 1 << 20;

/// Chains weighed by their runs. One shard, for the reason the directory cache has one:
/// a fragmented file's chain may take most of the budget, and a shard only has its part.
fn chain_cache() -> ShardedLru<(u32, u64, bool), Arc<Chain>> {
    ShardedLru::weighted(MAX_CACHED_RUNS, |c: &Arc<Chain>| c.weight()).with_shards(1)
}

enum FatRoot {
    Fixed { offset: u64, len: u64 },
    Cluster(u32),
}

enum Flavor {
    Fat { fat32: bool, root: FatRoot },
    ExFat(exfat::ExFat),
}

/// An open FAT12/16/32 or exFAT volume. `Send + Sync`; every method takes `&self`.
pub struct Volume {
    reader: Arc<dyn ReadAt>,
    info: VolumeInfo,
    cluster_size: u64,
    data_start: u64,
    fat: FatTable,
    flavor: Flavor,
    dirs: DirCache,
    chains: ShardedLru<(u32, u64, bool), Arc<Chain>>,
}

impl std::fmt::Debug for Volume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume").field("info", &self.info).finish()
    }
}

impl Volume {
    pub fn open(reader: Arc<dyn ReadAt>) -> Result<Volume> {
        let mut first = vec![0u8; 512];
        read_exact(&*reader, 0, &mut first)?;
        if &first[3..11] == b"EXFAT   " {
            return Self::open_exfat(reader);
        }
        match bpb::parse(&first) {
            Ok(b) => Self::open_fat(reader, b, false),
            Err(primary) => {
                // A FAT32 boot sector keeps a backup at sector 6; with the primary
                // unreadable, its BPB_BkBootSec cannot be trusted, so try the usual place.
                for bps in [512u64, 1024, 2048, 4096] {
                    let mut sector = vec![0u8; 512];
                    if read_exact(&*reader, 6 * bps, &mut sector).is_ok() {
                        if let Ok(b) = bpb::parse(&sector) {
                            if b.fat_type == FatType::Fat32 && u64::from(b.bytes_per_sector) == bps
                            {
                                return Self::open_fat(reader, b, true);
                            }
                        }
                    }
                }
                Err(Error::NotFat(primary))
            }
        }
    }

    fn open_fat(reader: Arc<dyn ReadAt>, b: bpb::Bpb, used_backup: bool) -> Result<Volume> {
        let fat32 = b.fat_type == FatType::Fat32;
        let width = match b.fat_type {
            FatType::Fat12 => Width::W12,
            FatType::Fat16 => Width::W16,
            _ => Width::W32,
        };
        let active = b.active_fat();
        let fat_bytes = u64::from(b.fat_size_sectors) * u64::from(b.bytes_per_sector);
        let fat = FatTable::new(
            reader.clone(),
            b.fat_offset(active),
            fat_bytes,
            width,
            b.cluster_count,
        );
        let root = if fat32 {
            FatRoot::Cluster(b.root_cluster)
        } else {
            FatRoot::Fixed {
                offset: b.root_dir_offset(),
                len: u64::from(b.root_entry_count) * 32,
            }
        };
        // FAT[1] bit 15 (FAT16) / bit 27 (FAT32) is set after a clean shutdown.
        let dirty = match b.fat_type {
            FatType::Fat16 => fat.entry(1).ok().map(|v| v & 0x8000 == 0),
            FatType::Fat32 => fat.entry(1).ok().map(|v| v & 0x0800_0000 == 0),
            _ => None,
        }
        .map(|d| d || b.nt_flags & 1 != 0);
        let hint = if fat32 && b.fs_info_sector != 0 {
            let off = u64::from(b.fs_info_sector) * u64::from(b.bytes_per_sector);
            let mut sector = vec![0u8; 512];
            read_exact(&*reader, off, &mut sector)
                .ok()
                .and_then(|()| fsinfo::parse(&sector, b.cluster_count))
                .and_then(|f| f.free_count)
        } else {
            None
        };
        // Counting reads the whole FAT: always cheap for FAT12/16 (at most 128 KiB),
        // done for FAT32 only when FSInfo has no count and the FAT is small.
        let free_clusters = hint.or_else(|| {
            (u64::from(b.cluster_count) <= MAX_COUNTED_CLUSTERS)
                .then(|| fat.count_free().ok())
                .flatten()
        });
        let bpb_label = b
            .volume_label
            .and_then(|l| {
                // The label as the name of an otherwise empty entry: cannot be short.
                let entry = [&l[..], &[0u8; 21]].concat();
                ShortEntry::parse(&entry, false).ok().map(|e| e.label())
            })
            .filter(|l| !l.is_empty() && l != "NO NAME");
        let info = VolumeInfo {
            fat_type: b.fat_type,
            label: bpb_label,
            serial: b.volume_id,
            bytes_per_sector: b.bytes_per_sector,
            cluster_size: b.cluster_size(),
            total_clusters: b.cluster_count,
            free_clusters,
            dirty,
            active_fat: active,
            used_backup_boot_sector: used_backup,
        };
        let mut vol = Volume {
            reader,
            info,
            cluster_size: u64::from(b.cluster_size()),
            data_start: b.data_start_sector * u64::from(b.bytes_per_sector),
            fat,
            flavor: Flavor::Fat { fat32, root },
            dirs: dir_cache(),
            chains: chain_cache(),
        };
        // The root's volume-label entry wins over the BPB copy, as on Windows. A
        // damaged root is reported when it is listed, not here.
        if let Ok(data) = vol.fat_dir_data(FileId::ROOT) {
            if let Ok((_, Some(label))) = fat_dir::parse(&data, fat32, true) {
                vol.info.label = Some(label).filter(|l| !l.is_empty());
            }
        }
        Ok(vol)
    }

    fn open_exfat(reader: Arc<dyn ReadAt>) -> Result<Volume> {
        let (bs, used_backup) = exfat::boot_sector::read_boot_region(&*reader)?;
        let cs = bs.cluster_size();
        let fat = FatTable::new(
            reader.clone(),
            bs.fat_offset_bytes(bs.active_fat()),
            bs.fat_length_bytes(),
            Width::ExFat,
            bs.cluster_count,
        );
        let info = VolumeInfo {
            fat_type: FatType::ExFat,
            label: None,
            serial: Some(bs.serial),
            bytes_per_sector: bs.bytes_per_sector(),
            cluster_size: cs,
            total_clusters: bs.cluster_count,
            free_clusters: None,
            dirty: Some(bs.volume_flags & 0x2 != 0),
            active_fat: bs.active_fat(),
            used_backup_boot_sector: used_backup,
        };
        let mut vol = Volume {
            reader,
            info,
            cluster_size: u64::from(cs),
            data_start: bs.cluster_heap_offset_bytes(),
            fat,
            flavor: Flavor::ExFat(exfat::ExFat::new(bs.root_cluster)),
            dirs: dir_cache(),
            chains: chain_cache(),
        };
        // The root holds the bitmap, up-case table and label; without a readable root
        // nothing on the volume is reachable, so that one failure fails the open.
        let root = vol.exfat_dir_data(FileId::ROOT)?;
        let meta = exfat::scan_root_metadata(&root, bs.active_fat())?;
        vol.info.label = meta.label;
        // A bitmap shorter than one bit per cluster would count the rest as free.
        let bytes_needed = u64::from(bs.cluster_count).div_ceil(8);
        if let Some((first, len)) = meta.bitmap.filter(|&(_, len)| len >= bytes_needed) {
            vol.info.free_clusters = vol
                .read_contiguous_or_chain(first, len, false, exfat::MAX_BITMAP_BYTES)
                .ok()
                .map(|bytes| exfat::allocation_bitmap::count_free(&bytes, bs.cluster_count));
        }
        if let Some(up) = meta.upcase {
            if let Ok(bytes) = vol.read_contiguous_or_chain(
                up.first_cluster,
                up.data_length,
                false,
                exfat::upcase_table::MAX_BYTES,
            ) {
                if let Some(table) = exfat::upcase_table::UpcaseTable::load(&bytes, up.checksum) {
                    if let Flavor::ExFat(x) = &mut vol.flavor {
                        x.upcase = Some(table);
                    }
                }
            }
        }
        Ok(vol)
    }

    pub fn fat_type(&self) -> FatType {
        self.info.fat_type
    }

    pub fn info(&self) -> VolumeInfo {
        self.info.clone()
    }

    pub fn root(&self) -> FileId {
        FileId::ROOT
    }

    pub fn stat(&self, id: FileId) -> Result<Metadata> {
        self.node(id).map(|(m, _)| m)
    }

    /// The entries of `dir`, in on-disk order. Never includes "." or "..".
    pub fn read_dir(&self, dir: FileId) -> Result<Vec<DirEntry>> {
        Ok(self.listing(dir)?.entries.to_vec())
    }

    /// Like [`Volume::read_dir`] but shares the cached listing instead of copying it:
    /// for a FUSE `readdir` that is called once per chunk of a huge directory.
    pub fn read_dir_shared(&self, dir: FileId) -> Result<Arc<Vec<DirEntry>>> {
        Ok(self.listing(dir)?.entries.clone())
    }

    /// Case-insensitive: FAT folds with Unicode simple upper-casing (which is the OEM
    /// rule for ASCII 8.3 names) and also accepts the 8.3 alias; exFAT folds with the
    /// volume's own up-case table.
    pub fn lookup(&self, dir: FileId, name: &str) -> Result<Option<FileId>> {
        let listing = self.listing(dir)?;
        let key = self.fold(name);
        Ok(listing
            .index
            .get(&key)
            .and_then(|&i| listing.entries.get(i))
            .map(|e| e.id))
    }

    /// Positional read; returns fewer bytes than `buf.len()` only at end of file.
    pub fn read(&self, id: FileId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let (meta, contiguous) = self.node(id)?;
        if meta.is_dir() {
            return Err(Error::IsADirectory(id));
        }
        if offset >= meta.size || buf.is_empty() {
            return Ok(0);
        }
        let n = (meta.size - offset).min(buf.len() as u64) as usize;
        let buf = &mut buf[..n];
        let valid = meta.valid_data_length.min(meta.size);
        let from_disk = valid.saturating_sub(offset).min(n as u64) as usize;
        if from_disk > 0 {
            let chain = self.chain(meta.first_cluster, meta.size, contiguous)?;
            self.read_chain(&chain, offset, &mut buf[..from_disk])?;
        }
        // exFAT: bytes between ValidDataLength and DataLength were never written.
        buf[from_disk..].fill(0);
        Ok(n)
    }

    /// Where the bytes `read` would return lie on the volume's source, appended to
    /// `out`: their count (short at end of file), or None when some cannot be placed (a
    /// directory, or a chain or range that `read` reports as an error), and the caller
    /// reads them instead.
    pub fn place(&self, id: FileId, offset: u64, len: u64, out: &mut Places) -> Option<u64> {
        let (meta, contiguous) = self.node(id).ok()?;
        if meta.is_dir() {
            return None;
        }
        let n = meta.size.saturating_sub(offset).min(len);
        let valid = meta.valid_data_length.min(meta.size);
        let from_disk = valid.saturating_sub(offset).min(n);
        if from_disk > 0 {
            let chain = self.chain(meta.first_cluster, meta.size, contiguous).ok()?;
            let mut done = 0;
            while done < from_disk {
                let (avail, disk) = self.chain_at(&chain, offset + done).ok()?;
                let take = avail.min(from_disk - done);
                if !self.reader.place(disk, take, out) {
                    return None;
                }
                done += take;
            }
        }
        out.zero(n - from_disk);
        Some(n)
    }

    /// Where a file's data lies on the volume: `(byte offset, length)` runs in file
    /// order, covering `size` bytes. Lets a caller see fragmentation or map a file
    /// straight to the underlying image.
    pub fn extents(&self, id: FileId) -> Result<Vec<(u64, u64)>> {
        let (meta, contiguous) = self.node(id)?;
        if meta.is_dir() {
            return Err(Error::IsADirectory(id));
        }
        let chain = self.chain(meta.first_cluster, meta.size, contiguous)?;
        let mut left = meta.size;
        let mut out = Vec::new();
        for (start, len) in chain.runs() {
            let bytes = (u64::from(len) * self.cluster_size).min(left);
            out.push((
                self.data_start + u64::from(start - 2) * self.cluster_size,
                bytes,
            ));
            left -= bytes;
        }
        Ok(out)
    }

    fn fold(&self, name: &str) -> String {
        match &self.flavor {
            Flavor::Fat { .. } => oem::fold_key(name),
            Flavor::ExFat(x) => x.fold(name),
        }
    }

    /// Metadata of `id` and whether its data is one contiguous run (exFAT NoFatChain).
    fn node(&self, id: FileId) -> Result<(Metadata, bool)> {
        if id == FileId::ROOT {
            return Ok((
                Metadata {
                    kind: FileKind::Directory,
                    size: 0,
                    valid_data_length: 0,
                    created: None,
                    modified: None,
                    accessed: None,
                    attributes: Attributes(Attributes::DIRECTORY),
                    first_cluster: match &self.flavor {
                        Flavor::Fat {
                            root: FatRoot::Cluster(c),
                            ..
                        } => *c,
                        Flavor::Fat { .. } => 0,
                        Flavor::ExFat(x) => x.root_cluster,
                    },
                },
                false,
            ));
        }
        let off = id.as_u64();
        if off.saturating_add(32) > self.reader.size() || off < 512 {
            return Err(Error::InvalidFileId(id));
        }
        match &self.flavor {
            Flavor::Fat { fat32, .. } => {
                if !off.is_multiple_of(32) {
                    return Err(Error::InvalidFileId(id));
                }
                let mut e = [0u8; 32];
                read_exact(&*self.reader, off, &mut e)?;
                let short = Error::short_entry(off);
                if slot_kind(&e).map_err(&short)? != SlotKind::Short {
                    return Err(Error::InvalidFileId(id));
                }
                let s = ShortEntry::parse(&e, *fat32).map_err(&short)?;
                if s.is_volume_label() || s.is_dot() {
                    return Err(Error::InvalidFileId(id));
                }
                Ok((fat_dir::metadata(&s), false))
            }
            Flavor::ExFat(x) => x.node(
                &exfat::Geometry {
                    reader: &*self.reader,
                    fat: &self.fat,
                    data_start: self.data_start,
                    cluster_size: self.cluster_size,
                },
                id,
            ),
        }
    }

    fn listing(&self, dir: FileId) -> Result<Arc<Listing>> {
        if let Some(l) = self.dirs.get(&dir) {
            return Ok(l);
        }
        let entries = match &self.flavor {
            Flavor::Fat { fat32, .. } => {
                let data = self.fat_dir_data(dir)?;
                fat_dir::parse(&data, *fat32, dir == FileId::ROOT)?.0
            }
            Flavor::ExFat(x) => {
                let data = self.exfat_dir_data(dir)?;
                x.parse_dir(&data)
            }
        };
        let mut index = HashMap::with_capacity(entries.len() * 2);
        for (i, e) in entries.iter().enumerate() {
            index.entry(self.fold(&e.name)).or_insert(i);
        }
        // Aliases after all long names, so that a long name always wins a collision.
        for (i, e) in entries.iter().enumerate() {
            if let Some(s) = &e.short_name {
                index.entry(self.fold(s)).or_insert(i);
            }
        }
        let listing = Arc::new(Listing {
            entries: Arc::new(entries),
            index,
        });
        self.dirs.put(dir, listing.clone());
        Ok(listing)
    }

    fn dir_node(&self, dir: FileId) -> Result<(Metadata, bool)> {
        let (meta, contiguous) = self.node(dir)?;
        if !meta.is_dir() {
            return Err(Error::NotADirectory(dir));
        }
        Ok((meta, contiguous))
    }

    fn fat_dir_data(&self, dir: FileId) -> Result<DirData> {
        let (meta, _) = self.dir_node(dir)?;
        if let (
            true,
            Flavor::Fat {
                root: FatRoot::Fixed { offset, len },
                ..
            },
        ) = (dir == FileId::ROOT, &self.flavor)
        {
            let mut bytes = vec![0u8; *len as usize];
            read_exact(&*self.reader, *offset, &mut bytes)?;
            return Ok(self.dir_data(bytes, DirMap::Linear(*offset)));
        }
        let max = (FAT_MAX_DIR_BYTES / self.cluster_size).max(1);
        let chain = Arc::new(self.fat.chain(meta.first_cluster, Want::UntilEnd { max })?);
        let len = chain.clusters() * self.cluster_size;
        let mut bytes = vec![0u8; len as usize];
        self.read_chain(&chain, 0, &mut bytes)?;
        Ok(self.dir_data(bytes, DirMap::Chain(chain)))
    }

    fn exfat_dir_data(&self, dir: FileId) -> Result<DirData> {
        let (meta, contiguous) = self.dir_node(dir)?;
        let first = meta.first_cluster;
        if dir == FileId::ROOT {
            let max = (exfat::MAX_DIR_BYTES / self.cluster_size).max(1);
            let chain = Arc::new(self.fat.chain(first, Want::UntilEnd { max })?);
            let mut bytes = vec![0u8; (chain.clusters() * self.cluster_size) as usize];
            self.read_chain(&chain, 0, &mut bytes)?;
            return Ok(self.dir_data(bytes, DirMap::Chain(chain)));
        }
        if meta.size > exfat::MAX_DIR_BYTES {
            return Err(Error::CorruptEntry {
                offset: dir.as_u64(),
                reason: format!("directory of {} bytes exceeds the exFAT maximum", meta.size),
            });
        }
        let chain = self.chain(first, meta.size, contiguous)?;
        let mut bytes = vec![0u8; meta.size as usize];
        self.read_chain(&chain, 0, &mut bytes)?;
        let mut data = self.dir_data(bytes, DirMap::Chain(chain));
        data.contiguous = contiguous;
        Ok(data)
    }

    fn dir_data(&self, bytes: Vec<u8>, map: DirMap) -> DirData {
        DirData::new(bytes, map, self.cluster_size, self.data_start)
    }

    /// Reads a metadata stream (bitmap, up-case table) of bounded size.
    fn read_contiguous_or_chain(
        &self,
        first: u32,
        len: u64,
        contiguous: bool,
        max: u64,
    ) -> Result<Vec<u8>> {
        if len > max {
            return Err(Error::FileTooLarge { first, size: len });
        }
        let chain = self.chain(first, len, contiguous)?;
        let mut bytes = vec![0u8; len as usize];
        self.read_chain(&chain, 0, &mut bytes)?;
        Ok(bytes)
    }

    /// The chain holding `len` bytes from `first`, cached: a sequential reader of a
    /// fragmented file must not re-walk the FAT on every call.
    fn chain(&self, first: u32, len: u64, contiguous: bool) -> Result<Arc<Chain>> {
        let clusters = len.div_ceil(self.cluster_size);
        let key = (first, clusters, contiguous);
        if let Some(c) = self.chains.get(&key) {
            return Ok(c);
        }
        if clusters == 0 {
            return Ok(Arc::new(Chain::default()));
        }
        if first == 0 {
            return Err(Error::ChainBroken {
                first,
                cluster: 0,
                index: 0,
                what: "non-empty file without a first cluster",
            });
        }
        let chain = if contiguous {
            let last = u64::from(first) + clusters.saturating_sub(1);
            self.fat.check_cluster(first, first)?;
            if last > u64::from(self.fat.max_cluster()) {
                return Err(Error::FileTooLarge { first, size: len });
            }
            Chain::contiguous(first, clusters)
        } else {
            self.fat.chain(first, Want::Exactly(clusters))?
        };
        let chain = Arc::new(chain);
        self.chains.put(key, chain.clone());
        Ok(chain)
    }

    fn read_chain(&self, chain: &Chain, mut offset: u64, mut buf: &mut [u8]) -> Result<()> {
        while !buf.is_empty() {
            let (avail, disk) = self.chain_at(chain, offset)?;
            let take = avail.min(buf.len() as u64) as usize;
            let (now, rest) = buf.split_at_mut(take);
            read_exact(&*self.reader, disk, now)?;
            buf = rest;
            offset += take as u64;
        }
        Ok(())
    }

    /// Where byte `offset` of a file with `chain` lies on the volume, and how many bytes
    /// of the chain's run follow it there.
    fn chain_at(&self, chain: &Chain, offset: u64) -> Result<(u64, u64)> {
        let cs = self.cluster_size;
        let (index, within) = (offset / cs, offset % cs);
        let (cluster, run) = chain.locate(index).ok_or(Error::ChainBroken {
            first: 0,
            cluster: 0,
            index,
            what: "read past the end of the chain",
        })?;
        let disk = self.data_start + u64::from(cluster - 2) * cs + within;
        Ok((run.saturating_mul(cs) - within, disk))
    }
}
