//! The metadata area header (lib/format_text/layout.h `struct mda_header`): the first
//! 512 bytes of each metadata area, and the `raw_locn` that says where in the area's
//! ring buffer the current metadata text is.
//!
//! | offset | size | field                                                   |
//! |--------|------|---------------------------------------------------------|
//! | 0      | 4    | `checksum_xl`: [`crate::calc_crc`] (LVM2's CRC) of bytes 4..512           |
//! | 4      | 16   | `magic` = ` LVM2 x[5A%r0N*>`                            |
//! | 20     | 4    | `version` = 1                                           |
//! | 24     | 8    | `start`: byte offset of this area on the device         |
//! | 32     | 8    | `size` of this area in bytes                            |
//! | 40     | 24·n | `raw_locn {offset, size, checksum, flags}`, ended by 0s |
//!
//! A `raw_locn` offset is relative to the area start; the text is `size` bytes (its
//! terminating NUL included) and wraps from the end of the area back to just after this
//! header. Its checksum covers the text in that order.

use crate::crc::{calc_crc, INITIAL_CRC};
use crate::error::{Error, Result};
use vmsnapfs_io::{le, ReadAt};

pub const MDA_HEADER_SIZE: usize = 512;
pub const FMTT_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
pub const FMTT_VERSION: u32 = 1;
/// `raw_locn.flags`: this area is ignored (`pvchange --metadataignore`); its text may be stale.
pub const RAW_LOCN_IGNORED: u32 = 1;
/// The largest metadata text we read. LVM2's own text for a VG with thousands of LVs is
/// a few MiB; anything near this is damage, not a volume group.
pub const MAX_METADATA_TEXT: u64 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLocn {
    pub offset: u64,
    pub size: u64,
    pub checksum: u32,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaHeader {
    pub checksum: u32,
    pub version: u32,
    pub start: u64,
    pub size: u64,
    pub raw_locns: Vec<RawLocn>,
}

impl MdaHeader {
    /// The committed metadata text's location: the first `raw_locn`, unless there is none
    /// (an orphan PV's area) or it is ignored.
    pub fn committed(&self) -> Option<&RawLocn> {
        self.raw_locns
            .first()
            .filter(|r| r.flags & RAW_LOCN_IGNORED == 0 && r.size > 0)
    }
}

/// The header in `b` (512 bytes read at byte `at` of `device`, the start of a metadata
/// area of `area_size` bytes according to the PV header).
pub fn parse(device: &str, at: u64, area_size: u64, b: &[u8]) -> Result<MdaHeader> {
    let corrupt = |msg: String| Error::Corrupt {
        device: device.to_string(),
        structure: "metadata area header",
        offset: at,
        msg,
    };
    if b.len() < MDA_HEADER_SIZE {
        return Err(corrupt(format!("truncated to {} bytes", b.len())));
    }
    let b = &b[..MDA_HEADER_SIZE];
    let short = |e: le::ShortBuffer| corrupt(e.to_string());
    let checksum = le::u32_at(b, 0).map_err(short)?;
    if &b[4..20] != FMTT_MAGIC {
        return Err(corrupt("wrong magic".into()));
    }
    let computed = calc_crc(INITIAL_CRC, &b[4..]);
    if computed != checksum {
        return Err(Error::Checksum {
            device: device.to_string(),
            structure: "metadata area header",
            offset: at,
            stored: checksum,
            computed,
        });
    }
    let version = le::u32_at(b, 20).map_err(short)?;
    if version != FMTT_VERSION {
        return Err(corrupt(format!("version {version}, only 1 is known")));
    }
    let start = le::u64_at(b, 24).map_err(short)?;
    let size = le::u64_at(b, 32).map_err(short)?;
    if start != at {
        return Err(corrupt(format!("says it starts at {start}")));
    }
    if size != area_size || size <= MDA_HEADER_SIZE as u64 {
        return Err(corrupt(format!(
            "area size {size}, the PV header says {area_size}"
        )));
    }
    let mut raw_locns = Vec::new();
    let mut pos = 40;
    while pos + 24 <= MDA_HEADER_SIZE {
        let offset = le::u64_at(b, pos).map_err(short)?;
        if offset == 0 {
            break;
        }
        raw_locns.push(RawLocn {
            offset,
            size: le::u64_at(b, pos + 8).map_err(short)?,
            checksum: le::u32_at(b, pos + 16).map_err(short)?,
            flags: le::u32_at(b, pos + 20).map_err(short)?,
        });
        pos += 24;
    }
    Ok(MdaHeader {
        checksum,
        version,
        start,
        size,
        raw_locns,
    })
}

/// The metadata text `r` locates in the area `h` of `dev`, checksum verified, with
/// everything from the first NUL on cut off. Also returns the device offset it starts at.
pub fn read_text(
    device: &str,
    dev: &dyn ReadAt,
    h: &MdaHeader,
    r: &RawLocn,
) -> Result<(Vec<u8>, u64)> {
    let hdr = MDA_HEADER_SIZE as u64;
    let corrupt = |msg: String| Error::Corrupt {
        device: device.to_string(),
        structure: "metadata area header",
        offset: h.start,
        msg,
    };
    if r.offset < hdr || r.offset >= h.size {
        return Err(corrupt(format!(
            "metadata text offset {} outside the {}-byte ring buffer",
            r.offset, h.size
        )));
    }
    if r.size > h.size - hdr {
        return Err(corrupt(format!(
            "metadata text of {} bytes larger than the {}-byte ring buffer",
            r.size,
            h.size - hdr
        )));
    }
    if r.size > MAX_METADATA_TEXT {
        return Err(corrupt(format!(
            "metadata text of {} bytes over the {MAX_METADATA_TEXT}-byte limit",
            r.size
        )));
    }
    let text_at = h
        .start
        .checked_add(r.offset)
        .ok_or_else(|| corrupt("metadata text offset overflows".into()))?;
    let area_end = h
        .start
        .checked_add(h.size)
        .ok_or_else(|| corrupt("area end overflows".into()))?;
    if area_end > dev.size() {
        return Err(corrupt(format!(
            "area ends at {area_end}, past the end of the {}-byte device",
            dev.size()
        )));
    }
    let first = r.size.min(h.size - r.offset);
    let second = r.size - first;
    let mut text = vec![0u8; r.size as usize];
    let (a, b) = text.split_at_mut(first as usize);
    let io = |offset: u64, len: usize| {
        move |source| Error::Io {
            device: device.to_string(),
            offset,
            len,
            source,
        }
    };
    dev.read_at(text_at, a).map_err(io(text_at, a.len()))?;
    if second > 0 {
        let wrap_at = h.start + hdr;
        dev.read_at(wrap_at, b).map_err(io(wrap_at, b.len()))?;
    }
    let computed = calc_crc(INITIAL_CRC, &text);
    if computed != r.checksum {
        return Err(Error::Checksum {
            device: device.to_string(),
            structure: "metadata text",
            offset: text_at,
            stored: r.checksum,
            computed,
        });
    }
    if let Some(nul) = text.iter().position(|&c| c == 0) {
        text.truncate(nul);
    }
    Ok((text, text_at))
}

#[cfg(test)]
pub(crate) fn build(start: u64, size: u64, locns: &[RawLocn]) -> Vec<u8> {
    let mut b = vec![0u8; MDA_HEADER_SIZE];
    b[4..20].copy_from_slice(FMTT_MAGIC);
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..32].copy_from_slice(&start.to_le_bytes());
    b[32..40].copy_from_slice(&size.to_le_bytes());
    for (i, r) in locns.iter().enumerate() {
        let p = 40 + 24 * i;
        b[p..p + 8].copy_from_slice(&r.offset.to_le_bytes());
        b[p + 8..p + 16].copy_from_slice(&r.size.to_le_bytes());
        b[p + 16..p + 20].copy_from_slice(&r.checksum.to_le_bytes());
        b[p + 20..p + 24].copy_from_slice(&r.flags.to_le_bytes());
    }
    let crc = calc_crc(INITIAL_CRC, &b[4..]);
    b[..4].copy_from_slice(&crc.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(text: &[u8], offset: u64) -> (Vec<u8>, MdaHeader, RawLocn) {
        let size = 4096u64;
        let mut disk = vec![0u8; 8192];
        let start = 4096u64;
        // Lay the text into the ring, wrapping after the area end.
        let mut pos = offset;
        for &c in text {
            if pos == size {
                pos = MDA_HEADER_SIZE as u64;
            }
            disk[(start + pos) as usize] = c;
            pos += 1;
        }
        let r = RawLocn {
            offset,
            size: text.len() as u64,
            checksum: calc_crc(INITIAL_CRC, text),
            flags: 0,
        };
        let hb = build(start, size, &[r]);
        disk[start as usize..start as usize + 512].copy_from_slice(&hb);
        let h = parse("d", start, size, &disk[start as usize..]).unwrap();
        (disk, h, r)
    }

    #[test]
    fn text_wraps_around_the_ring() {
        let text = b"vg { seqno = 1 }\n\0";
        for offset in [512, 4096 - 5, 4095] {
            let (disk, h, r) = area(text, offset);
            let (t, _) = read_text("d", &disk, &h, &r).unwrap();
            assert_eq!(t, &text[..text.len() - 1], "offset {offset}");
        }
    }

    #[test]
    fn damage_is_an_error() {
        let text = b"vg { seqno = 1 }\n\0";
        let (disk, h, r) = area(text, 600);
        let bad = RawLocn {
            checksum: r.checksum ^ 1,
            ..r
        };
        assert!(matches!(
            read_text("d", &disk, &h, &bad),
            Err(Error::Checksum { .. })
        ));
        let outside = RawLocn { offset: 5000, ..r };
        assert!(matches!(
            read_text("d", &disk, &h, &outside),
            Err(Error::Corrupt { .. })
        ));
        let inside_header = RawLocn { offset: 100, ..r };
        assert!(read_text("d", &disk, &h, &inside_header).is_err());
        let overlong = RawLocn { size: 4000, ..r };
        assert!(read_text("d", &disk, &h, &overlong).is_err());
        let huge = RawLocn {
            size: u64::MAX,
            ..r
        };
        assert!(read_text("d", &disk, &h, &huge).is_err());
        let mut hb = disk[4096..4608].to_vec();
        hb[30] ^= 1;
        assert!(matches!(
            parse("d", 4096, 4096, &hb),
            Err(Error::Checksum { .. })
        ));
        assert!(parse("d", 4096, 8192, &disk[4096..4608]).is_err());
        assert!(parse("d", 4096, 4096, &disk[4096..4200]).is_err());
    }
}
