//! The reader of a logical volume: LV offsets mapped through its segments onto PV
//! devices (or onto the sub-LVs of mirror and raid1 legs), reads split where a segment
//! or a stripe chunk ends.

use std::io;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::label_header::SECTOR_SIZE;
use crate::lv::LogicalVolume;
use crate::segment::{Segment, SegmentKind};
use crate::vg::{VolumeGroup, MAX_LV_DEPTH};
use vmsnapfs_io::{check_bounds, ReadAt};

enum Map {
    /// The part's byte 0 is byte `offset` of `dev`.
    Linear {
        dev: Arc<dyn ReadAt>,
        offset: u64,
    },
    /// Chunks of `chunk` bytes round-robin over `stripes` (device, offset of its area).
    Striped {
        chunk: u64,
        stripes: Vec<(Arc<dyn ReadAt>, u64)>,
    },
    /// The part's byte 0 is byte `offset` of another LV.
    Lv {
        lv: Arc<LvReader>,
        offset: u64,
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

impl ReadAt for LvReader {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_bounds(offset, buf.len(), self.size)?;
        let mut pos = offset;
        let mut done = 0usize;
        while done < buf.len() {
            let i = self.parts.partition_point(|p| p.start + p.len <= pos);
            let part = self.parts.get(i).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("no segment maps LV offset {pos}"),
                )
            })?;
            let within = pos - part.start;
            let mut n = (part.len - within).min((buf.len() - done) as u64);
            let out_len;
            match &part.map {
                Map::Linear { dev, offset } => {
                    out_len = n as usize;
                    dev.read_at(offset + within, &mut buf[done..done + out_len])?;
                }
                Map::Striped { chunk, stripes } => {
                    let c = within / chunk;
                    let in_chunk = within % chunk;
                    n = n.min(chunk - in_chunk);
                    out_len = n as usize;
                    let width = stripes.len() as u64;
                    let (dev, base) = &stripes[(c % width) as usize];
                    let at = base + (c / width) * chunk + in_chunk;
                    dev.read_at(at, &mut buf[done..done + out_len])?;
                }
                Map::Lv { lv, offset } => {
                    out_len = n as usize;
                    lv.read_at(offset + within, &mut buf[done..done + out_len])?;
                }
                Map::Zero => {
                    out_len = n as usize;
                    buf[done..done + out_len].fill(0);
                }
            }
            done += out_len;
            pos += out_len as u64;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }
}

/// The reader of `lv`, `depth` LVs down from the one opened.
pub(crate) fn build(vg: &VolumeGroup, lv: &LogicalVolume, depth: usize) -> Result<Arc<LvReader>> {
    let damaged = |line: usize, msg: String| Error::Metadata {
        vg: vg.name.clone(),
        line,
        msg: format!("LV {}: {msg}", lv.name),
    };
    if depth > MAX_LV_DEPTH {
        return Err(damaged(
            lv.line,
            format!("LVs nest deeper than {MAX_LV_DEPTH}"),
        ));
    }
    let es = vg.extent_size;
    let mut parts = Vec::with_capacity(lv.segments.len());
    for seg in &lv.segments {
        let bytes = |extents: u64| {
            extents
                .checked_mul(es)
                .ok_or_else(|| damaged(seg.line, "extent offset overflows".into()))
        };
        let start = bytes(seg.start_extent)?;
        let len = bytes(seg.extent_count)?;
        // `extents` extents from `pe` of PV `pv`: its device and the byte offset.
        let area = |pv: &str, pe: u64, extents: u64| -> Result<(Arc<dyn ReadAt>, u64)> {
            let slot = vg
                .pv(pv)
                .ok_or_else(|| damaged(seg.line, format!("no physical volume {pv:?}")))?;
            match pe.checked_add(extents) {
                Some(end) if end <= slot.pe_count => {}
                _ => {
                    return Err(damaged(
                        seg.line,
                        format!(
                            "extents {pe}+{extents} past the {} extents of {pv}",
                            slot.pe_count
                        ),
                    ))
                }
            }
            let dev = slot.device.clone().ok_or_else(|| Error::MissingPv {
                vg: vg.name.clone(),
                lv: lv.name.clone(),
                pv: slot.uuid.clone(),
            })?;
            let offset = bytes(pe)?
                .checked_add(slot.pe_start)
                .ok_or_else(|| damaged(seg.line, "offset overflows".into()))?;
            let end = bytes(extents)?.checked_add(offset);
            if end.is_none_or(|e| e > dev.size()) {
                return Err(damaged(
                    seg.line,
                    format!(
                        "{pv} extents {pe}+{extents} end past its {}-byte device",
                        dev.size()
                    ),
                ));
            }
            Ok((dev, offset))
        };
        let map = match &seg.kind {
            SegmentKind::Linear { pv, pe } => {
                let (dev, offset) = area(pv, *pe, seg.extent_count)?;
                Map::Linear { dev, offset }
            }
            SegmentKind::Striped {
                stripe_size,
                stripes,
            } => {
                let per = seg.extent_count / stripes.len() as u64;
                let chunk = stripe_size
                    .checked_mul(SECTOR_SIZE as u64)
                    .ok_or_else(|| damaged(seg.line, "stripe_size overflows".into()))?;
                if bytes(per)? % chunk != 0 {
                    return Err(damaged(
                        seg.line,
                        format!(
                            "stripe of {per} extents is not a whole number of {chunk}-byte chunks"
                        ),
                    ));
                }
                let stripes = stripes
                    .iter()
                    .map(|(pv, pe)| area(pv, *pe, per))
                    .collect::<Result<Vec<_>>>()?;
                Map::Striped { chunk, stripes }
            }
            SegmentKind::Mirror { legs, .. } => {
                let legs: Vec<(&str, u64)> = legs.iter().map(|(l, le)| (l.as_str(), *le)).collect();
                leg(vg, lv, seg, &legs, depth)?
            }
            SegmentKind::Raid1 { legs } => {
                let legs: Vec<(&str, u64)> = legs.iter().map(|l| (l.image.as_str(), 0)).collect();
                leg(vg, lv, seg, &legs, depth)?
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

/// The first leg of a mirror/raid1 segment that can be read: each `(lv, le)` holds the
/// segment's extents from its extent `le`. When none can, the first leg's reason.
fn leg(
    vg: &VolumeGroup,
    lv: &LogicalVolume,
    seg: &Segment,
    legs: &[(&str, u64)],
    depth: usize,
) -> Result<Map> {
    let mut first_err = None;
    for &(name, le) in legs {
        let attempt = (|| {
            let sub = vg.lv(name).ok_or_else(|| Error::Metadata {
                vg: vg.name.clone(),
                line: seg.line,
                msg: format!("LV {}: no leg LV {name:?}", lv.name),
            })?;
            match le.checked_add(seg.extent_count) {
                Some(end) if end <= sub.extent_count => {}
                _ => {
                    return Err(Error::Metadata {
                        vg: vg.name.clone(),
                        line: seg.line,
                        msg: format!(
                            "LV {}: leg {name} extents {le}+{} past its {} extents",
                            lv.name, seg.extent_count, sub.extent_count
                        ),
                    })
                }
            }
            let reader = build(vg, sub, depth + 1)?;
            Ok(Map::Lv {
                lv: reader,
                offset: le * vg.extent_size,
            })
        })();
        match attempt {
            Ok(m) => return Ok(m),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| Error::Metadata {
        vg: vg.name.clone(),
        line: seg.line,
        msg: format!("LV {}: mirror without legs", lv.name),
    }))
}
