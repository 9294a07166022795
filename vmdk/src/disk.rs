//! A disk as seen from its chain head: the links (head … base), each a list of extents, and
//! reads that fall through unallocated grains to the parent.

use std::collections::HashSet;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use vmsnapfs_io::{Lent, Places, ReadAt};

use crate::descriptor::Descriptor;
use crate::error::{Error, Result};
use crate::link::{open_link, Link, Placed};
use crate::ranges::{intersect, push_range};
use crate::resolver::{join_name, LocalResolver, Resolver};
use crate::Class;
use vmsnapfs_io::fits;

/// Snapshot chains deeper than this are damage (VMware allows 32).
const MAX_CHAIN: usize = 255;

/// The whole chain, as seen from its head.
pub struct Disk {
    links: Vec<Link>,
    chain: Vec<String>,
    capacity: u64,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk")
            .field("chain", &self.chain)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Disk {
    /// Opens the chain whose head is `name`, following parentFileNameHint to the base.
    pub fn open(resolver: Arc<dyn Resolver>, name: &str) -> Result<Disk> {
        let mut links: Vec<Link> = Vec::new();
        let mut chain: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        let mut current = name.to_string();
        let mut expect: Option<u32> = None;
        loop {
            if !seen.insert(normalize(&current)) {
                return Err(Error::ParentLoop {
                    file: chain.last().cloned().unwrap_or_default(),
                    parent: current,
                });
            }
            if links.len() >= MAX_CHAIN {
                return Err(Error::invalid(
                    &current,
                    format!("snapshot chain deeper than {MAX_CHAIN} links"),
                ));
            }
            let what = if links.is_empty() {
                "disk"
            } else {
                "parent disk"
            };
            let link = open_link(&*resolver, &current, what)?;
            if let (Some(parent_cid), Some(cid)) = (expect, link.cid()) {
                if parent_cid != cid {
                    return Err(Error::CidMismatch {
                        file: chain.last().cloned().unwrap_or_default(),
                        parent: current,
                        parent_cid,
                        cid,
                    });
                }
            }
            let next = link.descriptor.as_ref().and_then(|d| {
                d.parent()
                    .map(|hint| (join_name(&current, hint), d.parent_cid))
            });
            links.push(link);
            chain.push(current);
            match next {
                Some((parent, pcid)) => {
                    current = parent;
                    expect = pcid;
                }
                None => break,
            }
        }
        let capacity = links[0].capacity;
        Ok(Disk {
            links,
            chain,
            capacity,
        })
    }

    /// Opens a disk from a local path, resolving chain files in its folder.
    pub fn open_path(path: &Path) -> Result<Disk> {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Disk::open(Arc::new(LocalResolver::new(dir)), &name)
    }

    /// Virtual size in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// File names, head first … base last.
    pub fn chain(&self) -> &[String] {
        &self.chain
    }

    /// The head's descriptor (separate or embedded), if it has one.
    pub fn descriptor(&self) -> Option<&Descriptor> {
        self.links[0].descriptor.as_ref()
    }

    /// The head's createType (e.g. "monolithicSparse", "seSparse").
    pub fn create_type(&self) -> Option<&str> {
        self.links[0].create_type.as_deref()
    }

    /// Reads `buf.len()` bytes at `offset`, with errors that name the chain file at fault.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if !fits(offset, buf.len() as u64, self.capacity) {
            return Err(Error::Io {
                file: self.chain[0].clone(),
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "read of {} bytes at {offset} past the end of the {}-byte disk",
                        buf.len(),
                        self.capacity
                    ),
                ),
            });
        }
        self.read_level(0, offset, buf)
    }

    fn read_level(&self, level: usize, off: u64, buf: &mut [u8]) -> Result<()> {
        let link = &self.links[level];
        // A parent smaller than its child reads as zeros past its end, as in qemu.
        let inside = link.capacity.saturating_sub(off).min(buf.len() as u64) as usize;
        let (buf, beyond) = buf.split_at_mut(inside);
        beyond.fill(0);
        if buf.is_empty() {
            return Ok(());
        }
        let mut holes = Vec::new();
        for (pos, n, at) in stretches(link, off, buf.len() as u64) {
            let piece = &mut buf[pos as usize..(pos + n) as usize];
            match at {
                Some((p, in_ext)) => p.extent.read(in_ext, piece, pos as usize, &mut holes)?,
                None => piece.fill(0),
            }
        }
        for h in holes {
            if level + 1 < self.links.len() {
                self.read_level(level + 1, off + h.start as u64, &mut buf[h])?;
            } else {
                buf[h].fill(0);
            }
        }
        Ok(())
    }

    /// Places `[off, off + len)` as `read_level` reads it: each link's own grains, the
    /// rest from the links below, zeros past a link's end or below the base.
    fn place_level(&self, level: usize, off: u64, len: u64, out: &mut Places) -> bool {
        let Some(link) = self.links.get(level) else {
            out.zero(len);
            return true;
        };
        let inside = link.capacity.saturating_sub(off).min(len);
        for (_, n, at) in stretches(link, off, inside) {
            let Some((p, in_ext)) = at else {
                out.zero(n);
                continue;
            };
            let mut parent = |at: u64, n: u64, out: &mut Places| {
                self.place_level(level + 1, p.start + at, n, out)
            };
            if !p.extent.place(in_ext, n, out, &mut parent) {
                return false;
            }
        }
        out.zero(len - inside);
        true
    }

    /// Byte ranges of the virtual disk that hold data anywhere in the chain, sorted and
    /// merged. Everything outside reads as zeros.
    pub fn allocated_ranges(&self) -> Result<Vec<Range<u64>>> {
        self.level_ranges(0)
    }

    /// Each link's content ID (CID), head first: a link's CID changes when its content
    /// does, so it names one state of the disk.
    pub fn cids(&self) -> Vec<Option<u32>> {
        self.links.iter().map(Link::cid).collect()
    }

    /// The byte ranges written since the disk was in the state named by `cid`, i.e. since
    /// the link with that CID stopped being the top of the chain: every grain the links
    /// above it hold (data or explicit zeros), sorted and merged. None when no link has
    /// that CID (the chain was consolidated, or the id is another disk's).
    pub fn written_since(&self, cid: u32) -> Result<Option<Vec<Range<u64>>>> {
        let Some(level) = self.links.iter().position(|l| l.cid() == Some(cid)) else {
            return Ok(None);
        };
        let mut all: Vec<Range<u64>> = Vec::new();
        for link in &self.links[..level] {
            for p in &link.extents {
                p.extent.map(p.len, &mut |r, class| {
                    if class != Class::Unallocated {
                        let end = (p.start + r.end).min(self.capacity);
                        all.push(p.start + r.start..end.max(p.start + r.start));
                    }
                })?;
            }
        }
        all.sort_by_key(|r| r.start);
        let mut merged = Vec::with_capacity(all.len());
        for r in all {
            push_range(&mut merged, r);
        }
        Ok(Some(merged))
    }

    fn level_ranges(&self, level: usize) -> Result<Vec<Range<u64>>> {
        let link = &self.links[level];
        let mut data: Vec<Range<u64>> = Vec::new();
        let mut unalloc: Vec<Range<u64>> = Vec::new();
        for p in &link.extents {
            p.extent.map(p.len, &mut |r, class| {
                let r = p.start + r.start..p.start + r.end;
                match class {
                    Class::Data => push_range(&mut data, r),
                    Class::Unallocated => push_range(&mut unalloc, r),
                    Class::Zero => {}
                }
            })?;
        }
        if level + 1 < self.links.len() && !unalloc.is_empty() {
            let parent = self.level_ranges(level + 1)?;
            data.extend(intersect(&unalloc, &parent));
            data.sort_by_key(|r| r.start);
            let mut merged = Vec::with_capacity(data.len());
            for r in data {
                push_range(&mut merged, r);
            }
            data = merged;
        }
        Ok(data)
    }
}

impl ReadAt for Disk {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read(offset, buf).map_err(io::Error::from)
    }

    fn size(&self) -> u64 {
        self.capacity
    }

    /// Lends what the head's own flat extent holds: a flat extent has no holes, so its
    /// bytes are the disk's whatever lies below it in the chain.
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<Lent>> {
        let link = &self.links[0];
        let end = offset.checked_add(len as u64)?;
        if end > self.capacity.min(link.capacity) {
            return None;
        }
        let i = link.extents.partition_point(|p| p.start + p.len <= offset);
        let p = link.extents.get(i)?;
        if offset < p.start || end > p.start + p.len {
            return None;
        }
        p.extent.lend(offset - p.start, len)
    }

    fn place(&self, offset: u64, len: u64, out: &mut Places) -> bool {
        fits(offset, len, self.capacity) && self.place_level(0, offset, len, out)
    }
}

/// `[off, off + len)` of a link, extent by extent: (offset from `off`, length, the
/// extent and the offset in it). Extents always add up to the capacity; should they
/// not, what no extent covers comes as one last stretch without one (read as zeros).
fn stretches(
    link: &Link,
    off: u64,
    len: u64,
) -> impl Iterator<Item = (u64, u64, Option<(&Placed, u64)>)> {
    let mut i = link.extents.partition_point(|p| p.start + p.len <= off);
    let mut pos = 0u64;
    std::iter::from_fn(move || {
        if pos >= len {
            return None;
        }
        let at = pos;
        let Some(p) = link.extents.get(i) else {
            pos = len;
            return Some((at, len - at, None));
        };
        let in_ext = off + at - p.start;
        let n = (p.len - in_ext).min(len - at);
        pos += n;
        i += 1;
        Some((at, n, Some((p, in_ext))))
    })
}

fn normalize(name: &str) -> String {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}
