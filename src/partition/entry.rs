//! What the MBR and GPT readers yield (partitions, the table kind) and how they fail.

use std::io;

use vmsnapfs_io::ReadAt;

/// MBR and GPT address the disk in 512-byte logical sectors on every virtual disk we
/// read (VMDK has no other sector size); GPT on a 4Kn disk is tried as well.
pub const SECTOR: u64 = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    /// Byte offset on the disk.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// `0x07` for MBR, the lower-case type GUID for GPT.
    pub type_id: String,
    /// A person's name for the type ("Microsoft basic data").
    pub type_name: String,
    /// GPT partition name, if set.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// No table: the disk is empty, unknown, or a file system starts at sector 0.
    None,
    Mbr,
    Gpt,
}

impl TableKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::None => "none",
            TableKind::Mbr => "mbr",
            TableKind::Gpt => "gpt",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("reading partition table at offset {offset}: {source}")]
    Io { offset: u64, source: io::Error },
    #[error("GPT damaged: primary header ({primary}) and backup header ({backup}) both invalid")]
    GptDamaged { primary: String, backup: String },
    #[error("extended partition chain: {0}")]
    BadChain(String),
}

pub(crate) fn read_exact(
    disk: &dyn ReadAt,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), PartitionError> {
    disk.read_at(offset, buf)
        .map_err(|source| PartitionError::Io { offset, source })
}
