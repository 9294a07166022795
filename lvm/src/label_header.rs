//! The label (lib/label/label.h `struct label_header`): one 512-byte sector among the
//! first four of a device, starting with `LABELONE`.
//!
//! | offset | size | field                                                     |
//! |--------|------|-----------------------------------------------------------|
//! | 0      | 8    | `id` = `LABELONE`                                         |
//! | 8      | 8    | `sector_xl`: the sector this label is in                  |
//! | 16     | 4    | `crc_xl`: [`crate::calc_crc`] (LVM2's CRC) of bytes 20..512                 |
//! | 20     | 4    | `offset_xl`: where the contents (the PV header) start     |
//! | 24     | 8    | `type`: `LVM2 001`                                        |

use crate::crc::{calc_crc, INITIAL_CRC};
use crate::error::{Error, Result};
use vmsnapfs_io::le;

pub const SECTOR_SIZE: usize = 512;
/// LVM2 looks for the label in sectors 0..4.
pub const LABEL_SCAN_SECTORS: u64 = 4;
pub const LABEL_ID: &[u8; 8] = b"LABELONE";
pub const LVM2_LABEL_TYPE: &[u8; 8] = b"LVM2 001";
/// Size of the label header; the contents start at or after it.
pub const LABEL_HEADER_SIZE: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelHeader {
    /// The sector the label was found in.
    pub sector: u64,
    pub crc: u32,
    /// Offset of the PV header inside the label sector.
    pub contents_offset: u32,
}

/// The label in `sector_buf`, the 512 bytes of sector `sector` of `device`: `None` when
/// the sector does not start with `LABELONE`, an error when it does but is damaged.
pub fn parse(device: &str, sector: u64, sector_buf: &[u8]) -> Result<Option<LabelHeader>> {
    let at = sector.saturating_mul(SECTOR_SIZE as u64);
    let corrupt = |msg: String| Error::Corrupt {
        device: device.to_string(),
        structure: "LVM2 label",
        offset: at,
        msg,
    };
    if sector_buf.len() < SECTOR_SIZE {
        return if sector_buf.starts_with(LABEL_ID) {
            Err(corrupt(format!(
                "label sector truncated to {} bytes",
                sector_buf.len()
            )))
        } else {
            Ok(None)
        };
    }
    let b = &sector_buf[..SECTOR_SIZE];
    if &b[..8] != LABEL_ID {
        return Ok(None);
    }
    let short = |e: le::ShortBuffer| corrupt(e.to_string());
    let sector_xl = le::u64_at(b, 8).map_err(short)?;
    let crc = le::u32_at(b, 16).map_err(short)?;
    let contents_offset = le::u32_at(b, 20).map_err(short)?;
    let kind = le::bytes_at(b, 24, 8).map_err(short)?;
    if sector_xl != sector {
        return Err(corrupt(format!(
            "label says it is in sector {sector_xl}, found in sector {sector}"
        )));
    }
    let computed = calc_crc(INITIAL_CRC, &b[20..]);
    if computed != crc {
        return Err(Error::Checksum {
            device: device.to_string(),
            structure: "LVM2 label",
            offset: at,
            stored: crc,
            computed,
        });
    }
    if kind != LVM2_LABEL_TYPE {
        return Err(corrupt(format!(
            "label type {:?} is not {:?}",
            String::from_utf8_lossy(kind),
            "LVM2 001"
        )));
    }
    if (contents_offset as usize) < LABEL_HEADER_SIZE || contents_offset as usize >= SECTOR_SIZE {
        return Err(corrupt(format!(
            "contents offset {contents_offset} outside the label sector"
        )));
    }
    Ok(Some(LabelHeader {
        sector,
        crc,
        contents_offset,
    }))
}

#[cfg(test)]
pub(crate) fn build(sector: u64, contents: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; SECTOR_SIZE];
    b[..8].copy_from_slice(LABEL_ID);
    b[8..16].copy_from_slice(&sector.to_le_bytes());
    b[20..24].copy_from_slice(&32u32.to_le_bytes());
    b[24..32].copy_from_slice(LVM2_LABEL_TYPE);
    b[32..32 + contents.len()].copy_from_slice(contents);
    let crc = calc_crc(INITIAL_CRC, &b[20..]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_checks_and_rejects() {
        let b = build(1, b"x");
        let l = parse("d", 1, &b).unwrap().unwrap();
        assert_eq!(l.contents_offset, 32);
        assert!(parse("d", 0, &[0u8; 512]).unwrap().is_none());
        // Found in the wrong sector: a copy of another device's label, not ours.
        assert!(matches!(parse("d", 2, &b), Err(Error::Corrupt { .. })));
        let mut bad = b.clone();
        bad[100] ^= 1;
        let e = parse("d", 1, &bad).unwrap_err();
        assert!(matches!(e, Error::Checksum { offset: 512, .. }), "{e}");
        assert!(parse("d", 1, &b[..100]).is_err());
    }
}
