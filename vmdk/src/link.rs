//! Opening one file of a chain: sniffing what it is (sparse header or descriptor text) and
//! opening every extent it references.

use std::io;
use std::sync::Arc;

use vmsnapfs_io::ReadAt;

use crate::cowd_header;
use crate::descriptor::{Descriptor, ExtentType};
use crate::error::{Error, Result};
use crate::extent::Extent;
use crate::grain_directory::read_exact;
use crate::resolver::{join_name, Resolver};
use crate::sesparse_header;
use crate::sparse_extent::{read_kdmv_header, SparseExtent, MAX_CAPACITY_SECTORS};
use crate::sparse_extent_header as seh;

/// A separate descriptor is a few KiB; anything bigger without a sparse magic is not one.
const MAX_DESCRIPTOR_BYTES: u64 = 1 << 20;

pub(crate) struct Placed {
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) extent: Extent,
}

/// One file of the chain with everything it references.
pub(crate) struct Link {
    pub(crate) descriptor: Option<Descriptor>,
    pub(crate) create_type: Option<String>,
    pub(crate) capacity: u64,
    pub(crate) extents: Vec<Placed>,
}

impl Link {
    pub(crate) fn cid(&self) -> Option<u32> {
        self.descriptor.as_ref().and_then(|d| d.cid)
    }
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

pub(crate) fn open_link(resolver: &dyn Resolver, name: &str, what: &'static str) -> Result<Link> {
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
