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
    if &sector[3..11] == b"NTFS    " {
        return Some(FsKind::Ntfs);
    }
    // The FAT crate owns the rules (type by cluster count, exFAT's own signature).
    vmsnapfs_fat::probe(sector).map(|t| match t {
        vmsnapfs_fat::FatType::Fat12 => FsKind::Fat12,
        vmsnapfs_fat::FatType::Fat16 => FsKind::Fat16,
        vmsnapfs_fat::FatType::Fat32 => FsKind::Fat32,
        vmsnapfs_fat::FatType::ExFat => FsKind::ExFat,
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
