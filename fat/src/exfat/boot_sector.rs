//! The exFAT Main and Backup Boot Sectors and the boot-region checksum (exFAT spec §3).

use vmsnapfs_io::ReadAt;

use crate::error::{Error, Result};
use crate::read_exact;
use vmsnapfs_io::le::{u16_at, u32_at, u64_at, u8_at};
use vmsnapfs_io::ShortBuffer;

#[derive(Debug, Clone)]
pub(crate) struct BootSector {
    pub fat_offset: u32,
    pub fat_length: u32,
    pub cluster_heap_offset: u32,
    pub cluster_count: u32,
    pub root_cluster: u32,
    pub serial: u32,
    pub volume_flags: u16,
    pub bytes_per_sector_shift: u8,
    pub sectors_per_cluster_shift: u8,
    pub number_of_fats: u8,
}

impl BootSector {
    pub fn bytes_per_sector(&self) -> u32 {
        1 << self.bytes_per_sector_shift
    }
    pub fn cluster_size(&self) -> u32 {
        1 << (self.bytes_per_sector_shift + self.sectors_per_cluster_shift)
    }
    /// VolumeFlags bit 0 picks the second FAT, meaningful only when there are two.
    pub fn active_fat(&self) -> u32 {
        if self.number_of_fats == 2 && self.volume_flags & 1 != 0 {
            1
        } else {
            0
        }
    }
    pub fn fat_offset_bytes(&self, index: u32) -> u64 {
        (u64::from(self.fat_offset) + u64::from(index) * u64::from(self.fat_length))
            << self.bytes_per_sector_shift
    }
    pub fn fat_length_bytes(&self) -> u64 {
        u64::from(self.fat_length) << self.bytes_per_sector_shift
    }
    pub fn cluster_heap_offset_bytes(&self) -> u64 {
        u64::from(self.cluster_heap_offset) << self.bytes_per_sector_shift
    }
}

pub(crate) fn parse(bs: &[u8]) -> Result<BootSector, String> {
    let truncated = |e: ShortBuffer| format!("boot sector truncated: {e}");
    if bs.len() < 512 {
        return Err("boot sector shorter than 512 bytes".into());
    }
    if &bs[3..11] != b"EXFAT   " {
        return Err("no EXFAT file system name".into());
    }
    if bs[11..64].iter().any(|&b| b != 0) {
        return Err("MustBeZero field is not zero".into());
    }
    if u16_at(bs, 510).map_err(truncated)? != 0xAA55 {
        return Err("no boot signature".into());
    }
    let volume_length = u64_at(bs, 72).map_err(truncated)?;
    let fat_offset = u32_at(bs, 80).map_err(truncated)?;
    let fat_length = u32_at(bs, 84).map_err(truncated)?;
    let cluster_heap_offset = u32_at(bs, 88).map_err(truncated)?;
    let cluster_count = u32_at(bs, 92).map_err(truncated)?;
    let root_cluster = u32_at(bs, 96).map_err(truncated)?;
    let bps_shift = u8_at(bs, 108).map_err(truncated)?;
    let spc_shift = u8_at(bs, 109).map_err(truncated)?;
    let number_of_fats = u8_at(bs, 110).map_err(truncated)?;
    if !(9..=12).contains(&bps_shift) {
        return Err(format!("BytesPerSectorShift {bps_shift} out of range"));
    }
    if u32::from(spc_shift) > 25 - u32::from(bps_shift) {
        return Err(format!("SectorsPerClusterShift {spc_shift} out of range"));
    }
    if !(1..=2).contains(&number_of_fats) {
        return Err(format!("NumberOfFats {number_of_fats}"));
    }
    if fat_offset < 24 || fat_length == 0 {
        return Err("FAT offset or length out of range".into());
    }
    let fats_end = u64::from(fat_offset) + u64::from(fat_length) * u64::from(number_of_fats);
    if u64::from(cluster_heap_offset) < fats_end {
        return Err("cluster heap overlaps the FAT".into());
    }
    if cluster_count == 0 || cluster_count > 0xFFFF_FFF5 {
        return Err(format!("ClusterCount {cluster_count} out of range"));
    }
    // The FAT must describe every cluster, and the heap must fit in the volume.
    if (u64::from(cluster_count) + 2) * 4 > u64::from(fat_length) << bps_shift {
        return Err("FAT too small for ClusterCount".into());
    }
    let heap_end = u64::from(cluster_heap_offset) + (u64::from(cluster_count) << spc_shift);
    if heap_end > volume_length {
        return Err("cluster heap extends past VolumeLength".into());
    }
    if !(2..=u64::from(cluster_count) + 1).contains(&u64::from(root_cluster)) {
        return Err(format!("root cluster {root_cluster} out of range"));
    }
    Ok(BootSector {
        fat_offset,
        fat_length,
        cluster_heap_offset,
        cluster_count,
        root_cluster,
        serial: u32_at(bs, 100).map_err(truncated)?,
        volume_flags: u16_at(bs, 106).map_err(truncated)?,
        bytes_per_sector_shift: bps_shift,
        sectors_per_cluster_shift: spc_shift,
        number_of_fats,
    })
}

/// Checksum over the first 11 sectors of a boot region, skipping VolumeFlags and
/// PercentInUse, which change without the checksum being rewritten (spec §3.4).
pub(crate) fn boot_checksum(region: &[u8]) -> u32 {
    region.iter().enumerate().fold(0u32, |sum, (i, &b)| {
        if i == 106 || i == 107 || i == 112 {
            sum
        } else {
            sum.rotate_right(1).wrapping_add(u32::from(b))
        }
    })
}

fn read_region(reader: &dyn ReadAt, base_sector: u64) -> Result<BootSector> {
    let mut first = vec![0u8; 512];
    // The sector size is only known after parsing, so read the 512-byte head first.
    let bps_guess = 512u64;
    read_exact(reader, base_sector * bps_guess, &mut first)?;
    let bs = parse(&first).map_err(Error::NotFat)?;
    let bps = u64::from(bs.bytes_per_sector());
    let base = base_sector * bps;
    let mut region = vec![0u8; (12 * bps) as usize];
    read_exact(reader, base, &mut region)?;
    let bs = parse(&region).map_err(Error::NotFat)?;
    let computed = boot_checksum(&region[..(11 * bps) as usize]);
    let stored = u32_at(&region, (11 * bps) as usize)
        .map_err(|e| Error::NotFat(format!("boot region truncated: {e}")))?;
    if computed != stored {
        return Err(Error::BootChecksum { computed, stored });
    }
    Ok(bs)
}

/// The main boot region, or the backup (sectors 12–23) when the main one is damaged.
pub(crate) fn read_boot_region(reader: &dyn ReadAt) -> Result<(BootSector, bool)> {
    match read_region(reader, 0) {
        Ok(bs) => Ok((bs, false)),
        Err(main_err) => {
            for shift in 9..=12u32 {
                let bps = 1u64 << shift;
                let mut head = vec![0u8; 512];
                if read_exact(reader, 12 * bps, &mut head).is_err() {
                    continue;
                }
                if let Ok(b) = parse(&head) {
                    if u32::from(b.bytes_per_sector_shift) == shift {
                        let mut region = vec![0u8; (12 * bps) as usize];
                        if read_exact(reader, 12 * bps, &mut region).is_err() {
                            continue;
                        }
                        let stored = u32_at(&region, (11 * bps) as usize);
                        if stored == Ok(boot_checksum(&region[..(11 * bps) as usize])) {
                            return Ok((b, true));
                        }
                    }
                }
            }
            Err(main_err)
        }
    }
}
