//! Changed-block views of a frozen VM's disks, for incremental backups: under
//! `disks/since/<CHANGE_ID>/` each disk that knows that earlier state has the list of
//! extents changed since (`disk<N>.changes.json`) and a sparse image whose data regions
//! are exactly those extents (`disk<N>-flat.vmdk`, SEEK_DATA/SEEK_HOLE-aware copiers
//! read only the changes). An id a disk cannot count from is never "no changes".

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::source::merge_ranges;

/// Change ids may hold `/` (vSphere's "52 … /N"): in a path it is `%2F`, and `%` is `%25`.
const IN_PATH: &AsciiSet = &CONTROLS.add(b'/').add(b'%');

/// The folder name under `disks/since/` for a change id.
pub fn path_name(id: &str) -> String {
    utf8_percent_encode(id, IN_PATH).to_string()
}

/// The change id a folder name under `disks/since/` stands for.
pub fn id_of(name: &str) -> String {
    percent_decode_str(name).decode_utf8_lossy().into_owned()
}

/// One disk's changes since an id.
pub struct DiskChanges {
    /// Sorted, merged, within the disk.
    pub ranges: Vec<Range<u64>>,
    /// `[{"start":…,"length":…}, …]` and a newline.
    pub json: Vec<u8>,
    /// The next extents, fetched while the reader copies this one.
    pub ahead: super::ahead::Ahead,
}

impl DiskChanges {
    pub fn new(ranges: Vec<Range<u64>>, size: u64) -> DiskChanges {
        let clipped = merge_ranges(
            ranges
                .into_iter()
                .map(|r| r.start.min(size)..r.end.min(size))
                .collect(),
        );
        let list: Vec<serde_json::Value> = clipped
            .iter()
            .map(|r| serde_json::json!({"start": r.start, "length": r.end - r.start}))
            .collect();
        let mut json = serde_json::to_vec(&list).unwrap_or_default();
        json.push(b'\n');
        DiskChanges {
            ranges: clipped,
            json,
            ahead: Default::default(),
        }
    }

    pub fn changed_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }
}

/// The changes of every disk since one id: None for a disk that does not know it.
pub struct Since {
    pub id: String,
    pub disks: Vec<Option<Arc<DiskChanges>>>,
}

#[derive(Default)]
pub struct SinceCache {
    pub(super) known: Mutex<HashMap<String, Arc<Since>>>,
    /// Ids asked for that some disk could not count from, with why: status.json tells
    /// the backup that those disks need a full copy.
    pub full_needed: Mutex<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_path_names() {
        let id = "52 3d 1a 0b 9c 7e 45 2f-8b 61 d2 5c 11 a0 3e 77/4";
        let name = path_name(id);
        assert!(!name.contains('/'), "{name}");
        assert_eq!(id_of(&name), id);
        assert_eq!(path_name("1f2e3d4c"), "1f2e3d4c");
        assert_eq!(id_of(&path_name("50%/x")), "50%/x");
    }

    #[test]
    fn changes_are_clipped_merged_and_listed() {
        let c = DiskChanges::new(vec![0..10, 10..20, 30..40, 95..200, 300..400], 100);
        assert_eq!(c.ranges, [0..20, 30..40, 95..100]);
        assert_eq!(c.changed_bytes(), 35);
        let v: serde_json::Value = serde_json::from_slice(&c.json).unwrap();
        assert_eq!(v[2]["start"], 95);
        assert_eq!(v[2]["length"], 5);
        // Stretches asked at once may come back out of order and overlapping.
        let c = DiskChanges::new(vec![30..40, 0..10, 5..12, 12..12, 38..50], 100);
        assert_eq!(c.ranges, [0..12, 30..50]);
    }
}
