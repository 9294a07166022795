//! The master boot record and the extended boot records (EBRs) of logical partitions.

use std::collections::HashSet;

use vmsnapfs_io::ReadAt;

use super::entry::{read_exact, Partition, PartitionError, SECTOR};
use super::types;

pub const GPT_PROTECTIVE: u8 = 0xEE;

/// An EBR chain longer than this is certainly corrupt (real tools cap far lower), and
/// the cap keeps a lying chain from costing unbounded reads.
const MAX_LOGICAL: usize = 256;

/// One 16-byte partition entry of an MBR or EBR, start and length in sectors.
#[derive(Debug, Clone, Copy)]
pub struct PartitionEntry {
    pub kind: u8,
    pub first_lba: u32,
    pub sectors: u32,
}

fn is_extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0F | 0x85)
}

/// The four entries of a sector ending in 0x55AA, or `None` when the signature is missing
/// or a boot-indicator byte is neither 0x00 nor 0x80 (so this is not a partition table).
pub fn parse_sector(sector: &[u8; SECTOR as usize]) -> Option<[PartitionEntry; 4]> {
    if sector[510] != 0x55 || sector[511] != 0xAA {
        return None;
    }
    let mut entries = [PartitionEntry {
        kind: 0,
        first_lba: 0,
        sectors: 0,
    }; 4];
    for (i, entry) in entries.iter_mut().enumerate() {
        let e = &sector[446 + i * 16..446 + (i + 1) * 16];
        if e[0] != 0x00 && e[0] != 0x80 {
            return None;
        }
        *entry = PartitionEntry {
            kind: e[4],
            first_lba: u32::from_le_bytes([e[8], e[9], e[10], e[11]]),
            sectors: u32::from_le_bytes([e[12], e[13], e[14], e[15]]),
        };
    }
    Some(entries)
}

fn partition(number: u32, lba: u64, sectors: u32, kind: u8) -> Partition {
    Partition {
        number,
        start: lba * SECTOR,
        size: u64::from(sectors) * SECTOR,
        type_id: format!("0x{kind:02x}"),
        type_name: types::mbr_type_name(kind).to_string(),
        name: None,
    }
}

pub fn read(
    disk: &dyn ReadAt,
    entries: &[PartitionEntry; 4],
) -> Result<Vec<Partition>, PartitionError> {
    let mut parts = Vec::new();
    let mut extended = None;
    for (slot, e) in entries.iter().enumerate() {
        if e.kind == 0 || e.sectors == 0 {
            continue;
        }
        if is_extended(e.kind) {
            // Linux follows only the first extended partition; so do we.
            if extended.is_none() {
                extended = Some(*e);
            }
            continue;
        }
        parts.push(partition(
            slot as u32 + 1,
            e.first_lba.into(),
            e.sectors,
            e.kind,
        ));
    }
    if let Some(ext) = extended {
        read_logical(disk, ext, &mut parts)?;
    }
    Ok(parts)
}

/// Walks the EBR chain. Each EBR holds one logical partition (relative to that EBR) and a
/// link to the next EBR (relative to the start of the extended partition).
fn read_logical(
    disk: &dyn ReadAt,
    ext: PartitionEntry,
    parts: &mut Vec<Partition>,
) -> Result<(), PartitionError> {
    let ext_start = u64::from(ext.first_lba);
    let ext_end = ext_start + u64::from(ext.sectors);
    let mut ebr_lba = ext_start;
    let mut seen = HashSet::new();
    let mut number = 5;
    loop {
        if !seen.insert(ebr_lba) {
            return Err(PartitionError::BadChain(format!(
                "EBR at sector {ebr_lba} links back into the chain"
            )));
        }
        if seen.len() > MAX_LOGICAL {
            return Err(PartitionError::BadChain(format!(
                "more than {MAX_LOGICAL} logical partitions"
            )));
        }
        if ebr_lba < ext_start || ebr_lba >= ext_end {
            return Err(PartitionError::BadChain(format!(
                "EBR at sector {ebr_lba} lies outside the extended partition"
            )));
        }
        let mut sector = [0u8; SECTOR as usize];
        read_exact(disk, ebr_lba * SECTOR, &mut sector)?;
        let Some(entries) = parse_sector(&sector) else {
            // The first EBR of an empty extended partition may be blank.
            if ebr_lba == ext_start {
                return Ok(());
            }
            return Err(PartitionError::BadChain(format!(
                "no EBR signature at sector {ebr_lba}"
            )));
        };
        let data = entries[0];
        if data.kind != 0 && data.sectors != 0 {
            parts.push(partition(
                number,
                ebr_lba + u64::from(data.first_lba),
                data.sectors,
                data.kind,
            ));
            number += 1;
        }
        let link = entries[1];
        if !is_extended(link.kind) || link.sectors == 0 {
            return Ok(());
        }
        ebr_lba = ext_start + u64::from(link.first_lba);
    }
}
