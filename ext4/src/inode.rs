//! An inode (`struct ext4_inode`): the 128-byte ext2 core plus, when `s_inode_size` is
//! larger, `i_extra_isize` bytes of extra fields (nanoseconds, epoch bits, crtime),
//! followed by in-inode extended attributes.

use crate::types::{FileKind, Time};
use vmsnapfs_io::le::{bytes_at, u16_at, u32_at};
use vmsnapfs_io::ShortBuffer;

pub mod flags {
    pub const INDEX: u32 = 0x1000;
    pub const ENCRYPT: u32 = 0x800;
    pub const HUGE_FILE: u32 = 0x40000;
    pub const EXTENTS: u32 = 0x80000;
    pub const EA_INODE: u32 = 0x200000;
    pub const INLINE_DATA: u32 = 0x1000_0000;
}

pub const GOOD_OLD_SIZE: usize = 128;

#[derive(Debug, Clone)]
pub struct Inode {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Time,
    pub ctime: Time,
    pub mtime: Time,
    pub crtime: Option<Time>,
    pub dtime: u32,
    pub links_count: u16,
    /// i_blocks_lo | l_i_blocks_high << 32, in the unit the flags say (see `allocated`).
    pub blocks: u64,
    pub flags: u32,
    pub block: [u8; 60],
    pub generation: u32,
    pub file_acl: u64,
    pub extra_isize: u16,
    /// The whole on-disk inode (`s_inode_size` bytes), for in-inode xattrs.
    pub raw: Vec<u8>,
}

/// Seconds of a 32-bit on-disk time, with the epoch bits of its `_extra` field (the
/// two low bits extend the signed seconds past 2038) and its nanoseconds (the 30 high).
pub fn decode_time(secs: u32, extra: Option<u32>) -> Time {
    let base = secs as i32 as i64;
    match extra {
        None => Time {
            secs: base,
            nanos: 0,
        },
        Some(x) => Time {
            secs: base + (((x & 3) as i64) << 32),
            nanos: (x >> 2).min(999_999_999),
        },
    }
}

impl Inode {
    /// `b` is the inode's `inode_size` bytes.
    pub fn parse(b: &[u8]) -> Result<Inode, ShortBuffer> {
        let extra_isize = if b.len() > GOOD_OLD_SIZE {
            u16_at(b, 0x80)?
        } else {
            0
        };
        // Extra fields exist only as far as i_extra_isize says and the inode holds.
        let extra_end = (GOOD_OLD_SIZE + extra_isize as usize).min(b.len());
        let extra = |o: usize| -> Result<Option<u32>, ShortBuffer> {
            if o + 4 <= extra_end {
                Ok(Some(u32_at(b, o)?))
            } else {
                Ok(None)
            }
        };
        let mut block = [0u8; 60];
        block.copy_from_slice(bytes_at(b, 0x28, 60)?);
        let crtime = match extra(0x90)? {
            Some(s) => Some(decode_time(s, extra(0x94)?)),
            None => None,
        };
        Ok(Inode {
            mode: u16_at(b, 0x0)?,
            uid: u16_at(b, 0x2)? as u32 | (u16_at(b, 0x78)? as u32) << 16,
            gid: u16_at(b, 0x18)? as u32 | (u16_at(b, 0x7A)? as u32) << 16,
            size: u32_at(b, 0x4)? as u64 | (u32_at(b, 0x6C)? as u64) << 32,
            atime: decode_time(u32_at(b, 0x8)?, extra(0x8C)?),
            ctime: decode_time(u32_at(b, 0xC)?, extra(0x84)?),
            mtime: decode_time(u32_at(b, 0x10)?, extra(0x88)?),
            crtime,
            dtime: u32_at(b, 0x14)?,
            links_count: u16_at(b, 0x1A)?,
            blocks: u32_at(b, 0x1C)? as u64 | (u16_at(b, 0x74)? as u64) << 32,
            flags: u32_at(b, 0x20)?,
            block,
            generation: u32_at(b, 0x64)?,
            file_acl: u32_at(b, 0x68)? as u64 | (u16_at(b, 0x76)? as u64) << 32,
            extra_isize,
            raw: b.to_vec(),
        })
    }

    pub fn kind(&self) -> FileKind {
        FileKind::from_mode(self.mode)
    }
    pub fn has_flag(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// Allocated bytes: i_blocks counts 512-byte sectors, or file system blocks when
    /// the huge_file feature and the inode's HUGE_FILE flag are both set; without
    /// huge_file only the low 32 bits count.
    pub fn allocated(&self, huge_file: bool, block_size: u32) -> u64 {
        if !huge_file {
            (self.blocks & 0xFFFF_FFFF) * 512
        } else if self.has_flag(flags::HUGE_FILE) {
            self.blocks.saturating_mul(block_size as u64)
        } else {
            self.blocks * 512
        }
    }

    /// The i_block word `i` (of 15).
    pub fn block_word(&self, i: usize) -> u32 {
        u32::from_le_bytes(self.block[i * 4..i * 4 + 4].try_into().unwrap_or_default())
    }

    /// The device number of a character or block device, as Linux's `makedev` builds
    /// it: the old 16-bit encoding in i_block[0], or the new one in i_block[1].
    pub fn rdev(&self) -> u64 {
        let (major, minor) = match self.block_word(0) {
            0 => {
                let d = self.block_word(1);
                ((d & 0xfff00) >> 8, (d & 0xff) | ((d >> 12) & 0xfff00))
            }
            d => ((d >> 8) & 0xff, d & 0xff),
        };
        let (major, minor) = (major as u64, minor as u64);
        ((major & 0xffff_f000) << 32)
            | ((major & 0xfff) << 8)
            | ((minor & 0xffff_ff00) << 12)
            | (minor & 0xff)
    }

    /// Where the in-inode xattrs begin (after the extra fields), if there is room.
    pub fn ibody_xattr_range(&self) -> Option<std::ops::Range<usize>> {
        let start = GOOD_OLD_SIZE.checked_add(self.extra_isize as usize)?;
        (self.raw.len() > GOOD_OLD_SIZE && start + 4 <= self.raw.len())
            .then_some(start..self.raw.len())
    }
}
