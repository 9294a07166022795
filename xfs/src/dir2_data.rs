//! Directory data blocks: the single-block format (`xfs_dir2_block`, "XD2B"/"XDB3", whose
//! tail holds the hash leaf) and the data blocks of leaf and node directories
//! ("XD2D"/"XDD3"). Both hold `xfs_dir2_data_entry`s and `xfs_dir2_data_unused` gaps.
//! The leaf (hash index) and free-space blocks of leaf/node directories live past
//! [`LEAF_OFFSET`] and are not needed to list or look up: every entry is in a data block.
use crate::be::{bytes_at, u16_at, u32_at, u64_at, u8_at};
use crate::dir2_sf::RawEntry;
use crate::error::Damage;

pub const BLOCK_MAGIC_V4: u32 = 0x5844_3242; // XD2B
pub const DATA_MAGIC_V4: u32 = 0x5844_3244; // XD2D
pub const BLOCK_MAGIC_V5: u32 = 0x5844_4233; // XDB3
pub const DATA_MAGIC_V5: u32 = 0x5844_4433; // XDD3
/// Byte offset in a directory's data fork where the leaf blocks start (32 GiB).
pub const LEAF_OFFSET: u64 = 32 << 30;

/// The entries of one directory data block of `blk.len()` (the directory block size)
/// bytes, "." and ".." included. `owner` is checked on v5.
pub fn parse(blk: &[u8], v5: bool, ftype: bool, owner: u64) -> Result<Vec<RawEntry>, Damage> {
    let magic = u32_at(blk, 0)?;
    let (is_block, hdr) = match (magic, v5) {
        (BLOCK_MAGIC_V4, false) => (true, 16),
        (DATA_MAGIC_V4, false) => (false, 16),
        (BLOCK_MAGIC_V5, true) => (true, 64),
        (DATA_MAGIC_V5, true) => (false, 64),
        _ => return Err(Damage::new(format!("directory block magic {magic:#010x}"))),
    };
    if v5 {
        if !crate::be::crc_ok(blk, 4) {
            return Err(Damage::new("directory block CRC mismatch"));
        }
        let o = u64_at(blk, 40)?;
        if o != owner {
            return Err(Damage::new(format!("directory block owned by inode {o}")));
        }
    }
    let mut end = blk.len();
    if is_block {
        // xfs_dir2_block_tail: count, stale; the leaf entries (8 bytes each) before it.
        let count = u32_at(blk, blk.len().saturating_sub(8))? as usize;
        let leaf = count
            .checked_mul(8)
            .and_then(|l| l.checked_add(8))
            .filter(|&l| l + hdr <= blk.len())
            .ok_or_else(|| {
                Damage::new(format!("block directory tail counts {count} leaf entries"))
            })?;
        end = blk.len() - leaf;
    }
    let mut out = Vec::new();
    let mut pos = hdr;
    while pos < end {
        if u16_at(blk, pos)? == 0xffff {
            let len = u16_at(blk, pos + 2)? as usize;
            if len < 8 || len & 7 != 0 || pos + len > end {
                return Err(Damage::new(format!("free space of {len} bytes at {pos}")));
            }
            if u16_at(blk, pos + len - 2)? as usize != pos {
                return Err(Damage::new(format!("free space at {pos} has a bad tag")));
            }
            pos += len;
            continue;
        }
        let ino = u64_at(blk, pos)?;
        let namelen = u8_at(blk, pos + 8)? as usize;
        if namelen == 0 {
            return Err(Damage::new(format!("empty name at {pos}")));
        }
        let name = bytes_at(blk, pos + 9, namelen)?.to_vec();
        let ft = if ftype {
            u8_at(blk, pos + 9 + namelen)?
        } else {
            0
        };
        let len = (9 + namelen + ftype as usize + 2).div_ceil(8) * 8;
        if pos + len > end {
            return Err(Damage::new(format!(
                "entry at {pos} runs past the data area"
            )));
        }
        let tag = u16_at(blk, pos + len - 2)? as usize;
        if tag != pos {
            return Err(Damage::new(format!("entry at {pos} tagged {tag}")));
        }
        out.push(RawEntry {
            name,
            ino,
            ftype: ft,
        });
        pos += len;
    }
    Ok(out)
}
