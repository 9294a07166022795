//! SEEK_DATA / SEEK_HOLE over a sorted list of data ranges (adjacent ranges merge; the
//! end of the file is an implicit hole, as lseek(2) specifies).

use std::ops::Range;

pub fn data(ranges: &[Range<u64>], size: u64, off: u64) -> Option<u64> {
    if off >= size {
        return None;
    }
    ranges
        .iter()
        .filter(|r| r.end > off && r.start < r.end)
        .map(|r| r.start.max(off))
        .min()
        .filter(|&p| p < size)
}

pub fn hole(ranges: &[Range<u64>], size: u64, off: u64) -> Option<u64> {
    if off >= size {
        return None;
    }
    let mut sorted: Vec<Range<u64>> = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut pos = off;
    for r in sorted {
        if r.start > pos {
            break;
        }
        pos = pos.max(r.end);
    }
    Some(pos.min(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_and_holes() {
        let r = [0..10, 10..20, 30..40];
        assert_eq!(data(&r, 50, 0), Some(0));
        assert_eq!(data(&r, 50, 20), Some(30));
        assert_eq!(data(&r, 50, 40), None);
        assert_eq!(hole(&r, 50, 0), Some(20));
        assert_eq!(hole(&r, 50, 25), Some(25));
        assert_eq!(hole(&r, 50, 35), Some(40));
        let whole: Vec<Range<u64>> = std::iter::once(0..50).collect();
        assert_eq!(hole(&whole, 50, 3), Some(50));
        assert_eq!(hole(&r, 50, 50), None);
    }
}
