//! The GUID partition table: header at LBA 1, backup header at the last LBA.

use vmsnapfs_io::ReadAt;

use super::entry::{read_exact, Partition, PartitionError};
use super::types;

const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The spec's minimum array is 16 KiB; anything past this bound is corrupt, and the bound
/// caps what a lying header can make us allocate.
const MAX_ARRAY_BYTES: u64 = 4 << 20;

struct Header {
    entry_lba: u64,
    entries: u32,
    entry_size: u32,
    entries_crc: u32,
}

/// Reads the primary GPT, falling back to the backup when the primary or its entry array
/// fails its checks. Tries 512-byte sectors, then 4096 (4Kn).
pub fn read(disk: &dyn ReadAt) -> Result<Vec<Partition>, PartitionError> {
    let mut first_err = None;
    for sector in [512u64, 4096] {
        match read_with_sector(disk, sector) {
            Ok(parts) => return Ok(parts),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.expect("tried at least one sector size"))
}

fn read_with_sector(disk: &dyn ReadAt, sector: u64) -> Result<Vec<Partition>, PartitionError> {
    let last_lba = (disk.size() / sector).saturating_sub(1);
    let primary = load(disk, sector, 1, last_lba);
    let primary_err = match primary {
        Ok(parts) => return Ok(parts),
        Err(e) => e,
    };
    match load(disk, sector, last_lba, last_lba) {
        Ok(parts) => {
            tracing::warn!("primary GPT invalid ({primary_err}); using the backup header");
            Ok(parts)
        }
        Err(backup) => Err(PartitionError::GptDamaged {
            primary: primary_err,
            backup,
        }),
    }
}

fn load(disk: &dyn ReadAt, sector: u64, lba: u64, last_lba: u64) -> Result<Vec<Partition>, String> {
    let header = read_header(disk, sector, lba, last_lba)?;
    let len = u64::from(header.entries) * u64::from(header.entry_size);
    let offset = header
        .entry_lba
        .checked_mul(sector)
        .filter(|o| o.checked_add(len).is_some_and(|end| end <= disk.size()))
        .ok_or_else(|| format!("entry array at LBA {} lies past the disk", header.entry_lba))?;
    let mut array = vec![0u8; len as usize];
    read_exact(disk, offset, &mut array).map_err(|e| e.to_string())?;
    if crc32fast::hash(&array) != header.entries_crc {
        return Err(format!("entry array CRC mismatch at offset {offset}"));
    }
    let mut parts = Vec::new();
    for (i, e) in array.chunks_exact(header.entry_size as usize).enumerate() {
        let type_guid = guid(&e[0..16]);
        if e[0..16].iter().all(|&b| b == 0) {
            continue;
        }
        let first = le64(&e[32..40]);
        let last = le64(&e[40..48]);
        if last < first || last > last_lba {
            tracing::warn!(slot = i + 1, "GPT entry with impossible extent skipped");
            continue;
        }
        let name_units: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let name = String::from_utf16_lossy(&name_units);
        parts.push(Partition {
            number: i as u32 + 1,
            start: first * sector,
            size: (last - first + 1) * sector,
            type_name: types::gpt_type_name(&type_guid).to_string(),
            type_id: type_guid,
            name: (!name.is_empty()).then_some(name),
        });
    }
    Ok(parts)
}

fn read_header(disk: &dyn ReadAt, sector: u64, lba: u64, last_lba: u64) -> Result<Header, String> {
    let offset = lba * sector;
    let mut buf = vec![0u8; sector as usize];
    read_exact(disk, offset, &mut buf).map_err(|e| e.to_string())?;
    if &buf[0..8] != SIGNATURE {
        return Err(format!("no GPT signature at offset {offset}"));
    }
    let header_size = le32(&buf[12..16]) as usize;
    if !(92..=sector as usize).contains(&header_size) {
        return Err(format!("header size {header_size} at offset {offset}"));
    }
    let stored_crc = le32(&buf[16..20]);
    let mut copy = buf[..header_size].to_vec();
    copy[16..20].fill(0);
    if crc32fast::hash(&copy) != stored_crc {
        return Err(format!("header CRC mismatch at offset {offset}"));
    }
    if le64(&buf[24..32]) != lba {
        return Err(format!("header at LBA {lba} claims another location"));
    }
    let entry_lba = le64(&buf[72..80]);
    let entries = le32(&buf[80..84]);
    let entry_size = le32(&buf[84..88]);
    if entry_size < 128 || !entry_size.is_power_of_two() {
        return Err(format!("entry size {entry_size} at offset {offset}"));
    }
    if u64::from(entries) * u64::from(entry_size) > MAX_ARRAY_BYTES {
        return Err(format!(
            "{entries} entries of {entry_size} bytes is implausible"
        ));
    }
    if entry_lba > last_lba {
        return Err(format!("entry array LBA {entry_lba} past the disk"));
    }
    Ok(Header {
        entry_lba,
        entries,
        entry_size,
        entries_crc: le32(&buf[88..92]),
    })
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4 bytes"))
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}

/// GUIDs are stored mixed-endian: the first three fields little-endian.
fn guid(b: &[u8]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        le32(&b[0..4]),
        u16::from_le_bytes([b[4], b[5]]),
        u16::from_le_bytes([b[6], b[7]]),
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}
