//! The volume: positional reads through the journal overlay, inodes, file maps,
//! directories, symlinks, xattrs.

use crate::error::{Error, Result};
use crate::extent_tree::{self, Node};
use crate::group_descriptor::{self, GroupDescriptor};
use crate::inode::{flags, Inode};
use crate::superblock::{self, compat, incompat, ro_compat, Superblock};
use crate::types::{DirEntry, FileKind, Metadata, VolumeInfo};
use crate::{block_map, dir_entry, inline_data, journal, xattr};
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use vmsnapfs_io::{Places, ReadAt, ShardedLru};

pub const ROOT: u32 = 2;
/// The kernel's limit on xattr values (XATTR_SIZE_MAX).
const XATTR_SIZE_MAX: u32 = 65536;
/// PATH_MAX: no symlink target is longer.
const SYMLINK_MAX: u64 = 4096;

/// A run of a file's blocks: logical `logical..logical+len` at `physical..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    logical: u64,
    len: u64,
    physical: u64,
    /// Uninitialized (preallocated): reads as zeros.
    uninit: bool,
}

/// A directory's entries (with `.` and `..`) in on-disk order, and their indices
/// sorted by name for lookups in O(log n).
struct Listing {
    entries: Vec<DirEntry>,
    by_name: Vec<u32>,
}

impl Listing {
    fn new(entries: Vec<DirEntry>) -> Listing {
        let mut by_name: Vec<u32> = (0..entries.len() as u32).collect();
        by_name.sort_by(|&a, &b| entries[a as usize].name.cmp(&entries[b as usize].name));
        Listing { entries, by_name }
    }

    fn find(&self, name: &[u8]) -> Option<&DirEntry> {
        self.by_name
            .binary_search_by(|&i| self.entries[i as usize].name.as_slice().cmp(name))
            .ok()
            .map(|k| &self.entries[self.by_name[k] as usize])
    }
}

/// Where a journaled block's newest copy lies on the volume.
#[derive(Debug, Clone, Copy)]
struct OverlayCopy {
    physical: u64,
    escaped: bool,
}

/// A read-only ext2/3/4 volume. `Send + Sync`; every method takes `&self`.
pub struct Volume {
    src: Arc<dyn ReadAt>,
    sb: Superblock,
    bs: u64,
    needs_recovery: bool,
    journal_transactions: u32,
    overlay: BTreeMap<u64, OverlayCopy>,
    replayed: bool,
    blocks: ShardedLru<u64, Arc<Vec<u8>>>,
    inodes: ShardedLru<u32, Arc<Inode>>,
    maps: ShardedLru<u32, Arc<Vec<Run>>>,
    dirs: ShardedLru<u32, Arc<Listing>>,
}

impl std::fmt::Debug for Volume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume")
            .field("sb", &self.sb)
            .finish_non_exhaustive()
    }
}

fn push_run(runs: &mut Vec<Run>, logical: u64, len: u64, physical: u64, uninit: bool) {
    if let Some(last) = runs.last_mut() {
        if last.logical + last.len == logical
            && last.physical + last.len == physical
            && last.uninit == uninit
        {
            last.len += len;
            return;
        }
    }
    runs.push(Run {
        logical,
        len,
        physical,
        uninit,
    });
}

impl Volume {
    /// Opens the volume: superblock, feature check, and (when the journal needs
    /// recovery) an in-memory replay of the journal's committed transactions.
    pub fn open(src: Arc<dyn ReadAt>) -> Result<Volume> {
        let mut b = vec![0u8; superblock::SIZE];
        src.read_at(superblock::OFFSET, &mut b)
            .map_err(|source| Error::Io {
                offset: superblock::OFFSET,
                len: superblock::SIZE,
                source,
            })?;
        let sb = Superblock::parse(&b)?;
        sb.check_features()?;
        let bs = sb.block_size() as u64;
        let mut v = Volume {
            src,
            bs,
            needs_recovery: sb.has_incompat(incompat::RECOVER),
            journal_transactions: 0,
            overlay: BTreeMap::new(),
            replayed: false,
            blocks: ShardedLru::weighted(16 << 20, |b: &Arc<Vec<u8>>| b.len()),
            inodes: ShardedLru::new(8192),
            maps: ShardedLru::weighted(8 << 20, |m: &Arc<Vec<Run>>| 32 * m.len().max(1)),
            // Few shards: one listing of a directory with 100 000 entries weighs ~8 MiB
            // and must still fit its shard, or every lookup would rescan it.
            dirs: ShardedLru::weighted(64 << 20, |d: &Arc<Listing>| {
                d.entries
                    .iter()
                    .map(|e| 36 + e.name.len())
                    .sum::<usize>()
                    .max(1)
            })
            .with_shards(4),
            sb,
        };
        if v.needs_recovery
            && v.sb.has_compat(compat::HAS_JOURNAL)
            && v.sb.journal_inum != 0
            && v.sb.journal_dev == 0
        {
            v.replay_journal()?;
        }
        Ok(v)
    }

    fn replay_journal(&mut self) -> Result<()> {
        let jino = self.sb.journal_inum;
        let jinode = self.load_inode(jino)?;
        let jmap = self.build_map(jino, &jinode)?;
        let phys_of = |lb: u32| -> Option<u64> {
            let lb = lb as u64;
            let i = jmap.partition_point(|r| r.logical + r.len <= lb);
            jmap.get(i)
                .filter(|r| r.logical <= lb && !r.uninit)
                .map(|r| r.physical + (lb - r.logical))
        };
        let read = |lb: u32| -> std::result::Result<Vec<u8>, String> {
            let p = phys_of(lb).ok_or_else(|| format!("journal block {lb} is not mapped"))?;
            let mut buf = vec![0u8; self.bs as usize];
            self.src
                .read_at(p * self.bs, &mut buf)
                .map_err(|e| format!("reading journal block {lb} at fs block {p}: {e}"))?;
            Ok(buf)
        };
        let jsb_block = read(0).map_err(|msg| Error::Journal { block: 0, msg })?;
        let jsb = journal::JournalSuperblock::parse(&jsb_block)
            .map_err(|msg| Error::Journal { block: 0, msg })?;
        if jsb.block_size as u64 != self.bs {
            return Err(Error::Journal {
                block: 0,
                msg: format!(
                    "journal block size {} is not the volume's {}",
                    jsb.block_size, self.bs
                ),
            });
        }
        if jsb.maxlen as u64 > jmap.iter().map(|r| r.logical + r.len).max().unwrap_or(0) {
            return Err(Error::Journal {
                block: 0,
                msg: format!("journal of {} blocks is longer than its inode", jsb.maxlen),
            });
        }
        let replay = journal::replay(&jsb, read).map_err(|(block, msg)| Error::Journal {
            block: block as u64,
            msg,
        })?;
        let mut overlay = BTreeMap::new();
        for (fs_block, copy) in replay.overlay {
            if fs_block >= self.sb.blocks_count {
                continue;
            }
            let physical = phys_of(copy.journal_block).ok_or_else(|| Error::Journal {
                block: copy.journal_block as u64,
                msg: "journal block is not mapped".into(),
            })?;
            overlay.insert(
                fs_block,
                OverlayCopy {
                    physical,
                    escaped: copy.escaped,
                },
            );
        }
        self.overlay = overlay;
        self.journal_transactions = replay.transactions;
        self.replayed = true;
        self.inodes = ShardedLru::new(8192);
        self.maps = ShardedLru::weighted(8 << 20, |m: &Arc<Vec<Run>>| 32 * m.len().max(1));
        self.blocks = ShardedLru::weighted(16 << 20, |b: &Arc<Vec<u8>>| b.len());
        // The superblock itself may have been journaled: take the replayed copy.
        let sb_block = superblock::OFFSET / self.bs;
        if self.overlay.contains_key(&sb_block) {
            let blk = self.meta_block(0, sb_block)?;
            let at = (superblock::OFFSET % self.bs) as usize;
            if let Ok(sb) = Superblock::parse(&blk[at..at + superblock::SIZE]) {
                if sb.block_size() as u64 == self.bs && sb.check_features().is_ok() {
                    self.sb = sb;
                }
            }
        }
        Ok(())
    }

    // ---- block level ----

    fn io_err(offset: u64, len: usize) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Io {
            offset,
            len,
            source,
        }
    }

    /// Reads `buf.len()` bytes starting at byte `off` of block `block`, serving
    /// journaled blocks from their newest journal copy.
    fn read_phys(&self, block: u64, off: u64, buf: &mut [u8]) -> Result<()> {
        let start = block * self.bs + off;
        let nblocks = (off + buf.len() as u64).div_ceil(self.bs);
        if self.overlay.range(block..block + nblocks).next().is_none() {
            return self
                .src
                .read_at(start, buf)
                .map_err(Self::io_err(start, buf.len()));
        }
        let mut done = 0usize;
        let mut pos = start;
        while done < buf.len() {
            let b = pos / self.bs;
            let in_b = pos % self.bs;
            let n = ((self.bs - in_b) as usize).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            match self.overlay.get(&b) {
                Some(c) => {
                    let at = c.physical * self.bs + in_b;
                    self.src.read_at(at, dst).map_err(Self::io_err(at, n))?;
                    if c.escaped && in_b < 4 {
                        let magic = journal::MAGIC.to_be_bytes();
                        for (i, d) in dst.iter_mut().enumerate().take(4 - in_b as usize) {
                            *d = magic[in_b as usize + i];
                        }
                    }
                }
                None => self.src.read_at(pos, dst).map_err(Self::io_err(pos, n))?,
            }
            done += n;
            pos += n as u64;
        }
        Ok(())
    }

    fn check_block(&self, ino: u32, block: u64, len: u64) -> Result<()> {
        match block.checked_add(len) {
            Some(end) if block > 0 && end <= self.sb.blocks_count => Ok(()),
            _ => Err(Error::corrupt(
                ino,
                block,
                0,
                format!(
                    "block run {block}+{len} outside the volume's {} blocks",
                    self.sb.blocks_count
                ),
            )),
        }
    }

    /// A whole metadata block (through the overlay, cached).
    fn meta_block(&self, ino: u32, block: u64) -> Result<Arc<Vec<u8>>> {
        if block >= self.sb.blocks_count {
            return Err(Error::corrupt(
                ino,
                block,
                0,
                format!("block beyond the volume's {} blocks", self.sb.blocks_count),
            ));
        }
        self.blocks.get_or_try_insert(block, || {
            let mut b = vec![0u8; self.bs as usize];
            self.read_phys(block, 0, &mut b)?;
            Ok(Arc::new(b))
        })
    }

    // ---- group descriptors and inodes ----

    fn group_desc(&self, group: u64) -> Result<GroupDescriptor> {
        let off = self.sb.descriptor_offset(group);
        let block = off / self.bs;
        let b = self.meta_block(0, block)?;
        let at = (off % self.bs) as usize;
        GroupDescriptor::parse(&b[at..], self.sb.desc_size as usize)
            .map_err(|e| Error::short(0, block, "group descriptor", e))
    }

    /// The inode as stored, whether in use or not.
    fn load_inode(&self, ino: u32) -> Result<Arc<Inode>> {
        if ino == 0 || ino > self.sb.inodes_count {
            return Err(Error::NoSuchInode {
                ino,
                count: self.sb.inodes_count,
            });
        }
        self.inodes.get_or_try_insert(ino, || {
            let ipg = self.sb.inodes_per_group as u64;
            let group = (ino as u64 - 1) / ipg;
            let index = (ino as u64 - 1) % ipg;
            let gd = self.group_desc(group)?;
            let csum = self.sb.has_ro_compat(ro_compat::GDT_CSUM)
                || self.sb.has_ro_compat(ro_compat::METADATA_CSUM);
            if csum
                && (gd.flags & group_descriptor::INODE_UNINIT != 0
                    || index >= ipg.saturating_sub(gd.itable_unused as u64))
            {
                return Err(Error::NotInUse { ino });
            }
            let isz = self.sb.inode_size as u64;
            let table_blocks = (ipg * isz).div_ceil(self.bs);
            self.check_block(ino, gd.inode_table, table_blocks)?;
            let byte = gd.inode_table * self.bs + index * isz;
            let block = byte / self.bs;
            let b = self.meta_block(ino, block)?;
            let at = (byte % self.bs) as usize;
            let raw = &b[at..at + isz as usize];
            Inode::parse(raw)
                .map(Arc::new)
                .map_err(|e| Error::short(ino, block, "inode", e))
        })
    }

    /// An inode in use: mode set and at least one link (orphans have none).
    fn inode(&self, ino: u32) -> Result<Arc<Inode>> {
        let i = self.load_inode(ino)?;
        if i.mode == 0 || i.links_count == 0 {
            return Err(Error::NotInUse { ino });
        }
        Ok(i)
    }

    // ---- file maps ----

    fn file_blocks(&self, inode: &Inode) -> u64 {
        inode.size.div_ceil(self.bs)
    }

    fn build_map(&self, ino: u32, inode: &Inode) -> Result<Arc<Vec<Run>>> {
        if inode.has_flag(flags::INLINE_DATA) {
            return Ok(Arc::new(Vec::new()));
        }
        match inode.kind() {
            FileKind::File | FileKind::Dir | FileKind::Symlink => {}
            _ => return Ok(Arc::new(Vec::new())),
        }
        self.maps.get_or_try_insert(ino, || {
            let mut runs = Vec::new();
            if inode.has_flag(flags::EXTENTS) {
                let mut seen = HashSet::new();
                self.walk_extents(ino, &inode.block[..], 0, None, &mut runs, &mut seen)?;
            } else {
                self.walk_block_map(ino, inode, &mut runs)?;
            }
            Ok(Arc::new(runs))
        })
    }

    fn walk_extents(
        &self,
        ino: u32,
        node: &[u8],
        block: u64,
        want_depth: Option<u16>,
        runs: &mut Vec<Run>,
        seen: &mut HashSet<u64>,
    ) -> Result<()> {
        let parsed = extent_tree::parse_node(node).map_err(|m| Error::corrupt(ino, block, 0, m))?;
        let depth = match &parsed {
            Node::Leaf(_) => 0,
            Node::Index { depth, .. } => *depth,
        };
        if want_depth.is_some_and(|d| d != depth) {
            return Err(Error::corrupt(
                ino,
                block,
                6,
                format!("extent node depth {depth}, parent wants {want_depth:?}"),
            ));
        }
        match parsed {
            Node::Leaf(extents) => {
                for e in extents {
                    let end = runs.last().map_or(0, |r| r.logical + r.len);
                    if (e.logical as u64) < end {
                        return Err(Error::corrupt(
                            ino,
                            block,
                            0,
                            format!(
                                "extent at logical block {} overlaps an earlier one",
                                e.logical
                            ),
                        ));
                    }
                    self.check_block(ino, e.physical, e.len as u64)?;
                    push_run(runs, e.logical as u64, e.len as u64, e.physical, e.uninit);
                }
            }
            Node::Index { entries, .. } => {
                for idx in entries {
                    if !seen.insert(idx.leaf) {
                        return Err(Error::corrupt(
                            ino,
                            idx.leaf,
                            0,
                            "extent tree visits this block twice",
                        ));
                    }
                    let child = self.meta_block(ino, idx.leaf)?;
                    self.walk_extents(ino, &child, idx.leaf, Some(depth - 1), runs, seen)?;
                }
            }
        }
        Ok(())
    }

    fn walk_block_map(&self, ino: u32, inode: &Inode, runs: &mut Vec<Run>) -> Result<()> {
        let nblocks = self.file_blocks(inode);
        let per = self.bs / 4;
        let mut seen = HashSet::new();
        let mut logical = 0u64;
        for i in 0..15 {
            let level = if i < block_map::DIRECT {
                0
            } else {
                (i - block_map::DIRECT + 1) as u32
            };
            if logical >= nblocks {
                break;
            }
            let ptr = inode.block_word(i) as u64;
            let span = block_map::span(level, per);
            if ptr != 0 {
                self.walk_indirect(ino, ptr, level, logical, nblocks, runs, &mut seen)?;
            }
            logical = logical.saturating_add(span);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_indirect(
        &self,
        ino: u32,
        ptr: u64,
        level: u32,
        logical: u64,
        nblocks: u64,
        runs: &mut Vec<Run>,
        seen: &mut HashSet<u64>,
    ) -> Result<()> {
        self.check_block(ino, ptr, 1)?;
        if level == 0 {
            push_run(runs, logical, 1, ptr, false);
            return Ok(());
        }
        if !seen.insert(ptr) {
            return Err(Error::corrupt(ino, ptr, 0, "indirect block visited twice"));
        }
        let b = self.meta_block(ino, ptr)?;
        let span = block_map::span(level - 1, self.bs / 4);
        let mut at = logical;
        for p in block_map::parse_indirect(&b) {
            if at >= nblocks {
                break;
            }
            if p != 0 {
                self.walk_indirect(ino, p as u64, level - 1, at, nblocks, runs, seen)?;
            }
            at = at.saturating_add(span);
        }
        Ok(())
    }

    // ---- public API ----

    /// The root directory's inode number (2).
    pub fn root(&self) -> u32 {
        ROOT
    }

    pub fn info(&self) -> VolumeInfo {
        let sb = &self.sb;
        VolumeInfo {
            label: sb.label(),
            uuid: sb.uuid,
            block_size: sb.block_size(),
            blocks_count: sb.blocks_count,
            free_blocks: sb.free_blocks_count,
            inodes_count: sb.inodes_count,
            free_inodes: sb.free_inodes_count,
            inode_size: sb.inode_size,
            feature_compat: sb.feature_compat,
            feature_incompat: sb.feature_incompat,
            feature_ro_compat: sb.feature_ro_compat,
            needs_recovery: self.needs_recovery,
            journal_replayed: self.replayed,
            journal_transactions: self.journal_transactions,
            journal_blocks: self.overlay.len(),
            has_errors: sb.state & 2 != 0,
            not_clean: sb.state & 1 == 0,
            error_count: sb.error_count,
            last_orphan: sb.last_orphan,
            checksums_verified: false,
        }
    }

    pub fn stat(&self, ino: u32) -> Result<Metadata> {
        let i = self.inode(ino)?;
        let kind = i.kind();
        Ok(Metadata {
            ino,
            kind,
            mode: i.mode,
            uid: i.uid,
            gid: i.gid,
            size: i.size,
            nlink: i.links_count as u32,
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
            crtime: i.crtime,
            rdev: if matches!(kind, FileKind::CharDev | FileKind::BlockDev) {
                i.rdev()
            } else {
                0
            },
            allocated: i.allocated(
                self.sb.has_ro_compat(ro_compat::HUGE_FILE),
                self.sb.block_size(),
            ),
            flags: i.flags,
            generation: i.generation,
        })
    }

    fn inline_bytes(&self, ino: u32, i: &Inode) -> Result<Vec<u8>> {
        let data = self.ibody_value(ino, i, xattr::INDEX_SYSTEM, b"data")?;
        Ok(inline_data::assemble(&i.block, data.as_deref(), i.size))
    }

    fn check_readable(&self, ino: u32, i: &Inode) -> Result<()> {
        if i.has_flag(flags::ENCRYPT) {
            return Err(Error::UnsupportedInode {
                ino,
                msg: "file is encrypted (fscrypt)".into(),
            });
        }
        Ok(())
    }

    /// Reads file bytes at `offset`; fewer than `buf.len()` only at end of file. Holes
    /// and uninitialized extents read as zeros.
    pub fn read(&self, ino: u32, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let i = self.inode(ino)?;
        self.read_inode(ino, &i, offset, buf)
    }

    fn read_inode(&self, ino: u32, i: &Inode, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.check_readable(ino, i)?;
        if offset >= i.size {
            return Ok(0);
        }
        let n = ((i.size - offset).min(buf.len() as u64)) as usize;
        let buf = &mut buf[..n];
        if i.has_flag(flags::INLINE_DATA) {
            let data = self.inline_bytes(ino, i)?;
            buf.fill(0);
            let start = (offset as usize).min(data.len());
            let m = (data.len() - start).min(n);
            buf[..m].copy_from_slice(&data[start..start + m]);
            return Ok(n);
        }
        let map = self.build_map(ino, i)?;
        let mut done = 0usize;
        while done < n {
            let (left, at) = self.stretch_at(&map, offset + done as u64);
            let chunk = left.min((n - done) as u64) as usize;
            let piece = &mut buf[done..done + chunk];
            match at {
                None => piece.fill(0),
                Some(at) => self.read_phys(at / self.bs, at % self.bs, piece)?,
            }
            done += chunk;
        }
        Ok(n)
    }

    /// What byte `pos` of a file mapped by `map` reads from: the bytes left before that
    /// changes, and the volume byte they start at (None: a hole or an uninitialized
    /// extent, which read as zeros).
    fn stretch_at(&self, map: &[Run], pos: u64) -> (u64, Option<u64>) {
        let lb = pos / self.bs;
        match map.get(map.partition_point(|r| r.logical + r.len <= lb)) {
            Some(r) if r.logical <= lb => {
                let left = (r.logical + r.len) * self.bs - pos;
                let at = (r.physical + (lb - r.logical)) * self.bs + pos % self.bs;
                (left, (!r.uninit).then_some(at))
            }
            next => {
                let end = next.map_or(u64::MAX, |r| r.logical.saturating_mul(self.bs));
                (end - pos, None)
            }
        }
    }

    /// Where the bytes `read` would return lie on the volume's source, appended to
    /// `out`: their count (short at end of file), or None when some cannot be placed
    /// (inline data, blocks the journal replay replaced, or a map or range that `read`
    /// reports as an error), and the caller reads them instead.
    pub fn place(&self, ino: u32, offset: u64, len: u64, out: &mut Places) -> Option<u64> {
        let i = self.inode(ino).ok()?;
        self.check_readable(ino, &i).ok()?;
        if i.has_flag(flags::INLINE_DATA) {
            return None;
        }
        let n = i.size.saturating_sub(offset).min(len);
        let map = self.build_map(ino, &i).ok()?;
        let mut done = 0u64;
        while done < n {
            let (left, at) = self.stretch_at(&map, offset + done);
            let chunk = left.min(n - done);
            match at {
                None => out.zero(chunk),
                Some(at) => {
                    let blocks = at / self.bs..(at + chunk).div_ceil(self.bs);
                    if self.overlay.range(blocks).next().is_some()
                        || !self.src.place(at, chunk, out)
                    {
                        return None;
                    }
                }
            }
            done += chunk;
        }
        Some(n)
    }

    /// The byte ranges that hold data (for SEEK_DATA/SEEK_HOLE): mapped, initialized
    /// extents, cut to the file size. Everything else reads as zeros.
    pub fn data_ranges(&self, ino: u32) -> Result<Vec<Range<u64>>> {
        let i = self.inode(ino)?;
        if i.has_flag(flags::INLINE_DATA) {
            return Ok((i.size > 0).then_some(0..i.size).into_iter().collect());
        }
        let map = self.build_map(ino, &i)?;
        let mut out: Vec<Range<u64>> = Vec::new();
        for r in map.iter().filter(|r| !r.uninit) {
            let s = r.logical * self.bs;
            let e = ((r.logical + r.len) * self.bs).min(i.size);
            if s >= e {
                continue;
            }
            match out.last_mut() {
                Some(l) if l.end == s => l.end = e,
                _ => out.push(s..e),
            }
        }
        Ok(out)
    }

    /// The entries of a directory, including `.` and `..`.
    fn dir_entries(&self, ino: u32) -> Result<Arc<Listing>> {
        let i = self.inode(ino)?;
        if i.kind() != FileKind::Dir {
            return Err(Error::NotADirectory { ino });
        }
        self.check_readable(ino, &i)?;
        self.dirs.get_or_try_insert(ino, || {
            let filetype = self.sb.has_incompat(incompat::FILETYPE);
            let mut raw = Vec::new();
            if i.has_flag(flags::INLINE_DATA) {
                raw.push(dir_entry::RawEntry {
                    ino,
                    name: b".".to_vec(),
                    file_type: 2,
                });
                raw.push(dir_entry::RawEntry {
                    ino: inline_data::dir_parent(&i.block),
                    name: b"..".to_vec(),
                    file_type: 2,
                });
                let first = dir_entry::parse_block(&i.block[4..], filetype).map_err(|(o, m)| {
                    Error::corrupt(ino, 0, 4 + o as u64, format!("inline directory: {m}"))
                })?;
                raw.extend(first);
                if let Some(more) = self.ibody_value(ino, &i, xattr::INDEX_SYSTEM, b"data")? {
                    if !more.is_empty() {
                        raw.extend(dir_entry::parse_block(&more, filetype).map_err(|(o, m)| {
                            Error::corrupt(
                                ino,
                                0,
                                o as u64,
                                format!("inline directory (system.data): {m}"),
                            )
                        })?);
                    }
                }
            } else {
                let map = self.build_map(ino, &i)?;
                // Without large_dir a directory stays below 2 GiB (a two-level htree);
                // a bigger size is damage, not a reason to read the whole volume.
                if !self.sb.has_incompat(incompat::LARGEDIR) && i.size > 1 << 32 {
                    return Err(Error::corrupt(
                        ino,
                        0,
                        0,
                        format!("directory of {} bytes", i.size),
                    ));
                }
                let nblocks = self.file_blocks(&i);
                for r in map.iter().filter(|r| !r.uninit) {
                    for k in 0..r.len {
                        if r.logical + k >= nblocks {
                            break;
                        }
                        let pb = r.physical + k;
                        let b = self.meta_block(ino, pb)?;
                        raw.extend(dir_entry::parse_block(&b, filetype).map_err(|(o, m)| {
                            Error::corrupt(ino, pb, o as u64, format!("directory block: {m}"))
                        })?);
                    }
                }
            }
            let mut out = Vec::with_capacity(raw.len());
            for e in raw {
                let kind = match FileKind::from_dir_type(e.file_type) {
                    Some(k) => k,
                    None => match self.inode(e.ino) {
                        Ok(c) => c.kind(),
                        Err(_) => FileKind::Unknown,
                    },
                };
                out.push(DirEntry {
                    name: e.name,
                    ino: e.ino,
                    kind,
                });
            }
            Ok(Arc::new(Listing::new(out)))
        })
    }

    /// The entries of a directory, without `.` and `..`, in on-disk order.
    pub fn read_dir(&self, ino: u32) -> Result<Vec<DirEntry>> {
        Ok(self
            .dir_entries(ino)?
            .entries
            .iter()
            .filter(|e| e.name != b"." && e.name != b"..")
            .cloned()
            .collect())
    }

    /// The entry `name` (bytes, exact) of directory `dir`; `.` is `dir` itself and
    /// `..` its parent (the root's parent is the root).
    pub fn lookup(&self, dir: u32, name: &[u8]) -> Result<Option<DirEntry>> {
        let entries = self.dir_entries(dir)?;
        if name == b"." {
            return Ok(Some(DirEntry {
                name: name.to_vec(),
                ino: dir,
                kind: FileKind::Dir,
            }));
        }
        Ok(entries.find(name).cloned())
    }

    /// The parent directory of a directory (from its `..` entry).
    pub fn parent(&self, dir: u32) -> Result<u32> {
        Ok(self.lookup(dir, b"..")?.map_or(dir, |e| e.ino))
    }

    /// Resolves a `/`-separated path from the root, without following symlinks.
    pub fn lookup_path(&self, path: &[u8]) -> Result<Option<u32>> {
        let mut cur = ROOT;
        for comp in path.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
            match self.lookup(cur, comp)? {
                Some(e) => cur = e.ino,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// A symlink's target: fast (in i_block), inline, or in a data block.
    pub fn read_link(&self, ino: u32) -> Result<Vec<u8>> {
        let i = self.inode(ino)?;
        if i.kind() != FileKind::Symlink {
            return Err(Error::NotASymlink { ino });
        }
        self.check_readable(ino, &i)?;
        if i.size > SYMLINK_MAX || i.size > self.bs {
            return Err(Error::corrupt(
                ino,
                0,
                0,
                format!("symlink of {} bytes", i.size),
            ));
        }
        // As the kernel decides (ext4_inode_is_fast_symlink): no blocks but the xattr
        // block's (in 512-byte sectors, one file system cluster).
        let ea_sectors = if i.file_acl != 0 { self.bs / 512 } else { 0 };
        let sectors = i.allocated(
            self.sb.has_ro_compat(ro_compat::HUGE_FILE),
            self.sb.block_size(),
        ) / 512;
        let fast = !i.has_flag(flags::INLINE_DATA) && sectors <= ea_sectors;
        if fast {
            if i.size >= 60 {
                return Err(Error::corrupt(
                    ino,
                    0,
                    0,
                    format!("fast symlink of {} bytes", i.size),
                ));
            }
            return Ok(i.block[..i.size as usize].to_vec());
        }
        let mut buf = vec![0u8; i.size as usize];
        let n = self.read_inode(ino, &i, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    // ---- xattrs ----

    /// (entry, value region) pairs: in-inode ones then the xattr block's.
    fn xattr_entries(
        &self,
        ino: u32,
        i: &Inode,
        with_block: bool,
    ) -> Result<Vec<(xattr::Entry, Vec<u8>)>> {
        let mut out = Vec::new();
        if let Some(r) = i.ibody_xattr_range() {
            let region = &i.raw[r.clone()];
            if region[..4] == xattr::MAGIC.to_le_bytes() {
                let entries_region = &region[4..];
                let entries = xattr::parse_entries(entries_region).map_err(|(o, m)| {
                    Error::corrupt(
                        ino,
                        0,
                        (r.start + 4 + o) as u64,
                        format!("in-inode xattr: {m}"),
                    )
                })?;
                for e in entries {
                    let v = self.xattr_value(ino, 0, entries_region, &e)?;
                    out.push((e, v));
                }
            }
        }
        if with_block && i.file_acl != 0 {
            let blk = i.file_acl;
            let b = self.meta_block(ino, blk)?;
            xattr::check_block_header(&b).map_err(|m| Error::corrupt(ino, blk, 0, m))?;
            let entries = xattr::parse_entries(&b[xattr::BLOCK_HEADER..]).map_err(|(o, m)| {
                Error::corrupt(
                    ino,
                    blk,
                    (xattr::BLOCK_HEADER + o) as u64,
                    format!("xattr block: {m}"),
                )
            })?;
            for e in entries {
                let v = self.xattr_value(ino, blk, &b, &e)?;
                out.push((e, v));
            }
        }
        Ok(out)
    }

    fn xattr_value(
        &self,
        ino: u32,
        block: u64,
        values: &[u8],
        e: &xattr::Entry,
    ) -> Result<Vec<u8>> {
        if e.value_size > XATTR_SIZE_MAX {
            return Err(Error::corrupt(
                ino,
                block,
                0,
                format!("xattr value of {} bytes", e.value_size),
            ));
        }
        if e.value_inum != 0 {
            if !self.sb.has_incompat(incompat::EA_INODE) || e.value_inum == ino {
                return Err(Error::corrupt(
                    ino,
                    block,
                    0,
                    format!("xattr value in inode {}", e.value_inum),
                ));
            }
            let vi = self.inode(e.value_inum)?;
            if !vi.has_flag(flags::EA_INODE) || vi.size != e.value_size as u64 {
                return Err(Error::corrupt(
                    ino,
                    block,
                    0,
                    format!("inode {} is not this xattr's value", e.value_inum),
                ));
            }
            let mut v = vec![0u8; e.value_size as usize];
            let n = self.read_inode(e.value_inum, &vi, 0, &mut v)?;
            v.truncate(n);
            return Ok(v);
        }
        xattr::inline_value(values, e)
            .map(|v| v.to_vec())
            .map_err(|m| Error::corrupt(ino, block, e.value_offs as u64, m))
    }

    fn ibody_value(&self, ino: u32, i: &Inode, index: u8, name: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .xattr_entries(ino, i, false)?
            .into_iter()
            .find(|(e, _)| e.name_index == index && e.name == name)
            .map(|(_, v)| v))
    }

    /// Extended attributes by full name (`user.*`, `trusted.*`, `security.*`,
    /// `system.posix_acl_access`/`_default` in the Linux posix_acl_xattr form).
    pub fn xattrs(&self, ino: u32) -> Result<Vec<(String, Vec<u8>)>> {
        let i = self.inode(ino)?;
        let mut out = Vec::new();
        for (e, v) in self.xattr_entries(ino, &i, true)? {
            let Some(name) = e.full_name() else { continue };
            let v = if matches!(
                e.name_index,
                xattr::INDEX_ACL_ACCESS | xattr::INDEX_ACL_DEFAULT
            ) {
                xattr::acl_to_xattr(&v)
                    .map_err(|m| Error::corrupt(ino, i.file_acl, 0, format!("{name}: {m}")))?
            } else {
                v
            };
            out.push((name, v));
        }
        Ok(out)
    }
}
