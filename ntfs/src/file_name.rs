//! $FILE_NAME: one hard link (parent + name), also the key of every directory index entry.

use crate::fields::short;
use vmsnapfs_io::le::{u16s_at, u32_at, u64_at, u8_at};

pub const NAMESPACE_POSIX: u8 = 0;
pub const NAMESPACE_WIN32: u8 = 1;
pub const NAMESPACE_DOS: u8 = 2;
pub const NAMESPACE_WIN32_AND_DOS: u8 = 3;

/// In a $FILE_NAME's copy of the file attributes, this bit marks a directory.
pub const ATTR_DIRECTORY_INDEX: u32 = 0x1000_0000;

#[derive(Debug, Clone)]
pub struct FileName {
    pub parent: u64,
    pub attributes: u32,
    pub reparse_tag: u32,
    pub namespace: u8,
    pub name: Vec<u16>,
}

pub fn parse(b: &[u8]) -> Result<FileName, String> {
    let len = u8_at(b, 64).map_err(short("$FILE_NAME truncated"))? as usize;
    Ok(FileName {
        parent: u64_at(b, 0).map_err(short("$FILE_NAME truncated"))?,
        attributes: u32_at(b, 56).map_err(short("$FILE_NAME truncated"))?,
        reparse_tag: u32_at(b, 60).map_err(short("$FILE_NAME truncated"))?,
        namespace: u8_at(b, 65).map_err(short("$FILE_NAME truncated"))?,
        name: u16s_at(b, 66, len).map_err(short("$FILE_NAME name out of bounds"))?,
    })
}
