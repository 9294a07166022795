//! Which file system, if any, starts at the beginning of a volume.

use vmsnapfs_io::ReadAt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Ntfs,
    Fat12,
    Fat16,
    Fat32,
    ExFat,
}

impl FsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FsKind::Ntfs => "ntfs",
            FsKind::Fat12 => "fat12",
            FsKind::Fat16 => "fat16",
            FsKind::Fat32 => "fat32",
            FsKind::ExFat => "exfat",
        }
    }
}

/// Reads the first sector of `vol` and classifies it; I/O errors and short volumes mean
/// "nothing we know".
pub fn detect(vol: &dyn ReadAt) -> Option<FsKind> {
    let mut sector = [0u8; 512];
    vol.read_at(0, &mut sector).ok()?;
    detect_boot_sector(&sector)
}

pub fn detect_boot_sector(sector: &[u8; 512]) -> Option<FsKind> {
    match &sector[3..11] {
        b"NTFS    " => return Some(FsKind::Ntfs),
        b"EXFAT   " => return Some(FsKind::ExFat),
        _ => {}
    }
    fat_kind(sector)
}

/// FAT's type is decided by its cluster count alone (Microsoft's FAT specification), never
/// by the informational "FAT16   " string, which formatters fill in inconsistently.
fn fat_kind(s: &[u8; 512]) -> Option<FsKind> {
    if s[0] != 0xEB && s[0] != 0xE9 {
        return None;
    }
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([s[o], s[o + 1]]));
    let u32_at = |o: usize| u64::from(u32::from_le_bytes([s[o], s[o + 1], s[o + 2], s[o + 3]]));
    let bytes_per_sector = u16_at(11);
    let sectors_per_cluster = u64::from(s[13]);
    let reserved = u16_at(14);
    let fats = u64::from(s[16]);
    let root_entries = u16_at(17);
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        || !sectors_per_cluster.is_power_of_two()
        || reserved == 0
        || fats == 0
    {
        return None;
    }
    let total = match u16_at(19) {
        0 => u32_at(32),
        n => n,
    };
    let fat_size = match u16_at(22) {
        0 => u32_at(36),
        n => n,
    };
    if total == 0 || fat_size == 0 {
        return None;
    }
    let root_sectors = (root_entries * 32).div_ceil(bytes_per_sector);
    let meta = reserved + fats * fat_size + root_sectors;
    let clusters = total.checked_sub(meta)? / sectors_per_cluster;
    Some(match clusters {
        0..=4084 => FsKind::Fat12,
        4085..=65524 => FsKind::Fat16,
        _ => FsKind::Fat32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_nothing() {
        let mut s = [0u8; 512];
        assert_eq!(detect_boot_sector(&s), None);
        s[0] = 0xEB;
        s[11] = 0x00;
        s[12] = 0x02;
        s[13] = 3; // not a power of two
        assert_eq!(detect_boot_sector(&s), None);
        let short: Vec<u8> = vec![0xEB; 100];
        assert_eq!(detect(&short), None);
    }
}
