//! The journal's record headers (`xlog_rec_header`, magic 0xFEEDBABE) and the op header
//! of an unmount record: enough to tell whether the log is clean.
//!
//! The log is a ring of 512-byte basic blocks; each record starts with a header sector
//! carrying the cycle (pass) number. Walking records from block 0, the head is where the
//! cycle number drops (or where records stop); the log is clean when the record just
//! before the head is a lone unmount record (`XLOG_UNMOUNT_TRANS`): nothing in the log
//! needs replaying (the kernel then moves the tail past it, whatever `h_tail_lsn` says).
use crate::be::{u32_at, u64_at, u8_at};
use crate::error::Damage;

pub const MAGIC: u32 = 0xFEED_BABE;
pub const UNMOUNT_TRANS: u8 = 0x20;
const HEADER_CYCLE_SIZE: u32 = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecHeader {
    pub cycle: u32,
    pub version: u32,
    pub len: u32,
    pub lsn: u64,
    pub tail_lsn: u64,
    pub num_logops: u32,
    /// h_size (v2 logs): the in-core log buffer size.
    pub size: u32,
}

impl RecHeader {
    /// 512-byte blocks taken by the header (v2 logs with large buffers use several).
    pub fn header_blocks(&self) -> u64 {
        if self.version >= 2 && self.size > HEADER_CYCLE_SIZE {
            self.size.div_ceil(HEADER_CYCLE_SIZE) as u64
        } else {
            1
        }
    }
    /// 512-byte blocks of the whole record.
    pub fn total_blocks(&self) -> u64 {
        self.header_blocks() + (self.len as u64).div_ceil(512)
    }
}

/// A record header, or None when `b` (one 512-byte block) is not one.
pub fn parse_header(b: &[u8]) -> Result<Option<RecHeader>, Damage> {
    if u32_at(b, 0)? != MAGIC {
        return Ok(None);
    }
    Ok(Some(RecHeader {
        cycle: u32_at(b, 4)?,
        version: u32_at(b, 8)?,
        len: u32_at(b, 12)?,
        lsn: u64_at(b, 16)?,
        tail_lsn: u64_at(b, 24)?,
        num_logops: u32_at(b, 40)?,
        size: u32_at(b, 320)?,
    }))
}

/// Whether the first op of a record (its first data block `b`) is an unmount record.
pub fn is_unmount_op(b: &[u8]) -> Result<bool, Damage> {
    Ok(u8_at(b, 9)? & UNMOUNT_TRANS != 0)
}
