//! Partition tables: MBR (with extended/logical chains), GPT (with its backup), or none.
//!
//! Numbering follows Linux, because users match it against what `fdisk -l` or
//! `/proc/partitions` showed them: MBR primaries are 1–4 by slot, logicals count from 5;
//! GPT partitions are numbered by their slot in the entry array.

mod entry;
mod gpt;
mod mbr;
mod types;

use vmsnapfs_io::ReadAt;

use entry::read_exact;
pub use entry::{Partition, PartitionError, TableKind, SECTOR};

use crate::detect;

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
