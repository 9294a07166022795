//! Partition tables: MBR (with extended/logical chains), GPT (with its backup), or none.
//!
//! Numbering follows Linux, because users match it against what `fdisk -l` or
//! `/proc/partitions` showed them: MBR primaries are 1–4 by slot, logicals count from 5;
//! GPT partitions are numbered by their slot in the entry array.

mod gpt;
mod mbr;
mod types;

use std::io;

use vmsnapfs_io::ReadAt;

use crate::detect;

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

/// Reads the disk's partition table. A disk with no table (or with a file system on the
/// whole disk) yields `TableKind::None` and no partitions; that is not an error.
pub fn read_table(disk: &dyn ReadAt) -> Result<(TableKind, Vec<Partition>), PartitionError> {
    if disk.size() < SECTOR {
        return Ok((TableKind::None, Vec::new()));
    }
    let mut sector0 = [0u8; SECTOR as usize];
    read_exact(disk, 0, &mut sector0)?;
    // A FAT or NTFS boot sector also ends in 0x55AA; its "table" area is boot code.
    if detect::detect_boot_sector(&sector0).is_some() {
        return Ok((TableKind::None, Vec::new()));
    }
    let Some(entries) = mbr::parse_sector(&sector0) else {
        // No MBR signature: a bare GPT (no protective MBR) is still worth a look.
        return match gpt::read(disk) {
            Ok(parts) => Ok((TableKind::Gpt, parts)),
            Err(_) => Ok((TableKind::None, Vec::new())),
        };
    };
    if entries.iter().any(|e| e.kind == mbr::GPT_PROTECTIVE) {
        return gpt::read(disk).map(|parts| (TableKind::Gpt, fit(disk, parts)));
    }
    let parts = mbr::read(disk, &entries)?;
    Ok((TableKind::Mbr, fit(disk, parts)))
}

/// Drops partitions that start beyond the disk and trims those running past its end:
/// a lying table must not make a reader address bytes the disk does not have.
fn fit(disk: &dyn ReadAt, parts: Vec<Partition>) -> Vec<Partition> {
    let size = disk.size();
    parts
        .into_iter()
        .filter(|p| p.start < size && p.size > 0)
        .map(|mut p| {
            if p.start.saturating_add(p.size) > size {
                tracing::warn!(
                    partition = p.number,
                    "partition runs past the end of the disk; trimmed"
                );
                p.size = size - p.start;
            }
            p
        })
        .collect()
}

#[cfg(test)]
mod tests;
