//! A disk as seen from its chain head: the links (head … base), each a list of extents, and
//! reads that fall through unallocated grains to the parent.

use std::collections::HashSet;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use vmsnapfs_io::ReadAt;

use crate::cowd_header;
use crate::descriptor::{Descriptor, ExtentType};
use crate::error::{Error, Result};
use crate::extent::Extent;
use crate::grain_directory::{fits, read_exact};
use crate::resolver::{join_name, LocalResolver, Resolver};
use crate::sesparse_header;
use crate::sparse_extent::{read_kdmv_header, SparseExtent, MAX_CAPACITY_SECTORS};
use crate::sparse_extent_header as seh;
use crate::Class;

/// A separate descriptor is a few KiB; anything bigger without a sparse magic is not one.
const MAX_DESCRIPTOR_BYTES: u64 = 1 << 20;
/// Snapshot chains deeper than this are damage (VMware allows 32).
const MAX_CHAIN: usize = 255;

struct Placed {
    start: u64,
    len: u64,
    extent: Extent,
}

/// One file of the chain with everything it references.
struct Link {
    descriptor: Option<Descriptor>,
    create_type: Option<String>,
    capacity: u64,
    extents: Vec<Placed>,
}

impl Link {
    fn cid(&self) -> Option<u32> {
        self.descriptor.as_ref().and_then(|d| d.cid)
    }
}

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
        let mut i = link.extents.partition_point(|p| p.start + p.len <= off);
        let mut pos = 0usize;
        while pos < buf.len() {
            let Some(p) = link.extents.get(i) else {
                // Extents always add up to the capacity; stay safe if they do not.
                buf[pos..].fill(0);
                break;
            };
            let v = off + pos as u64;
            let in_ext = v - p.start;
            let n = ((p.len - in_ext) as usize).min(buf.len() - pos);
            p.extent
                .read(in_ext, &mut buf[pos..pos + n], pos, &mut holes)?;
            pos += n;
            i += 1;
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

    /// Byte ranges of the virtual disk that hold data anywhere in the chain, sorted and
    /// merged. Everything outside reads as zeros.
    pub fn allocated_ranges(&self) -> Result<Vec<Range<u64>>> {
        self.level_ranges(0)
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
}

fn push_range(v: &mut Vec<Range<u64>>, r: Range<u64>) {
    if r.is_empty() {
        return;
    }
    if let Some(last) = v.last_mut() {
        if last.end >= r.start {
            last.end = last.end.max(r.end);
            return;
        }
    }
    v.push(r);
}

/// Intersection of two sorted, disjoint range lists.
fn intersect(a: &[Range<u64>], b: &[Range<u64>]) -> Vec<Range<u64>> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let s = a[i].start.max(b[j].start);
        let e = a[i].end.min(b[j].end);
        if s < e {
            out.push(s..e);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

fn normalize(name: &str) -> String {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn open_file(resolver: &dyn Resolver, name: &str, what: &'static str) -> Result<Arc<dyn ReadAt>> {
    resolver.open(name).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::NotFound {
                file: name.to_string(),
                what,
            }
        } else {
            Error::Io {
                file: name.to_string(),
                source: e,
            }
        }
    })
}

enum Magic {
    Kdmv,
    Cowd,
    SeSparse,
    Other,
}

fn sniff(name: &str, src: &dyn ReadAt) -> Result<Magic> {
    if src.size() < 4 {
        return Err(Error::invalid(
            name,
            format!("file of {} bytes is too small to be a VMDK", src.size()),
        ));
    }
    let mut b = [0u8; 8];
    let n = src.size().min(8) as usize;
    read_exact(name, src, 0, &mut b[..n])?;
    Ok(if &b[..4] == seh::MAGIC {
        Magic::Kdmv
    } else if &b[..4] == cowd_header::MAGIC {
        Magic::Cowd
    } else if u64::from_le_bytes(b) == sesparse_header::CONST_MAGIC {
        Magic::SeSparse
    } else {
        Magic::Other
    })
}

fn read_text(name: &str, src: &dyn ReadAt, at: u64, len: u64) -> Result<String> {
    let len = len
        .min(MAX_DESCRIPTOR_BYTES)
        .min(src.size().saturating_sub(at));
    let mut b = vec![0u8; len as usize];
    read_exact(name, src, at, &mut b)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

fn parse_descriptor(name: &str, text: &str) -> Result<Descriptor> {
    Descriptor::parse(text).map_err(|r| Error::invalid(name, format!("descriptor: {r}")))
}

fn open_link(resolver: &dyn Resolver, name: &str, what: &'static str) -> Result<Link> {
    let src = open_file(resolver, name, what)?;
    match sniff(name, &*src)? {
        Magic::Kdmv => {
            let (first, h) = read_kdmv_header(name, &*src)?;
            let embedded = if first.descriptor_offset != 0 && first.descriptor_size != 0 {
                let at = first
                    .descriptor_offset
                    .checked_mul(512)
                    .ok_or_else(|| Error::corrupt(name, 0, "descriptor offset overflows"))?;
                let len = first.descriptor_size.saturating_mul(512);
                Some(parse_descriptor(name, &read_text(name, &*src, at, len)?)?)
            } else {
                None
            };
            if h.capacity == 0 {
                // A sparse file carrying only a descriptor for other extents.
                if let Some(d) = embedded {
                    return link_from_descriptor(resolver, name, d);
                }
                return Err(Error::corrupt(
                    name,
                    0,
                    "sparse extent of zero capacity and no descriptor",
                ));
            }
            // A monolithic sparse file is its own single extent, whatever file name its
            // embedded descriptor gives (the file may have been renamed).
            let extent = SparseExtent::open_hosted(name, src.clone(), &h)?;
            let capacity = h.capacity * 512;
            let create_type = embedded
                .as_ref()
                .and_then(|d| d.create_type.clone())
                .or_else(|| {
                    Some(
                        if h.compressed() {
                            "streamOptimized"
                        } else {
                            "monolithicSparse"
                        }
                        .into(),
                    )
                });
            Ok(Link {
                descriptor: embedded,
                create_type,
                capacity,
                extents: vec![Placed {
                    start: 0,
                    len: capacity,
                    extent: Extent::Sparse(Box::new(extent)),
                }],
            })
        }
        Magic::Cowd => {
            let (extent, sectors) = SparseExtent::open_cowd(name, src)?;
            Ok(single(None, "vmfsSparse", sectors * 512, extent))
        }
        Magic::SeSparse => {
            let (extent, sectors) = SparseExtent::open_sesparse(name, src)?;
            Ok(single(None, "seSparse", sectors * 512, extent))
        }
        Magic::Other => {
            if src.size() > MAX_DESCRIPTOR_BYTES {
                return Err(Error::invalid(
                    name,
                    format!(
                        "not a VMDK: no sparse header, and {} bytes is too large for a descriptor",
                        src.size()
                    ),
                ));
            }
            let d = parse_descriptor(name, &read_text(name, &*src, 0, src.size())?)?;
            if !d.is_plausible() {
                return Err(Error::invalid(
                    name,
                    "not a VMDK descriptor (no createType and no extent lines)",
                ));
            }
            link_from_descriptor(resolver, name, d)
        }
    }
}

fn single(
    descriptor: Option<Descriptor>,
    create_type: &str,
    capacity: u64,
    extent: SparseExtent,
) -> Link {
    Link {
        descriptor,
        create_type: Some(create_type.to_string()),
        capacity,
        extents: vec![Placed {
            start: 0,
            len: capacity,
            extent: Extent::Sparse(Box::new(extent)),
        }],
    }
}

fn link_from_descriptor(resolver: &dyn Resolver, name: &str, d: Descriptor) -> Result<Link> {
    if let Some(ct) = d.create_type.as_deref() {
        if ct.eq_ignore_ascii_case("vmfsRawDeviceMap")
            || ct.eq_ignore_ascii_case("vmfsPassthroughRawDeviceMap")
        {
            return Err(Error::RawDeviceMapping {
                file: name.to_string(),
            });
        }
    }
    if d.extents.is_empty() {
        return Err(Error::invalid(name, "descriptor lists no extents"));
    }
    let mut extents = Vec::with_capacity(d.extents.len());
    let mut start = 0u64;
    for e in &d.extents {
        if e.sectors > MAX_CAPACITY_SECTORS {
            return Err(Error::invalid(
                name,
                format!("extent of {} sectors is implausible", e.sectors),
            ));
        }
        let len = e.sectors * 512;
        let file = || {
            e.file
                .as_deref()
                .map(|f| join_name(name, f))
                .ok_or_else(|| Error::invalid(name, "extent line names no file"))
        };
        let extent = match &e.kind {
            ExtentType::Zero => Extent::Zero,
            ExtentType::Flat | ExtentType::Vmfs => {
                let f = file()?;
                let src = open_file(resolver, &f, "extent file")?;
                let offset = e
                    .offset
                    .checked_mul(512)
                    .filter(|o| o.checked_add(len).is_some())
                    .ok_or_else(|| Error::invalid(name, "flat extent offset overflows"))?;
                Extent::Flat {
                    file: f,
                    src,
                    offset,
                }
            }
            ExtentType::Sparse | ExtentType::VmfsSparse => {
                let f = file()?;
                let src = open_file(resolver, &f, "extent file")?;
                let (extent, sectors) = match sniff(&f, &*src)? {
                    Magic::Kdmv => {
                        let (_, h) = read_kdmv_header(&f, &*src)?;
                        (SparseExtent::open_hosted(&f, src, &h)?, h.capacity)
                    }
                    Magic::Cowd => SparseExtent::open_cowd(&f, src)?,
                    _ => {
                        return Err(Error::corrupt(
                            &f,
                            0,
                            "sparse extent has neither a KDMV nor a COWD header",
                        ))
                    }
                };
                check_extent_size(name, &f, e.sectors, sectors)?;
                Extent::Sparse(Box::new(extent))
            }
            ExtentType::SeSparse => {
                let f = file()?;
                let src = open_file(resolver, &f, "extent file")?;
                let (extent, sectors) = SparseExtent::open_sesparse(&f, src)?;
                check_extent_size(name, &f, e.sectors, sectors)?;
                Extent::Sparse(Box::new(extent))
            }
            ExtentType::VmfsRdm | ExtentType::VmfsRaw => {
                return Err(Error::RawDeviceMapping {
                    file: name.to_string(),
                })
            }
            ExtentType::Other(t) => {
                return Err(Error::unsupported(name, format!("extent type {t}")))
            }
        };
        if start + len > MAX_CAPACITY_SECTORS * 512 {
            return Err(Error::invalid(
                name,
                "extents add up to an implausible capacity",
            ));
        }
        if len > 0 {
            extents.push(Placed { start, len, extent });
        }
        start += len;
    }
    Ok(Link {
        create_type: d.create_type.clone(),
        descriptor: Some(d),
        capacity: start,
        extents,
    })
}

/// A descriptor claiming more of a sparse extent than its header holds would read the
/// uncovered part as holes: refuse it as the lie it is.
fn check_extent_size(name: &str, file: &str, claimed: u64, header: u64) -> Result<()> {
    if claimed > header {
        return Err(Error::invalid(
            name,
            format!(
                "extent line gives {file} {claimed} sectors, but its header holds only {header}"
            ),
        ));
    }
    Ok(())
}
