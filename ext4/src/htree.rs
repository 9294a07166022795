//! Hashed directories (`struct dx_root`, `struct dx_node`). Their interior blocks are
//! built to look like empty directory blocks to a linear reader (a fake dirent with
//! inode 0 spanning the block; the root's `..` entry spans the rest of block 0), so this
//! reader lists and looks up by scanning every leaf linearly and only parses the
//! root to recognise, and report, damage.

use vmsnapfs_io::le::{u16_at, u8_at};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DxRoot {
    pub hash_version: u8,
    pub info_length: u8,
    pub indirect_levels: u8,
    pub limit: u16,
    pub count: u16,
}

/// Parses the dx_root_info and the first dx_countlimit of block 0 of an htree
/// directory. `largedir` allows three levels instead of two.
pub fn parse_root(b: &[u8], largedir: bool) -> Result<DxRoot, String> {
    let f = |e: vmsnapfs_io::ShortBuffer| e.to_string();
    // "." (12 bytes) and ".." (rec_len to the end) then dx_root_info at 0x18.
    let info_length = u8_at(b, 0x1D).map_err(f)?;
    let levels = u8_at(b, 0x1E).map_err(f)?;
    let max_levels = if largedir { 3 } else { 2 };
    if info_length != 8 {
        return Err(format!("dx_root info length {info_length}"));
    }
    if levels >= max_levels {
        return Err(format!("htree depth {levels}"));
    }
    let limit = u16_at(b, 0x20).map_err(f)?;
    let count = u16_at(b, 0x22).map_err(f)?;
    if count > limit || (limit as usize) * 8 > b.len() {
        return Err(format!("dx count {count}, limit {limit}"));
    }
    Ok(DxRoot {
        hash_version: u8_at(b, 0x1C).map_err(f)?,
        info_length,
        indirect_levels: levels,
        limit,
        count,
    })
}
