//! The reader of a logical volume: LV offsets mapped through its segments onto PV
//! devices (or onto the sub-LVs of mirror and raid1 legs), reads split where a segment
//! or a stripe chunk ends.

use std::cell::Cell;
use std::io;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::label_header::SECTOR_SIZE;
use crate::lv::LogicalVolume;
use crate::segment::{Segment, SegmentKind};
use crate::vg::{VolumeGroup, MAX_LV_DEPTH};
use vmsnapfs_io::{check_bounds, ReadAt};

enum Map {
    /// The part's byte 0 is byte `offset` of `dev` (a PV's device, or another LV's
    /// reader for mirror and raid1 legs).
    Linear {
        dev: Arc<dyn ReadAt>,
        offset: u64,
    },
    /// Chunks of `chunk` bytes round-robin over `stripes` (device, offset of its area).
    Striped {
        chunk: u64,
        stripes: Vec<(Arc<dyn ReadAt>, u64)>,
    },
    Zero,
}

struct Part {
    start: u64,
    len: u64,
    map: Map,
}

pub(crate) struct LvReader {
    size: u64,
    parts: Vec<Part>,
}

/// Where a stretch of an LV lies: on which device at which offset (None: it reads as
/// zeros).
type Lies<'a> = Option<(&'a dyn ReadAt, u64)>;

impl LvReader {
    /// How many of `want` bytes at LV offset `pos` lie together, and where: on which
    /// device at which offset (None: a zero segment). Split where a segment or a stripe
    /// chunk ends.
    fn stretch_at(&self, pos: u64, want: u64) -> io::Result<(u64, Lies<'_>)> {
        let part = self
            .parts
            .get(self.parts.partition_point(|p| p.start + p.len <= pos))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("no segment maps LV offset {pos}"),
                )
            })?;
        let within = pos - part.start;
        let n = (part.len - within).min(want);
        Ok(match &part.map {
            Map::Linear { dev, offset } => (n, Some((&**dev, offset + within))),
            Map::Striped { chunk, stripes } => {
                let (c, in_chunk) = (within / chunk, within % chunk);
                let width = stripes.len() as u64;
                let (dev, base) = &stripes[(c % width) as usize];
                let at = base + (c / width) * chunk + in_chunk;
                (n.min(chunk - in_chunk), Some((&**dev, at)))
            }
            Map::Zero => (n, None),
        })
    }
}

impl ReadAt for LvReader {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_bounds(offset, buf.len(), self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let (n, at) = self.stretch_at(offset + done as u64, (buf.len() - done) as u64)?;
            let piece = &mut buf[done..done + n as usize];
            match at {
                Some((dev, at)) => dev.read_at(at, piece)?,
                None => piece.fill(0),
            }
            done += n as usize;
        }
        Ok(())
    }

    /// Passed on to the devices part by part, so an LV whose segments lie in local
    /// image files splices like the disk itself.
    fn place(&self, offset: u64, len: u64, out: &mut vmsnapfs_io::Places) -> bool {
        if check_bounds(offset, len as usize, self.size).is_err() {
            return false;
        }
        let mut done = 0u64;
        while done < len {
            let Ok((n, at)) = self.stretch_at(offset + done, len - done) else {
                return false;
            };
            match at {
                Some((dev, at)) if dev.place(at, n, out) => {}
                Some(_) => return false,
                None => out.zero(n),
            }
            done += n;
        }
        true
    }

    fn size(&self) -> u64 {
        self.size
    }

    /// Passed on to the device when the range lies in one linear part.
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<vmsnapfs_io::Lent>> {
        if let Err(e) = check_bounds(offset, len, self.size) {
            return Some(Err(e));
        }
        let part = self
            .parts
            .get(self.parts.partition_point(|p| p.start + p.len <= offset))?;
        let within = offset - part.start;
        match &part.map {
            Map::Linear { dev, offset: at } if within + len as u64 <= part.len => {
                dev.lend(at + within, len)
            }
            _ => None,
        }
    }
}

/// How many LV readers one open may build, legs tried and nested LVs included: mirror
/// legs that fail each try the next, so damaged metadata with many legs nested deep
/// would otherwise take exponential time.
const MAX_LV_BUILDS: u32 = 4096;

/// How deep below the LV opened a build is, and how many builds are left.
#[derive(Clone, Copy)]
struct Nest<'a> {
    depth: usize,
    budget: &'a Cell<u32>,
}

/// The reader of `lv`.
pub(crate) fn build(vg: &VolumeGroup, lv: &LogicalVolume) -> Result<Arc<LvReader>> {
    build_at(vg, lv, 0, &Cell::new(MAX_LV_BUILDS))
}

/// The reader of `lv`, `depth` LVs down from the one opened, `budget` builds left.
fn build_at(
    vg: &VolumeGroup,
    lv: &LogicalVolume,
    depth: usize,
    budget: &Cell<u32>,
) -> Result<Arc<LvReader>> {
    if budget.get() == 0 {
        return Err(damaged(
            vg,
            lv,
            lv.line,
            format!("more than {MAX_LV_BUILDS} nested LVs and legs to resolve"),
        ));
    }
    budget.set(budget.get() - 1);
    if depth > MAX_LV_DEPTH {
        return Err(damaged(
            vg,
            lv,
            lv.line,
            format!("LVs nest deeper than {MAX_LV_DEPTH}"),
        ));
    }
    let nest = Nest { depth, budget };
    let mut parts = Vec::with_capacity(lv.segments.len());
    for seg in &lv.segments {
        let start = bytes(vg, lv, seg, seg.start_extent)?;
        let len = bytes(vg, lv, seg, seg.extent_count)?;
        let map = match &seg.kind {
            SegmentKind::Linear { pv, pe } => {
                let (dev, offset) = area(vg, lv, seg, pv, *pe, seg.extent_count, nest)?;
                Map::Linear { dev, offset }
            }
            SegmentKind::Striped {
                stripe_size,
                stripes,
            } => {
                let per = seg.extent_count / stripes.len() as u64;
                let chunk = stripe_size
                    .checked_mul(SECTOR_SIZE as u64)
                    .ok_or_else(|| damaged(vg, lv, seg.line, "stripe_size overflows".into()))?;
                if bytes(vg, lv, seg, per)? % chunk != 0 {
                    return Err(damaged(
                        vg,
                        lv,
                        seg.line,
                        format!(
                            "stripe of {per} extents is not a whole number of {chunk}-byte chunks"
                        ),
                    ));
                }
                let stripes = stripes
                    .iter()
                    .map(|(pv, pe)| area(vg, lv, seg, pv, *pe, per, nest))
                    .collect::<Result<Vec<_>>>()?;
                Map::Striped { chunk, stripes }
            }
            SegmentKind::Mirror { legs, .. } => {
                let legs: Vec<(&str, u64)> = legs.iter().map(|(l, le)| (l.as_str(), *le)).collect();
                first_leg(vg, lv, seg, &legs, nest)?
            }
            SegmentKind::Raid1 { legs } => {
                let legs: Vec<(&str, u64)> = legs.iter().map(|l| (l.image.as_str(), 0)).collect();
                first_leg(vg, lv, seg, &legs, nest)?
            }
            SegmentKind::Zero => Map::Zero,
            SegmentKind::Unsupported { type_name, .. } => {
                return Err(Error::Unsupported {
                    vg: vg.name.clone(),
                    lv: lv.name.clone(),
                    msg: format!("segment type {type_name:?}"),
                })
            }
        };
        parts.push(Part { start, len, map });
    }
    Ok(Arc::new(LvReader {
        size: lv.size,
        parts,
    }))
}

fn damaged(vg: &VolumeGroup, lv: &LogicalVolume, line: usize, msg: String) -> Error {
    Error::Metadata {
        vg: vg.name.clone(),
        line,
        msg: format!("LV {}: {msg}", lv.name),
    }
}

fn bytes(vg: &VolumeGroup, lv: &LogicalVolume, seg: &Segment, extents: u64) -> Result<u64> {
    extents
        .checked_mul(vg.extent_size)
        .ok_or_else(|| damaged(vg, lv, seg.line, "extent offset overflows".into()))
}

/// `extents` extents from extent `n` of `name`, as LVM2 resolves an area: a PV of the
/// VG by that name, else an LV (a mirror's or raid's image, or `pvmove0` while a pvmove
/// runs). The source and the byte offset in it.
fn area(
    vg: &VolumeGroup,
    lv: &LogicalVolume,
    seg: &Segment,
    name: &str,
    n: u64,
    extents: u64,
    nest: Nest<'_>,
) -> Result<(Arc<dyn ReadAt>, u64)> {
    let bad = |msg: String| damaged(vg, lv, seg.line, msg);
    if let Some(slot) = vg.pv(name) {
        match n.checked_add(extents) {
            Some(end) if end <= slot.pe_count => {}
            _ => {
                return Err(bad(format!(
                    "extents {n}+{extents} past the {} extents of {name}",
                    slot.pe_count
                )))
            }
        }
        let dev = slot.device.clone().ok_or_else(|| Error::MissingPv {
            vg: vg.name.clone(),
            lv: lv.name.clone(),
            pv: slot.uuid.clone(),
        })?;
        let offset = bytes(vg, lv, seg, n)?
            .checked_add(slot.pe_start)
            .ok_or_else(|| bad("offset overflows".into()))?;
        let end = bytes(vg, lv, seg, extents)?.checked_add(offset);
        if end.is_none_or(|e| e > dev.size()) {
            return Err(bad(format!(
                "{name} extents {n}+{extents} end past its {}-byte device",
                dev.size()
            )));
        }
        return Ok((dev, offset));
    }
    let sub = vg
        .lv(name)
        .ok_or_else(|| bad(format!("no physical or logical volume {name:?}")))?;
    match n.checked_add(extents) {
        Some(end) if end <= sub.extent_count => {}
        _ => {
            return Err(bad(format!(
                "extents {n}+{extents} past the {} extents of LV {name}",
                sub.extent_count
            )))
        }
    }
    let reader: Arc<dyn ReadAt> = build_at(vg, sub, nest.depth + 1, nest.budget)?;
    Ok((reader, bytes(vg, lv, seg, n)?))
}

/// The first leg of a mirror/raid1 segment that can be read: each `(name, n)` holds the
/// segment's extents from its extent `n`. When none can, the first leg's reason.
fn first_leg(
    vg: &VolumeGroup,
    lv: &LogicalVolume,
    seg: &Segment,
    legs: &[(&str, u64)],
    nest: Nest<'_>,
) -> Result<Map> {
    let mut first_err = None;
    for &(name, n) in legs {
        match area(vg, lv, seg, name, n, seg.extent_count, nest) {
            Ok((dev, offset)) => return Ok(Map::Linear { dev, offset }),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| damaged(vg, lv, seg.line, "mirror without legs".into())))
}
