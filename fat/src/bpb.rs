//! The FAT12/16/32 boot sector and BIOS Parameter Block (Microsoft FAT spec §3).

use crate::FatType;
use vmsnapfs_io::le::{array_at, u16_at, u32_at, u8_at};
use vmsnapfs_io::ShortBuffer;

/// FAT32 volumes cannot address more clusters than the 28-bit entry allows.
const MAX_FAT32_CLUSTERS: u64 = 0x0FFF_FFF5;

#[derive(Debug, Clone)]
pub(crate) struct Bpb {
    pub fat_type: FatType,
    pub bytes_per_sector: u32,
    pub sectors_per_cluster: u32,
    pub reserved_sectors: u32,
    pub num_fats: u32,
    pub root_entry_count: u32,
    pub fat_size_sectors: u32,
    /// BPB_ExtFlags (FAT32 only): bit 7 set = mirroring off, bits 0–3 = active FAT.
    pub ext_flags: u16,
    pub root_cluster: u32,
    pub fs_info_sector: u32,
    pub volume_id: Option<u32>,
    pub volume_label: Option<[u8; 11]>,
    /// BS_Reserved1: Windows NT keeps "volume dirty" in bit 0.
    pub nt_flags: u8,
    pub cluster_count: u32,
    pub data_start_sector: u64,
}

impl Bpb {
    pub fn cluster_size(&self) -> u32 {
        self.bytes_per_sector * self.sectors_per_cluster
    }
    pub fn root_dir_offset(&self) -> u64 {
        (u64::from(self.reserved_sectors)
            + u64::from(self.num_fats) * u64::from(self.fat_size_sectors))
            * u64::from(self.bytes_per_sector)
    }
    pub fn fat_offset(&self, index: u32) -> u64 {
        (u64::from(self.reserved_sectors) + u64::from(index) * u64::from(self.fat_size_sectors))
            * u64::from(self.bytes_per_sector)
    }
    /// Index of the FAT to read: with mirroring disabled only the one named in
    /// BPB_ExtFlags is current; an out-of-range number falls back to the first.
    pub fn active_fat(&self) -> u32 {
        if self.fat_type == FatType::Fat32 && self.ext_flags & 0x80 != 0 {
            let n = u32::from(self.ext_flags & 0x0f);
            if n < self.num_fats {
                return n;
            }
        }
        0
    }
}

/// Parses and sanity-checks a boot sector. The checks are what keeps `probe` from
/// taking an NTFS or random sector for FAT: NTFS has zero reserved sectors and FATs.
pub(crate) fn parse(bs: &[u8]) -> Result<Bpb, String> {
    let truncated = |e: ShortBuffer| format!("boot sector truncated: {e}");
    if bs.len() < 512 {
        return Err("boot sector shorter than 512 bytes".into());
    }
    if !(bs[0] == 0xEB || bs[0] == 0xE9) {
        return Err(format!("no x86 jump at byte 0 ({:#04x})", bs[0]));
    }
    if &bs[3..11] == b"NTFS    " || &bs[3..11] == b"EXFAT   " {
        return Err("OEM name says NTFS/exFAT".into());
    }
    let bytes_per_sector = u32::from(u16_at(bs, 11).map_err(truncated)?);
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) {
        return Err(format!("bad bytes per sector {bytes_per_sector}"));
    }
    let sectors_per_cluster = u32::from(u8_at(bs, 13).map_err(truncated)?);
    if sectors_per_cluster == 0 || !sectors_per_cluster.is_power_of_two() {
        return Err(format!("bad sectors per cluster {sectors_per_cluster}"));
    }
    let reserved_sectors = u32::from(u16_at(bs, 14).map_err(truncated)?);
    if reserved_sectors == 0 {
        return Err("zero reserved sectors".into());
    }
    let num_fats = u32::from(u8_at(bs, 16).map_err(truncated)?);
    if num_fats == 0 || num_fats > 16 {
        return Err(format!("bad number of FATs {num_fats}"));
    }
    let root_entry_count = u32::from(u16_at(bs, 17).map_err(truncated)?);
    let total16 = u16_at(bs, 19).map_err(truncated)?;
    let media = u8_at(bs, 21).map_err(truncated)?;
    if media != 0xF0 && media < 0xF8 {
        return Err(format!("bad media byte {media:#04x}"));
    }
    let fat_size16 = u16_at(bs, 22).map_err(truncated)?;
    let total32 = u32_at(bs, 32).map_err(truncated)?;
    let total_sectors = if total16 != 0 {
        u64::from(total16)
    } else {
        u64::from(total32)
    };
    let is_fat32 = fat_size16 == 0;
    let fat_size_sectors = if is_fat32 {
        u32_at(bs, 36).map_err(truncated)?
    } else {
        u32::from(fat_size16)
    };
    if fat_size_sectors == 0 {
        return Err("zero FAT size".into());
    }
    if is_fat32 && root_entry_count != 0 {
        return Err("FAT32 with a fixed root directory".into());
    }
    if !is_fat32 && root_entry_count == 0 {
        return Err("FAT12/16 without root directory entries".into());
    }
    let root_dir_sectors = (u64::from(root_entry_count) * 32).div_ceil(u64::from(bytes_per_sector));
    let data_start_sector = u64::from(reserved_sectors)
        + u64::from(num_fats) * u64::from(fat_size_sectors)
        + root_dir_sectors;
    if total_sectors <= data_start_sector {
        return Err("no room for a data region".into());
    }
    let clusters = (total_sectors - data_start_sector) / u64::from(sectors_per_cluster);
    if clusters == 0 {
        return Err("no clusters".into());
    }
    // The FAT must be able to describe every cluster; if it is too small, only the
    // clusters it can describe exist (Linux does the same).
    let entry_bits: u64 = if is_fat32 {
        32
    } else if clusters < 4085 {
        12
    } else {
        16
    };
    let fat_entries = u64::from(fat_size_sectors) * u64::from(bytes_per_sector) * 8 / entry_bits;
    let clusters = clusters.min(fat_entries.saturating_sub(2));
    let fat_type = if is_fat32 {
        FatType::Fat32
    } else if clusters < 4085 {
        FatType::Fat12
    } else {
        FatType::Fat16
    };
    let max = match fat_type {
        FatType::Fat12 => 4084,
        FatType::Fat16 => 65_524,
        _ => MAX_FAT32_CLUSTERS,
    };
    let cluster_count = clusters.min(max) as u32;
    if cluster_count == 0 {
        return Err("FAT too small for any cluster".into());
    }
    let (ext, ext_flags, root_cluster, fs_info_sector) = if is_fat32 {
        (
            64,
            u16_at(bs, 40).map_err(truncated)?,
            u32_at(bs, 44).map_err(truncated)?,
            u32::from(u16_at(bs, 48).map_err(truncated)?),
        )
    } else {
        (36, 0, 0, 0)
    };
    if is_fat32 && !(2..=cluster_count.saturating_add(1)).contains(&root_cluster) {
        return Err(format!("FAT32 root cluster {root_cluster} out of range"));
    }
    let (volume_id, volume_label) = if u8_at(bs, ext + 2).map_err(truncated)? == 0x29 {
        let label = array_at(bs, ext + 7).map_err(truncated)?;
        (Some(u32_at(bs, ext + 3).map_err(truncated)?), Some(label))
    } else {
        (None, None)
    };
    Ok(Bpb {
        fat_type,
        bytes_per_sector,
        sectors_per_cluster,
        reserved_sectors,
        num_fats,
        root_entry_count,
        fat_size_sectors,
        ext_flags,
        root_cluster,
        fs_info_sector,
        volume_id,
        volume_label,
        nt_flags: u8_at(bs, ext + 1).map_err(truncated)?,
        cluster_count,
        data_start_sector,
    })
}
