//! A block group descriptor (`struct ext4_group_desc`): 32 bytes, or `s_desc_size`
//! (64) with the 64bit feature, whose upper halves then hold the high 32 bits.

use vmsnapfs_io::le::{u16_at, u32_at};
use vmsnapfs_io::ShortBuffer;

pub const INODE_UNINIT: u16 = 0x1;
pub const BLOCK_UNINIT: u16 = 0x2;
pub const INODE_ZEROED: u16 = 0x4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupDescriptor {
    pub block_bitmap: u64,
    pub inode_bitmap: u64,
    pub inode_table: u64,
    pub free_blocks_count: u32,
    pub free_inodes_count: u32,
    pub flags: u16,
    pub itable_unused: u32,
}

impl GroupDescriptor {
    /// `b` is the descriptor's bytes (`desc_size` of them); the high halves are read
    /// only when `desc_size` is at least 64 (the 64bit feature).
    pub fn parse(b: &[u8], desc_size: usize) -> Result<GroupDescriptor, ShortBuffer> {
        let wide = desc_size >= 64;
        let lo32 = |o| u32_at(b, o);
        let hi32 =
            |o| -> Result<u64, ShortBuffer> { Ok(if wide { u32_at(b, o)? as u64 } else { 0 }) };
        let hi16 =
            |o| -> Result<u32, ShortBuffer> { Ok(if wide { u16_at(b, o)? as u32 } else { 0 }) };
        Ok(GroupDescriptor {
            block_bitmap: lo32(0x0)? as u64 | hi32(0x20)? << 32,
            inode_bitmap: lo32(0x4)? as u64 | hi32(0x24)? << 32,
            inode_table: lo32(0x8)? as u64 | hi32(0x28)? << 32,
            free_blocks_count: u16_at(b, 0xC)? as u32 | hi16(0x2C)? << 16,
            free_inodes_count: u16_at(b, 0xE)? as u32 | hi16(0x2E)? << 16,
            flags: u16_at(b, 0x12)?,
            itable_unused: u16_at(b, 0x1C)? as u32 | hi16(0x32)? << 16,
        })
    }
}
