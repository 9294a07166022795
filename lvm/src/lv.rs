//! A logical volume (`logical_volumes { name { ... } }` in the metadata text).

use crate::metadata::Section;
use crate::segment::{self, Segment};

/// Whether [`crate::VolumeGroup::open`] can read a logical volume.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LvStatus {
    Readable,
    /// Thin, thin pool, snapshot (and a snapshot's COW store), cache, raid levels other
    /// than 1...: the reason.
    Unsupported(String),
    /// A physical volume it needs (every leg of a mirror/raid1 needs one) is not among
    /// the devices given: that PV's uuid.
    MissingPv(String),
    /// Its metadata does not make sense: why, with the line.
    Damaged(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalVolume {
    pub name: String,
    pub uuid: String,
    /// The device-mapper name, `<vg>-<lv>` with every `-` inside either name doubled
    /// (`vg-1`/`lv-a` is `vg--1-lv--a`), as `/dev/mapper/` would show it.
    pub dm_name: String,
    /// `VISIBLE` in its status: false for the hidden sub-LVs of mirrors, raid, pools.
    pub visible: bool,
    pub extent_count: u64,
    /// In bytes.
    pub size: u64,
    pub segments: Vec<Segment>,
    pub status: LvStatus,
    /// The line of its section in the metadata text.
    pub line: usize,
}

/// LVM2's device-mapper name for LV `lv` of VG `vg`.
pub fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

/// The LV section `s` of VG `vg` whose extents are `extent_size` bytes. Damage makes
/// the LV [`LvStatus::Damaged`], not an error: the VG's other LVs stay readable.
pub fn parse(vg: &str, extent_size: u64, s: &Section) -> LogicalVolume {
    let mut lv = LogicalVolume {
        name: s.name.clone(),
        uuid: s.str("id").unwrap_or_default().to_string(),
        dm_name: dm_name(vg, &s.name),
        visible: s.has_flag("status", "VISIBLE"),
        extent_count: 0,
        size: 0,
        segments: Vec::new(),
        status: LvStatus::Readable,
        line: s.line,
    };
    match segments(s) {
        Ok(segs) => {
            let extents = segs.last().map_or(0, |g| g.start_extent + g.extent_count);
            match extents.checked_mul(extent_size) {
                Some(size) => {
                    lv.extent_count = extents;
                    lv.size = size;
                    lv.segments = segs;
                }
                None => lv.status = LvStatus::Damaged(format!("line {}: size overflows", s.line)),
            }
        }
        Err((line, msg)) => lv.status = LvStatus::Damaged(format!("line {line}: {msg}")),
    }
    lv
}

/// The segments in extent order, checked to follow each other from extent 0.
fn segments(s: &Section) -> Result<Vec<Segment>, segment::SegmentError> {
    let mut segs = s
        .sections
        .iter()
        .filter(|c| c.name.starts_with("segment"))
        .map(segment::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(n) = s.int("segment_count") {
        if n != segs.len() as i64 {
            return Err((
                s.line,
                format!("segment_count {n} but {} segments", segs.len()),
            ));
        }
    }
    segs.sort_by_key(|g| g.start_extent);
    let mut next = 0u64;
    for g in &segs {
        if g.start_extent != next {
            return Err((
                g.line,
                format!(
                    "segment starts at extent {}, expected {next}",
                    g.start_extent
                ),
            ));
        }
        next = g
            .start_extent
            .checked_add(g.extent_count)
            .ok_or((g.line, "extent count overflows".to_string()))?;
    }
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_names_double_dashes() {
        assert_eq!(dm_name("vg0", "root"), "vg0-root");
        assert_eq!(dm_name("my-vg", "lv-a-b"), "my--vg-lv--a--b");
    }
}
