//! SEEK_DATA / SEEK_HOLE over a file's data ranges, sorted and merged (as
//! `source::merge_ranges` leaves them: no two overlap or touch); the end of the file is
//! an implicit hole, as lseek(2) specifies. A copier asks once or twice per extent, so
//! each answer is a binary search: a linear pass (or a sort) per call would make copying
//! a disk of many extents quadratic.

use std::ops::Range;

pub fn data(ranges: &[Range<u64>], size: u64, off: u64) -> Option<u64> {
    if off >= size {
        return None;
    }
    let i = ranges.partition_point(|r| r.end <= off);
    ranges
        .get(i)
        .map(|r| r.start.max(off))
        .filter(|&p| p < size)
}

pub fn hole(ranges: &[Range<u64>], size: u64, off: u64) -> Option<u64> {
    if off >= size {
        return None;
    }
    let i = ranges.partition_point(|r| r.end <= off);
    let pos = match ranges.get(i) {
        Some(r) if r.start <= off => r.end,
        _ => off,
    };
    Some(pos.min(size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::merge_ranges;

    #[test]
    fn data_and_holes() {
        let r = merge_ranges(vec![0..10, 10..20, 30..40]);
        assert_eq!(data(&r, 50, 0), Some(0));
        assert_eq!(data(&r, 50, 20), Some(30));
        assert_eq!(data(&r, 50, 40), None);
        assert_eq!(hole(&r, 50, 0), Some(20));
        assert_eq!(hole(&r, 50, 25), Some(25));
        assert_eq!(hole(&r, 50, 35), Some(40));
        let whole: Vec<Range<u64>> = std::iter::once(0..50).collect();
        assert_eq!(hole(&whole, 50, 3), Some(50));
        assert_eq!(hole(&r, 50, 50), None);
        // A range reaching past the end (a file shorter than its last extent).
        let past: Vec<Range<u64>> = std::iter::once(0..80).collect();
        assert_eq!(hole(&past, 50, 10), Some(50));
        let past: Vec<Range<u64>> = std::iter::once(60..80).collect();
        assert_eq!(data(&past, 50, 10), None);
    }

    /// Byte by byte: the first data byte at or after `off`, and the first hole byte.
    fn naive(ranges: &[Range<u64>], size: u64, off: u64) -> (Option<u64>, Option<u64>) {
        if off >= size {
            return (None, None);
        }
        let is_data = |p: u64| ranges.iter().any(|r| r.contains(&p));
        let d = (off..size).find(|&p| is_data(p));
        let h = (off..size).find(|&p| !is_data(p)).unwrap_or(size);
        (d, Some(h))
    }

    #[test]
    fn binary_search_agrees_with_a_byte_by_byte_scan() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..300 {
            let size = 1 + next(200);
            let raw: Vec<Range<u64>> = (0..next(12))
                .map(|_| {
                    let s = next(220);
                    s..s + next(30)
                })
                .collect();
            let r = merge_ranges(raw);
            for off in 0..size + 3 {
                let (d, h) = naive(&r, size, off);
                assert_eq!(data(&r, size, off), d, "{r:?} size {size} off {off}");
                assert_eq!(hole(&r, size, off), h, "{r:?} size {size} off {off}");
            }
        }
    }
}
