//! The PV header (lib/format_text/layout.h `struct pv_header`), inside the label sector
//! at the label's contents offset.
//!
//! | offset | size | field                                                          |
//! |--------|------|----------------------------------------------------------------|
//! | 0      | 32   | `pv_uuid`, 32 characters without dashes                        |
//! | 32     | 8    | `device_size_xl` in bytes                                      |
//! | 40     | 16·n | data areas: `disk_locn {offset, size}` (bytes), ended by 0, 0  |
//! |        | 16·m | metadata areas, likewise                                       |
//! |        | 8    | `pv_header_extension {version, flags}` (version 2: then bootloader areas) |
//!
//! The first data area's offset is `pe_start`, where physical extent 0 begins.

use crate::error::{Error, Result};
use vmsnapfs_io::le;

/// One `disk_locn`: `size` bytes at byte `offset` of the device. A data area of size 0
/// runs to the end of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLocn {
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvHeader {
    /// The 32 uuid characters as stored (no dashes).
    pub uuid: String,
    pub device_size: u64,
    pub data_areas: Vec<DiskLocn>,
    pub metadata_areas: Vec<DiskLocn>,
    /// `pv_header_extension.version` when present (0 when the header ends before it).
    pub extension_version: u32,
    pub extension_flags: u32,
}

/// The PV header at `offset` of `sector_buf` (the label sector, at byte `sector_at` of
/// `device`). Lists that do not end inside the sector are damage.
pub fn parse(device: &str, sector_at: u64, sector_buf: &[u8], offset: usize) -> Result<PvHeader> {
    let at = sector_at.saturating_add(offset as u64);
    let corrupt = |msg: String| Error::Corrupt {
        device: device.to_string(),
        structure: "PV header",
        offset: at,
        msg,
    };
    let b = sector_buf.get(offset..).unwrap_or(&[]);
    let short = |e: le::ShortBuffer| corrupt(e.to_string());
    let raw = le::bytes_at(b, 0, 32).map_err(short)?;
    if !raw.iter().all(|c| c.is_ascii_graphic()) {
        return Err(corrupt("PV uuid is not 32 printable characters".into()));
    }
    let uuid = String::from_utf8_lossy(raw).into_owned();
    let device_size = le::u64_at(b, 32).map_err(short)?;
    let mut pos = 40;
    let mut list = |what: &str| -> Result<Vec<DiskLocn>> {
        let mut v = Vec::new();
        loop {
            let offset = le::u64_at(b, pos).map_err(|_| {
                corrupt(format!(
                    "list of {what} areas does not end inside the label sector"
                ))
            })?;
            let size = le::u64_at(b, pos + 8).map_err(|_| {
                corrupt(format!(
                    "list of {what} areas does not end inside the label sector"
                ))
            })?;
            pos += 16;
            if offset == 0 {
                return Ok(v);
            }
            if size != 0 && offset.checked_add(size).is_none() {
                return Err(corrupt(format!("{what} area {offset}+{size} overflows")));
            }
            v.push(DiskLocn { offset, size });
        }
    };
    let data_areas = list("data")?;
    let metadata_areas = list("metadata")?;
    let extension_version = le::u32_at(b, pos).unwrap_or(0);
    let extension_flags = le::u32_at(b, pos + 4).unwrap_or(0);
    Ok(PvHeader {
        uuid,
        device_size,
        data_areas,
        metadata_areas,
        extension_version,
        extension_flags,
    })
}

#[cfg(test)]
pub(crate) fn build(uuid: &str, device_size: u64, data: &[DiskLocn], mdas: &[DiskLocn]) -> Vec<u8> {
    let mut b = uuid.as_bytes().to_vec();
    b.extend_from_slice(&device_size.to_le_bytes());
    for list in [data, mdas] {
        for d in list {
            b.extend_from_slice(&d.offset.to_le_bytes());
            b.extend_from_slice(&d.size.to_le_bytes());
        }
        b.extend_from_slice(&[0u8; 16]);
    }
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 4 + 16]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_end_at_zero_and_inside_the_sector() {
        let u = "d8IMwQKa69Edp4M5nTJRJmz2vcR51vbZ";
        let data = [DiskLocn {
            offset: 1 << 20,
            size: 0,
        }];
        let mdas = [DiskLocn {
            offset: 4096,
            size: 0xff000,
        }];
        let mut sector = vec![0u8; 512];
        let h = build(u, 64 << 20, &data, &mdas);
        sector[32..32 + h.len()].copy_from_slice(&h);
        let p = parse("d", 512, &sector, 32).unwrap();
        assert_eq!(p.uuid, u);
        assert_eq!(p.data_areas, data);
        assert_eq!(p.metadata_areas, mdas);
        assert_eq!(p.extension_version, 2);
        // A list that never ends: every slot non-zero.
        let mut full = vec![1u8; 512];
        full[32..64].copy_from_slice(u.as_bytes());
        assert!(parse("d", 512, &full, 32).is_err());
        // A uuid of garbage.
        assert!(parse("d", 512, &[0u8; 512], 32).is_err());
    }
}
