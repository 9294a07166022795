//! Symlink targets: inline in the data fork ("local"), or in remote blocks, which on v5
//! each start with an `xfs_dsymlink_hdr` ("XSLM").
use crate::be::{bytes_at, u32_at, u64_at};
use crate::error::Damage;

pub const MAGIC: u32 = 0x5853_4c4d; // XSLM
pub const HDR_LEN: usize = 56;
/// XFS_SYMLINK_MAXLEN.
pub const MAXLEN: u64 = 1024;

/// The payload of one v5 remote symlink block.
pub fn remote_payload(b: &[u8], owner: u64) -> Result<&[u8], Damage> {
    if u32_at(b, 0)? != MAGIC {
        return Err(Damage::new("remote symlink block without XSLM magic"));
    }
    if !crate::be::crc_ok(b, 12) {
        return Err(Damage::new("remote symlink block CRC mismatch"));
    }
    if u64_at(b, 32)? != owner {
        return Err(Damage::new("remote symlink block of another inode"));
    }
    let bytes = u32_at(b, 8)? as usize;
    Ok(bytes_at(b, HDR_LEN, bytes)?)
}
