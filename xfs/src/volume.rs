use std::collections::HashSet;
use std::sync::Arc;

use vmsnapfs_io::{Places, ReadAt, ShardedLru};

use crate::attr_leaf::{self, Block};
use crate::attr_sf::{self, AttrValue, RawAttr, ATTR_PARENT, ATTR_ROOT, ATTR_SECURE};
use crate::bmbt::{self, Extent, Node};
use crate::dinode::{self, Dinode, FMT_BTREE, FMT_DEV, FMT_EXTENTS, FMT_LOCAL};
use crate::dir2_data::{self, LEAF_OFFSET};
use crate::dir2_sf::{self, RawEntry};
use crate::error::{Damage, Error, Result};
use crate::sb::{self, Superblock};
use crate::types::{DirEntry, FileKind, Metadata, VolumeInfo};
use crate::{acl, agf, log, symlink};

/// Largest single read of metadata (a directory block is at most 64 KiB).
const MAX_META_READ: usize = 1 << 16;
/// Largest xattr value (XATTR_SIZE_MAX).
const MAX_ATTR_VALUE: u32 = 1 << 16;
/// Memory budgets of the extent-map and directory-listing caches (4 shards each: a map
/// of up to ~500 000 extents, a listing of up to ~200 000 entries is kept; bigger ones
/// are rebuilt when needed).
const MAP_CACHE_BYTES: usize = 64 << 20;
const DIR_CACHE_BYTES: usize = 64 << 20;
/// Most log records walked looking for the head.
const MAX_LOG_RECORDS: u64 = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Fork {
    Data,
    Attr,
}

/// A read-only XFS volume. `Send + Sync`; every method takes `&self`.
pub struct Volume {
    src: Arc<dyn ReadAt>,
    sb: Superblock,
    log_dirty: bool,
    /// Sum of the AGFs' free counters, when every AGF could be read.
    agf_free: Option<u64>,
    inodes: ShardedLru<u64, Arc<Dinode>>,
    maps: ShardedLru<(u64, Fork), Arc<Vec<Extent>>>,
    dirs: ShardedLru<u64, Arc<Vec<DirEntry>>>,
}

/// Whether `src` starts with an XFS superblock magic.
pub fn probe(src: &dyn ReadAt) -> bool {
    let mut m = [0u8; 4];
    src.size() >= 512 && src.read_at(0, &mut m).is_ok() && &m == sb::MAGIC
}

impl Volume {
    pub fn open(src: Arc<dyn ReadAt>) -> Result<Volume> {
        let mut buf = vec![0u8; 512];
        read_exact(&*src, 0, &mut buf)?;
        let sectsize = u16::from_be_bytes([buf[102], buf[103]]) as usize;
        if sectsize > 512 && sectsize <= 32768 {
            buf.resize(sectsize, 0);
            read_exact(&*src, 0, &mut buf)?;
        }
        let sb = sb::parse(&buf).map_err(|d| Error::Superblock(d.0))?;
        let need = sb.dblocks.checked_mul(sb.blocksize as u64);
        if need.is_none_or(|n| n > src.size()) {
            return Err(Error::Superblock(format!(
                "{} blocks of {} bytes do not fit in a {}-byte source",
                sb.dblocks,
                sb.blocksize,
                src.size()
            )));
        }
        let mut vol = Volume {
            src,
            sb,
            log_dirty: false,
            agf_free: None,
            inodes: ShardedLru::new(4096),
            maps: ShardedLru::weighted(MAP_CACHE_BYTES, |m: &Arc<Vec<Extent>>| 64 + m.len() * 32)
                .with_shards(4),
            dirs: ShardedLru::weighted(DIR_CACHE_BYTES, |d: &Arc<Vec<DirEntry>>| {
                64 + d.iter().map(|e| 48 + e.name.len()).sum::<usize>()
            })
            .with_shards(4),
        };
        // A log that cannot be read or parsed cannot be shown clean.
        vol.log_dirty = vol.check_log().unwrap_or(true);
        vol.agf_free = vol.agf_free_blocks().ok();
        // The root must be a directory, or nothing else is reachable.
        let root = vol.stat(vol.sb.rootino)?;
        if root.kind != FileKind::Dir {
            return Err(Error::Superblock(format!(
                "root inode {} is not a directory",
                vol.sb.rootino
            )));
        }
        Ok(vol)
    }

    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    pub fn root(&self) -> u64 {
        self.sb.rootino
    }

    pub fn info(&self) -> VolumeInfo {
        VolumeInfo {
            label: self.sb.label(),
            uuid: self.sb.uuid_string(),
            version: self.sb.version(),
            block_size: self.sb.blocksize,
            total_blocks: self.sb.dblocks,
            free_blocks: self.agf_free.unwrap_or(self.sb.fdblocks),
            free_blocks_sb: self.sb.fdblocks,
            inode_size: self.sb.inodesize,
            ag_count: self.sb.agcount,
            log_dirty: self.log_dirty,
            log_external: self.sb.logstart == 0,
            bigtime: self.sb.has_bigtime(),
            ftype: self.sb.has_ftype(),
        }
    }

    // ---- addressing -------------------------------------------------------------------

    /// Volume byte offset of filesystem block `fsb` (AG number in the high bits).
    fn fsb_to_byte(&self, fsb: u64, ino: Option<u64>) -> Result<u64> {
        let agno = fsb >> self.sb.agblklog;
        let agbno = fsb & ((1u64 << self.sb.agblklog) - 1);
        if agno >= self.sb.agcount as u64 || agbno >= self.sb.agblocks as u64 {
            return Err(Error::corrupt(
                ino,
                None,
                format!("block {fsb} (AG {agno} block {agbno}) is outside the volume"),
            ));
        }
        Ok((agno * self.sb.agblocks as u64 + agbno) << self.sb.blocklog)
    }

    fn read_meta(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        if len > MAX_META_READ {
            return Err(Error::corrupt(
                None,
                Some(offset),
                format!("metadata read of {len} bytes"),
            ));
        }
        let mut b = vec![0u8; len];
        read_exact(&*self.src, offset, &mut b)?;
        Ok(b)
    }

    // ---- inodes -----------------------------------------------------------------------

    fn inode(&self, ino: u64) -> Result<Arc<Dinode>> {
        self.inodes.get_or_try_insert(ino, || {
            let sb = &self.sb;
            let off_bits = sb.inopblog as u32;
            let ag_bits = sb.agblklog as u32 + off_bits;
            let agno = ino.checked_shr(ag_bits).unwrap_or(0);
            let agbno = (ino >> off_bits) & ((1u64 << sb.agblklog) - 1);
            let idx = ino & ((1u64 << off_bits) - 1);
            if ag_bits >= 64 || agno >= sb.agcount as u64 || agbno >= sb.agblocks as u64 || ino == 0
            {
                return Err(Error::NoSuchInode { ino });
            }
            let byte =
                ((agno * sb.agblocks as u64 + agbno) << sb.blocklog) + idx * sb.inodesize as u64;
            let buf = self.read_meta(byte, sb.inodesize as usize)?;
            let d = dinode::parse(&buf, sb.is_v5())
                .map_err(|d| Error::corrupt(Some(ino), Some(byte), d.0))?;
            if let Some(stored) = d.ino {
                if stored != ino {
                    return Err(Error::corrupt(
                        Some(ino),
                        Some(byte),
                        format!("inode records number {stored}"),
                    ));
                }
            }
            if d.mode == 0 {
                return Err(Error::NotInUse { ino });
            }
            if FileKind::from_mode(d.mode).is_none() {
                return Err(Error::corrupt(
                    Some(ino),
                    Some(byte),
                    format!("mode {:#o}", d.mode),
                ));
            }
            Ok(Arc::new(d))
        })
    }

    pub fn stat(&self, ino: u64) -> Result<Metadata> {
        let d = self.inode(ino)?;
        let kind = FileKind::from_mode(d.mode)
            .ok_or_else(|| Error::corrupt(Some(ino), None, "bad mode"))?;
        let rdev = if matches!(kind, FileKind::CharDev | FileKind::BlockDev) && d.format == FMT_DEV
        {
            let raw = crate::be::u32_at(&d.data_fork, 0)
                .map_err(|e| Error::corrupt(Some(ino), None, e.to_string()))?;
            let (major, minor) = ((raw >> 18) as u64 & 0x3fff, raw as u64 & 0x3ffff);
            ((major & 0xfffff000) << 32)
                | ((major & 0xfff) << 8)
                | ((minor & 0xffffff00) << 12)
                | (minor & 0xff)
        } else {
            0
        };
        Ok(Metadata {
            ino,
            kind,
            mode: d.mode as u32,
            uid: d.uid,
            gid: d.gid,
            size: d.size,
            nlink: d.nlink,
            atime: d.atime,
            mtime: d.mtime,
            ctime: d.ctime,
            crtime: d.crtime,
            rdev,
            allocated: d.nblocks.saturating_mul(self.sb.blocksize as u64),
            generation: d.gen,
        })
    }

    // ---- forks ------------------------------------------------------------------------

    /// The extent map of one fork of an extents- or btree-format inode, sorted by file
    /// offset and checked (in the volume, no overlaps).
    fn map(&self, ino: u64, d: &Dinode, fork: Fork) -> Result<Arc<Vec<Extent>>> {
        self.maps.get_or_try_insert((ino, fork), || {
            let (fmt, bytes, n) = match fork {
                Fork::Data => (d.format, &d.data_fork, d.nextents),
                Fork::Attr => (d.aformat, &d.attr_fork, d.anextents),
            };
            let dmg = |m: Damage| Error::corrupt(Some(ino), None, m.0);
            let mut v = match fmt {
                FMT_EXTENTS => {
                    let n = usize::try_from(n)
                        .map_err(|_| Error::corrupt(Some(ino), None, "extent count"))?;
                    bmbt::parse_records(bytes, 0, n).map_err(dmg)?
                }
                FMT_BTREE => {
                    let root = bmbt::parse_root(bytes).map_err(dmg)?;
                    let mut out = Vec::new();
                    let mut seen = HashSet::new();
                    self.walk_bmbt(ino, root, None, &mut seen, &mut out, n)?;
                    out
                }
                f => {
                    return Err(Error::corrupt(
                        Some(ino),
                        None,
                        format!("fork format {f} has no extent map"),
                    ))
                }
            };
            if v.len() as u64 != n {
                return Err(Error::corrupt(
                    Some(ino),
                    None,
                    format!("{} extents found, inode counts {n}", v.len()),
                ));
            }
            v.sort_by_key(|e| e.offset);
            let mut end = 0u64;
            for e in &v {
                if (e.offset + e.len)
                    .checked_mul(self.sb.blocksize as u64)
                    .is_none()
                {
                    return Err(Error::corrupt(
                        Some(ino),
                        None,
                        format!("extent at file block {} lies past 2^64 bytes", e.offset),
                    ));
                }
                if e.len == 0 || e.offset < end {
                    return Err(Error::corrupt(
                        Some(ino),
                        None,
                        format!("extent at file block {} overlaps or is empty", e.offset),
                    ));
                }
                let agbno = e.block & ((1u64 << self.sb.agblklog) - 1);
                self.fsb_to_byte(e.block, Some(ino))?;
                if agbno + e.len > self.sb.agblocks as u64 {
                    return Err(Error::corrupt(
                        Some(ino),
                        None,
                        format!("extent at block {} runs past its AG", e.block),
                    ));
                }
                end = e.offset + e.len;
            }
            Ok(Arc::new(v))
        })
    }

    fn walk_bmbt(
        &self,
        ino: u64,
        node: Node,
        parent_level: Option<u16>,
        seen: &mut HashSet<u64>,
        out: &mut Vec<Extent>,
        limit: u64,
    ) -> Result<()> {
        match node {
            Node::Leaf(recs) => {
                out.extend(recs);
                if out.len() as u64 > limit {
                    return Err(Error::corrupt(
                        Some(ino),
                        None,
                        format!("mapping tree holds more than the {limit} extents counted"),
                    ));
                }
                Ok(())
            }
            Node::Interior { level, ptrs } => {
                if parent_level.is_some_and(|p| p != level + 1) {
                    return Err(Error::corrupt(
                        Some(ino),
                        None,
                        "mapping tree levels out of order",
                    ));
                }
                for p in ptrs {
                    if !seen.insert(p) {
                        return Err(Error::corrupt(
                            Some(ino),
                            None,
                            format!("mapping tree visits block {p} twice"),
                        ));
                    }
                    let byte = self.fsb_to_byte(p, Some(ino))?;
                    let b = self.read_meta(byte, self.sb.blocksize as usize)?;
                    let (child, _) = bmbt::parse_block(&b, self.sb.is_v5(), ino)
                        .map_err(|d| Error::corrupt(Some(ino), Some(byte), d.0))?;
                    let child_level = match &child {
                        Node::Leaf(_) => 0,
                        Node::Interior { level, .. } => *level,
                    };
                    if child_level + 1 != level {
                        return Err(Error::corrupt(
                            Some(ino),
                            Some(byte),
                            "mapping tree block at the wrong level",
                        ));
                    }
                    self.walk_bmbt(ino, child, Some(level), seen, out, limit)?;
                }
                Ok(())
            }
        }
    }

    /// Reads `buf.len()` bytes at fork byte offset `pos` through `map`; holes and unwritten
    /// extents are zeros.
    fn read_mapped(&self, ino: u64, map: &[Extent], pos: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let (left, byte) = self.stretch_at(ino, map, pos + done as u64)?;
            let n = (buf.len() - done).min(left.min(usize::MAX as u64) as usize);
            let piece = &mut buf[done..done + n];
            match byte {
                None => piece.fill(0),
                Some(byte) => read_exact(&*self.src, byte, piece)?,
            }
            done += n;
        }
        Ok(())
    }

    /// What fork byte `at` of `map` reads from: the bytes left before that changes, and
    /// the volume byte they start at (None: a hole or an unwritten extent, zeros).
    fn stretch_at(&self, ino: u64, map: &[Extent], at: u64) -> Result<(u64, Option<u64>)> {
        let bs = self.sb.blocksize as u64;
        let fblock = at >> self.sb.blocklog;
        match map.get(map.partition_point(|e| e.offset + e.len <= fblock)) {
            Some(e) if e.offset <= fblock => {
                let left = (e.offset + e.len) * bs - at;
                if e.unwritten {
                    return Ok((left, None));
                }
                let byte = self.fsb_to_byte(e.block, Some(ino))? + (at - e.offset * bs);
                Ok((left, Some(byte)))
            }
            next => {
                let hole_end = next.map_or(u64::MAX, |e| e.offset.saturating_mul(bs));
                Ok((hole_end - at, None))
            }
        }
    }

    // ---- file data --------------------------------------------------------------------

    /// Reads file bytes at `offset`; returns fewer than `buf.len()` only at end of file.
    pub fn read(&self, ino: u64, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let d = self.inode(ino)?;
        if offset >= d.size || buf.is_empty() {
            return Ok(0);
        }
        let n = buf
            .len()
            .min((d.size - offset).min(usize::MAX as u64) as usize);
        let buf = &mut buf[..n];
        match d.format {
            FMT_LOCAL => {
                let src = d
                    .data_fork
                    .get(offset as usize..(offset as usize).saturating_add(n))
                    .ok_or_else(|| {
                        Error::corrupt(
                            Some(ino),
                            None,
                            format!("inline data of {} bytes past the fork", d.size),
                        )
                    })?;
                buf.copy_from_slice(src);
            }
            FMT_EXTENTS | FMT_BTREE => {
                if d.flags & dinode::DIFLAG_REALTIME != 0 {
                    return Err(Error::Unsupported {
                        ino,
                        msg: "file data on the realtime device".into(),
                    });
                }
                let map = self.map(ino, &d, Fork::Data)?;
                self.read_mapped(ino, &map, offset, buf)?;
            }
            FMT_DEV => {}
            f => {
                return Err(Error::corrupt(
                    Some(ino),
                    None,
                    format!("data fork format {f}"),
                ))
            }
        }
        Ok(n)
    }

    /// Where the bytes `read` would return lie on the volume's source, appended to
    /// `out`: their count (short at end of file), or None when some cannot be placed
    /// (inline or realtime data, or a map or range that `read` reports as an error), and
    /// the caller reads them instead.
    pub fn place(&self, ino: u64, offset: u64, len: u64, out: &mut Places) -> Option<u64> {
        let d = self.inode(ino).ok()?;
        let n = d.size.saturating_sub(offset).min(len);
        if n == 0 {
            return Some(0);
        }
        if !matches!(d.format, FMT_EXTENTS | FMT_BTREE) || d.flags & dinode::DIFLAG_REALTIME != 0 {
            return None;
        }
        let map = self.map(ino, &d, Fork::Data).ok()?;
        let mut done = 0u64;
        while done < n {
            let (left, byte) = self.stretch_at(ino, &map, offset + done).ok()?;
            let k = left.min(n - done);
            match byte {
                None => out.zero(k),
                Some(byte) if self.src.place(byte, k, out) => {}
                Some(_) => return None,
            }
            done += k;
        }
        Some(n)
    }

    /// Byte ranges `(offset, len)` of the file that hold written data (for SEEK_DATA /
    /// SEEK_HOLE); holes and unwritten extents are outside them. Clipped to the size.
    pub fn data_ranges(&self, ino: u64) -> Result<Vec<(u64, u64)>> {
        let d = self.inode(ino)?;
        match d.format {
            FMT_EXTENTS | FMT_BTREE => {
                let map = self.map(ino, &d, Fork::Data)?;
                let bs = self.sb.blocksize as u64;
                let mut out: Vec<(u64, u64)> = Vec::new();
                for e in map.iter().filter(|e| !e.unwritten) {
                    let start = e.offset * bs;
                    if start >= d.size {
                        break;
                    }
                    let end = ((e.offset + e.len) * bs).min(d.size);
                    match out.last_mut() {
                        Some(last) if last.0 + last.1 == start => last.1 = end - last.0,
                        _ => out.push((start, end - start)),
                    }
                }
                Ok(out)
            }
            _ if d.size > 0 => Ok(vec![(0, d.size)]),
            _ => Ok(Vec::new()),
        }
    }

    pub fn read_link(&self, ino: u64) -> Result<Vec<u8>> {
        let d = self.inode(ino)?;
        if FileKind::from_mode(d.mode) != Some(FileKind::Symlink) {
            return Err(Error::NotALink { ino });
        }
        if d.size == 0 || d.size > symlink::MAXLEN {
            return Err(Error::corrupt(
                Some(ino),
                None,
                format!("symlink of {} bytes", d.size),
            ));
        }
        let len = d.size as usize;
        match d.format {
            FMT_LOCAL => d
                .data_fork
                .get(..len)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Error::corrupt(Some(ino), None, "inline symlink past the fork")),
            FMT_EXTENTS | FMT_BTREE => {
                let map = self.map(ino, &d, Fork::Data)?;
                if !self.sb.is_v5() {
                    let mut b = vec![0u8; len];
                    self.read_mapped(ino, &map, 0, &mut b)?;
                    return Ok(b);
                }
                let bs = self.sb.blocksize as usize;
                let mut out = Vec::with_capacity(len);
                let mut blk = 0u64;
                while out.len() < len {
                    let mut b = vec![0u8; bs];
                    self.read_mapped(ino, &map, blk * bs as u64, &mut b)?;
                    let p = symlink::remote_payload(&b, ino)
                        .map_err(|d| Error::corrupt(Some(ino), None, d.0))?;
                    if p.is_empty() {
                        return Err(Error::corrupt(
                            Some(ino),
                            None,
                            "empty remote symlink block",
                        ));
                    }
                    out.extend_from_slice(p);
                    blk += 1;
                }
                out.truncate(len);
                Ok(out)
            }
            f => Err(Error::corrupt(
                Some(ino),
                None,
                format!("symlink fork format {f}"),
            )),
        }
    }

    // ---- directories ------------------------------------------------------------------

    /// The entries of a directory, without "." and "..".
    pub fn read_dir(&self, ino: u64) -> Result<Vec<DirEntry>> {
        Ok(self.dir(ino)?.as_ref().clone())
    }

    /// The parent directory (the root is its own parent).
    pub fn parent(&self, ino: u64) -> Result<u64> {
        let d = self.inode(ino)?;
        if FileKind::from_mode(d.mode) != Some(FileKind::Dir) {
            return Err(Error::NotADirectory { ino });
        }
        if d.format == FMT_LOCAL {
            let (p, _) = dir2_sf::parse(&d.data_fork, d.size, self.sb.has_ftype())
                .map_err(|e| Error::corrupt(Some(ino), None, e.0))?;
            return Ok(p);
        }
        let raw = self.dir_raw(ino, &d)?;
        raw.iter()
            .find(|e| e.name == b"..")
            .map(|e| e.ino)
            .ok_or_else(|| Error::corrupt(Some(ino), None, "directory without '..'"))
    }

    pub fn lookup(&self, dir: u64, name: &[u8]) -> Result<DirEntry> {
        self.dir(dir)?
            .iter()
            .find(|e| e.name == name)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                dir,
                name: String::from_utf8_lossy(name).into_owned(),
            })
    }

    fn dir(&self, ino: u64) -> Result<Arc<Vec<DirEntry>>> {
        self.dirs.get_or_try_insert(ino, || {
            let d = self.inode(ino)?;
            if FileKind::from_mode(d.mode) != Some(FileKind::Dir) {
                return Err(Error::NotADirectory { ino });
            }
            let raw = if d.format == FMT_LOCAL {
                dir2_sf::parse(&d.data_fork, d.size, self.sb.has_ftype())
                    .map_err(|e| Error::corrupt(Some(ino), None, e.0))?
                    .1
            } else {
                self.dir_raw(ino, &d)?
            };
            let mut out = Vec::with_capacity(raw.len());
            for e in raw {
                if e.name == b"." || e.name == b".." {
                    continue;
                }
                if e.ino == 0 || e.name.contains(&b'/') || e.name.contains(&0) {
                    return Err(Error::corrupt(
                        Some(ino),
                        None,
                        format!("entry {:?}", String::from_utf8_lossy(&e.name)),
                    ));
                }
                // Without a (valid) ftype byte the child's inode says; if that inode is
                // damaged the entry is still listed (as a file) and stat reports the damage,
                // so one bad inode does not hide its siblings.
                let kind = FileKind::from_ftype(e.ftype)
                    .or_else(|| self.stat(e.ino).ok().map(|m| m.kind))
                    .unwrap_or(FileKind::File);
                out.push(DirEntry {
                    name: e.name,
                    ino: e.ino,
                    kind,
                });
            }
            Ok(Arc::new(out))
        })
    }

    /// All entries of the data blocks of a block/leaf/node directory.
    fn dir_raw(&self, ino: u64, d: &Dinode) -> Result<Vec<RawEntry>> {
        let map = self.map(ino, d, Fork::Data)?;
        let dbl = self.sb.dirblklog as u32;
        let dbsize = self.sb.dirblksize() as usize;
        // Data blocks lie below the leaf space, and below di_size (the end of the data
        // space): a damaged map cannot send the scan over millions of blocks.
        let size_fsb = d.size.div_ceil(self.sb.blocksize as u64);
        let leaf_fsb = (LEAF_OFFSET >> self.sb.blocklog).min(size_fsb);
        let mut blocks = Vec::new();
        for e in map.iter().filter(|e| e.offset < leaf_fsb) {
            let first = e.offset >> dbl;
            let last = ((e.offset + e.len).min(leaf_fsb) - 1) >> dbl;
            for db in first..=last {
                if blocks.last() != Some(&db) {
                    blocks.push(db);
                }
            }
        }
        let mut out = Vec::new();
        for db in blocks {
            let mut b = vec![0u8; dbsize];
            let pos = (db << dbl) << self.sb.blocklog;
            self.read_mapped(ino, &map, pos, &mut b)?;
            let ents =
                dir2_data::parse(&b, self.sb.is_v5(), self.sb.has_ftype(), ino).map_err(|e| {
                    Error::corrupt(Some(ino), None, format!("directory block {db}: {}", e.0))
                })?;
            out.extend(ents);
        }
        Ok(out)
    }

    // ---- extended attributes ----------------------------------------------------------

    /// All extended attributes with Linux names: `user.`, `trusted.`, `security.`, and
    /// the ACLs as `system.posix_acl_access` / `system.posix_acl_default` (converted to
    /// the Linux xattr format). Parent-pointer attributes are internal and skipped.
    pub fn xattrs(&self, ino: u64) -> Result<Vec<(String, Vec<u8>)>> {
        let d = self.inode(ino)?;
        if !d.has_attr_fork() {
            return Ok(Vec::new());
        }
        let dmg = |m: Damage| Error::corrupt(Some(ino), None, format!("attributes: {}", m.0));
        let raw: Vec<RawAttr> = match d.aformat {
            FMT_LOCAL => attr_sf::parse(&d.attr_fork).map_err(dmg)?,
            FMT_EXTENTS | FMT_BTREE => self.attr_blocks(ino, &d)?,
            f => {
                return Err(Error::corrupt(
                    Some(ino),
                    None,
                    format!("attribute fork format {f}"),
                ))
            }
        };
        let mut out = Vec::with_capacity(raw.len());
        for a in raw {
            if a.flags & ATTR_PARENT != 0 {
                continue;
            }
            let value = match a.value {
                AttrValue::Local(v) => v,
                AttrValue::Remote { block, len } => self.attr_remote(ino, &d, block, len)?,
            };
            let name = String::from_utf8_lossy(&a.name).into_owned();
            let item = if a.flags & ATTR_ROOT != 0 {
                if a.name == acl::SGI_ACL_FILE {
                    (
                        "system.posix_acl_access".to_string(),
                        acl::to_linux(&value).map_err(dmg)?,
                    )
                } else if a.name == acl::SGI_ACL_DEFAULT {
                    (
                        "system.posix_acl_default".to_string(),
                        acl::to_linux(&value).map_err(dmg)?,
                    )
                } else {
                    (format!("trusted.{name}"), value)
                }
            } else if a.flags & ATTR_SECURE != 0 {
                (format!("security.{name}"), value)
            } else {
                (format!("user.{name}"), value)
            };
            out.push(item);
        }
        Ok(out)
    }

    fn attr_block(&self, ino: u64, map: &[Extent], blk: u32) -> Result<Vec<u8>> {
        let bs = self.sb.blocksize as usize;
        let mut b = vec![0u8; bs];
        let pos = (blk as u64) << self.sb.blocklog;
        let fblock = blk as u64;
        if !map
            .iter()
            .any(|e| e.offset <= fblock && fblock < e.offset + e.len)
        {
            return Err(Error::corrupt(
                Some(ino),
                None,
                format!("attribute block {blk} is not mapped"),
            ));
        }
        self.read_mapped(ino, map, pos, &mut b)?;
        Ok(b)
    }

    fn attr_blocks(&self, ino: u64, d: &Dinode) -> Result<Vec<RawAttr>> {
        let map = self.map(ino, d, Fork::Attr)?;
        let v5 = self.sb.is_v5();
        let limit: u64 = map.iter().map(|e| e.len).sum();
        let mut seen = HashSet::new();
        let at = |blk: u32, m: Damage| {
            Error::corrupt(Some(ino), None, format!("attribute block {blk}: {}", m.0))
        };
        // Descend the leftmost path to the first leaf, then follow the sibling chain.
        let mut blk = 0u32;
        let mut level = None;
        let mut out = Vec::new();
        loop {
            if !seen.insert(blk) || seen.len() as u64 > limit {
                return Err(Error::corrupt(
                    Some(ino),
                    None,
                    format!("attribute tree visits block {blk} twice"),
                ));
            }
            let b = self.attr_block(ino, &map, blk)?;
            match attr_leaf::parse(&b, v5, ino).map_err(|m| at(blk, m))? {
                Block::Node { level: l, children } => {
                    if level.is_some_and(|p: u16| l + 1 != p) || !out.is_empty() {
                        return Err(Error::corrupt(
                            Some(ino),
                            None,
                            "attribute tree levels out of order",
                        ));
                    }
                    level = Some(l);
                    blk = children[0];
                }
                Block::Leaf { attrs, forw } => {
                    if level.is_some_and(|p| p != 1) {
                        return Err(Error::corrupt(
                            Some(ino),
                            None,
                            "attribute leaf at the wrong depth",
                        ));
                    }
                    out.extend(attrs);
                    if forw == 0 {
                        return Ok(out);
                    }
                    blk = forw;
                }
            }
        }
    }

    fn attr_remote(&self, ino: u64, d: &Dinode, block: u32, len: u32) -> Result<Vec<u8>> {
        if len > MAX_ATTR_VALUE {
            return Err(Error::corrupt(
                Some(ino),
                None,
                format!("attribute value of {len} bytes"),
            ));
        }
        let map = self.map(ino, d, Fork::Attr)?;
        let len = len as usize;
        if !self.sb.is_v5() {
            let mut v = vec![0u8; len];
            self.read_mapped(ino, &map, (block as u64) << self.sb.blocklog, &mut v)?;
            return Ok(v);
        }
        let mut out = Vec::with_capacity(len);
        let mut blk = block;
        while out.len() < len {
            let b = self.attr_block(ino, &map, blk)?;
            let p = attr_leaf::rmt_payload(&b, ino)
                .map_err(|m| Error::corrupt(Some(ino), None, m.0))?;
            if p.is_empty() {
                return Err(Error::corrupt(
                    Some(ino),
                    None,
                    "empty remote attribute block",
                ));
            }
            out.extend_from_slice(p);
            blk = blk
                .checked_add(1)
                .ok_or_else(|| Error::corrupt(Some(ino), None, "remote value block number"))?;
        }
        out.truncate(len);
        Ok(out)
    }

    /// Free blocks summed over every AG's AGF (one sector read per AG).
    fn agf_free_blocks(&self) -> Result<u64> {
        let ss = self.sb.sectsize as usize;
        let mut total = 0u64;
        for ag in 0..self.sb.agcount as u64 {
            let off = ((ag * self.sb.agblocks as u64) << self.sb.blocklog) + ss as u64;
            let b = self.read_meta(off, ss)?;
            let a = agf::parse(&b, self.sb.is_v5())
                .map_err(|d| Error::corrupt(None, Some(off), d.0))?;
            if a.seqno as u64 != ag {
                return Err(Error::corrupt(
                    None,
                    Some(off),
                    format!("AGF of AG {} found in AG {ag}", a.seqno),
                ));
            }
            total += a.free_blocks();
        }
        Ok(total)
    }

    // ---- journal ----------------------------------------------------------------------

    /// Walks the internal log's record headers to the head and checks that the last record
    /// is a lone unmount record (as the kernel's xlog_check_unmount_rec decides "clean";
    /// the tail is then taken to be just past it). An external log is not checked.
    fn check_log(&self) -> Result<bool> {
        if self.sb.logstart == 0 {
            return Ok(false);
        }
        let start = self.fsb_to_byte(self.sb.logstart, None)?;
        let bbs = (self.sb.logblocks as u64) << (self.sb.blocklog - 9);
        let hdr = |bb: u64| -> Result<Option<log::RecHeader>> {
            let b = self.read_meta(start + bb * 512, 512)?;
            log::parse_header(&b).map_err(|d| Error::corrupt(None, Some(start + bb * 512), d.0))
        };
        // Every log sector starts with its cycle number: a header has it at offset 4,
        // a data sector in its first word (the word itself saved in the header).
        let b0 = self.read_meta(start, 512)?;
        let cycle0 = match log::parse_header(&b0) {
            Ok(Some(h)) => h.cycle,
            _ => u32::from_be_bytes([b0[0], b0[1], b0[2], b0[3]]),
        };
        if cycle0 == 0 {
            // A zeroed log (never mounted since a log format) has nothing to replay.
            return Ok(false);
        }
        // Block 0 may be the middle of a record that wrapped around the end of the log:
        // the first header is at most one record (256 KiB + headers) further on.
        let mut first_bb = None;
        for bb in 0..bbs.min(1024) {
            if let Some(h) = hdr(bb)? {
                first_bb = Some((bb, h));
                break;
            }
        }
        let Some((bb0, first)) = first_bb else {
            return Ok(true);
        };
        if first.cycle != cycle0 {
            // The head is inside the wrapped record itself: not a clean unmount.
            return Ok(true);
        }
        let (mut bb, mut last_bb, mut last) = (bb0, bb0, first);
        let mut records = 0;
        loop {
            let next = bb + last.total_blocks();
            records += 1;
            if next >= bbs || records > MAX_LOG_RECORDS {
                break;
            }
            match hdr(next)? {
                Some(h) if h.cycle == cycle0 => {
                    bb = next;
                    last_bb = next;
                    last = h;
                }
                _ => break,
            }
        }
        if last.num_logops != 1 {
            return Ok(true);
        }
        let op_bb = last_bb + last.header_blocks();
        if op_bb >= bbs {
            return Ok(true);
        }
        let b = self.read_meta(start + op_bb * 512, 512)?;
        let unmount = log::is_unmount_op(&b)
            .map_err(|d| Error::corrupt(None, Some(start + op_bb * 512), d.0))?;
        Ok(!unmount)
    }
}

fn read_exact(src: &dyn ReadAt, offset: u64, buf: &mut [u8]) -> Result<()> {
    src.read_at(offset, buf).map_err(|source| Error::Io {
        offset,
        len: buf.len(),
        source,
    })
}
