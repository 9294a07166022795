//! Index entries and the index node header shared by $INDEX_ROOT and INDX blocks.

use crate::fields::short;
use vmsnapfs_io::le::{u16_at, u32_at, u64_at, u8_at};

pub const ENTRY_HAS_CHILD: u16 = 0x0001;
pub const ENTRY_LAST: u16 = 0x0002;

#[derive(Debug, Clone)]
pub struct IndexEntry {
    /// For file name indexes the file reference; for view indexes ($SII, ...) the
    /// data offset (u16), data length (u16) and reserved bytes.
    pub header: u64,
    pub flags: u16,
    pub key: Vec<u8>,
    /// View-index payload (empty for file name indexes).
    pub data: Vec<u8>,
    pub child_vcn: Option<u64>,
}

impl IndexEntry {
    pub fn is_last(&self) -> bool {
        self.flags & ENTRY_LAST != 0
    }
}

/// Parses the node header at `node_off` in `b` and every entry it holds. `view` says
/// whether entries carry view-index data (offset/length in the first 4 bytes).
pub fn parse_node(b: &[u8], node_off: usize, view: bool) -> Result<Vec<IndexEntry>, String> {
    let entries_off = u32_at(b, node_off).map_err(short("node header truncated"))? as usize;
    let used = u32_at(b, node_off + 4).map_err(short("node header truncated"))? as usize;
    // The node's "has children" flag is not trusted: each entry's own flag decides.
    u8_at(b, node_off + 12).map_err(short("node header truncated"))?;
    let start = node_off
        .checked_add(entries_off)
        .ok_or("entries offset overflow")?;
    let end = node_off.checked_add(used).ok_or("index length overflow")?;
    if end > b.len() || start >= end {
        return Err(format!(
            "node entries [{start}, {end}) outside {} bytes",
            b.len()
        ));
    }
    let mut out = Vec::new();
    let mut pos = start;
    loop {
        if pos + 16 > end {
            return Err("index entries end without a last entry".into());
        }
        let header = u64_at(b, pos).map_err(short("entry truncated"))?;
        let len = u16_at(b, pos + 8).map_err(short("entry truncated"))? as usize;
        let key_len = u16_at(b, pos + 10).map_err(short("entry truncated"))? as usize;
        let flags = u16_at(b, pos + 12).map_err(short("entry truncated"))?;
        if len < 16 || !len.is_multiple_of(8) || pos + len > end {
            return Err(format!("index entry at {pos} has bad length {len}"));
        }
        let e = &b[pos..pos + len];
        let child_vcn = if flags & ENTRY_HAS_CHILD != 0 {
            if len < 24 {
                return Err(format!(
                    "index entry at {pos} too short for a child pointer"
                ));
            }
            Some(u64_at(e, len - 8).map_err(short("entry truncated"))?)
        } else {
            None
        };
        let last = flags & ENTRY_LAST != 0;
        let key = if last {
            Vec::new()
        } else {
            e.get(16..16 + key_len)
                .ok_or_else(|| format!("index key at {pos} out of bounds"))?
                .to_vec()
        };
        let data = if view && !last {
            let d_off = (header & 0xFFFF) as usize;
            let d_len = ((header >> 16) & 0xFFFF) as usize;
            e.get(d_off..d_off + d_len)
                .ok_or_else(|| format!("index data at {pos} out of bounds"))?
                .to_vec()
        } else {
            Vec::new()
        };
        out.push(IndexEntry {
            header,
            flags,
            key,
            data,
            child_vcn,
        });
        if last {
            break;
        }
        pos += len;
    }
    Ok(out)
}
