//! $ATTRIBUTE_LIST: where the attributes of a file that outgrew its base record live.

use crate::fields::{ref_record, short};
use vmsnapfs_io::le::{u16_at, u32_at, u64_at, u8_at};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub type_code: u32,
    pub start_vcn: u64,
    pub record: u64,
    pub instance: u16,
}

pub fn parse(b: &[u8]) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < b.len() {
        let type_code = u32_at(b, pos).map_err(short("entry truncated"))?;
        if type_code == crate::attribute_header::END {
            break;
        }
        let len = u16_at(b, pos + 4).map_err(short("entry truncated"))? as usize;
        if len < 26 || pos + len > b.len() {
            return Err(format!("entry at {pos} has bad length {len}"));
        }
        let name_len = u8_at(b, pos + 6).map_err(short("entry truncated"))? as usize;
        let name_off = u8_at(b, pos + 7).map_err(short("entry truncated"))? as usize;
        if name_len > 0 && name_off + name_len * 2 > len {
            return Err(format!("entry at {pos}: name out of bounds"));
        }
        out.push(Entry {
            type_code,
            start_vcn: u64_at(b, pos + 8).map_err(short("entry truncated"))?,
            record: ref_record(u64_at(b, pos + 16).map_err(short("entry truncated"))?),
            instance: u16_at(b, pos + 24).map_err(short("entry truncated"))?,
        });
        pos += len;
    }
    Ok(out)
}
