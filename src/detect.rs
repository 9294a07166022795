//! Which file system, if any, starts at the beginning of a volume: always by its own
//! superblock or boot sector, never by a partition type (Linux puts ext4 on type 83,
//! 8300, 8e00 or no table at all).

use vmsnapfs_io::ReadAt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Ntfs,
    Fat12,
    Fat16,
    Fat32,
    ExFat,
    Ext2,
    Ext3,
    Ext4,
    Xfs,
    /// Linux swap: recognised and listed, never mounted (it holds no files).
    Swap,
}

impl FsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FsKind::Ntfs => "ntfs",
            FsKind::Fat12 => "fat12",
            FsKind::Fat16 => "fat16",
            FsKind::Fat32 => "fat32",
            FsKind::ExFat => "exfat",
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::Swap => "swap",
        }
    }

    /// Whether the volume holds files to show under volumes/.
    pub fn has_files(self) -> bool {
        self != FsKind::Swap
    }
}

/// Enough for every signature we know: ext's superblock at 1024, swap's at 4086.
const PROBE: usize = 4096;

/// Reads the first bytes of `vol` and classifies them; I/O errors and short volumes
/// mean "nothing we know".
pub fn detect(vol: &dyn ReadAt) -> Option<FsKind> {
    let len = (vol.size().min(PROBE as u64)) as usize;
    if len < 512 {
        return None;
    }
    let mut head = vec![0u8; len];
    vol.read_at(0, &mut head).ok()?;
    let sector: &[u8; 512] = head[..512].try_into().ok()?;
    detect_boot_sector(sector).or_else(|| detect_linux(&head))
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

/// ext2/3/4 (s_magic 0xEF53 at 1024 + 56, told apart by feature flags as blkid does),
/// XFS ("XFSB" at 0) and swap ("SWAPSPACE2" ending the first 4 KiB page).
fn detect_linux(head: &[u8]) -> Option<FsKind> {
    if head.starts_with(b"XFSB") {
        return Some(FsKind::Xfs);
    }
    if head.len() >= 2048 && head[1024 + 56..1024 + 58] == [0x53, 0xEF] {
        let word = |at: usize| {
            u32::from_le_bytes(head[1024 + at..1024 + at + 4].try_into().unwrap_or([0; 4]))
        };
        let (compat, incompat, ro_compat) = (word(0x5C), word(0x60), word(0x64));
        const HAS_JOURNAL: u32 = 0x4;
        // Anything ext3 did not know: extents, 64bit, flex_bg, inline data, …; huge_file,
        // dir_nlink, extra_isize, metadata_csum among the read-only ones.
        const EXT3_INCOMPAT: u32 = 0x2 | 0x4 | 0x10; // filetype, recover, meta_bg
        const EXT3_RO_COMPAT: u32 = 0x1 | 0x2 | 0x4; // sparse_super, large_file, btree_dir
        return Some(
            if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT3_RO_COMPAT != 0 {
                FsKind::Ext4
            } else if compat & HAS_JOURNAL != 0 {
                FsKind::Ext3
            } else {
                FsKind::Ext2
            },
        );
    }
    if head.len() >= 4096 && matches!(&head[4086..4096], b"SWAPSPACE2" | b"SWAP-SPACE") {
        return Some(FsKind::Swap);
    }
    None
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
        assert_eq!(detect(&vec![0u8; 8192]), None);
    }

    /// Volumes made by the real tools, told apart as blkid tells them apart.
    #[test]
    fn linux_file_systems_by_their_superblocks() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("vol.img");
        let make = |tool: &str, args: &[&str], size: u64| -> Option<FsKind> {
            let f = std::fs::File::create(&img).unwrap();
            f.set_len(size).unwrap();
            let out = std::process::Command::new(tool)
                .args(args)
                .arg(&img)
                .output();
            let out = out.unwrap_or_else(|e| panic!("{tool}: {e} (scripts/test.sh installs it)"));
            assert!(
                out.status.success(),
                "{tool}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            detect(&vmsnapfs_io::FileSource::open(&img).unwrap())
        };
        let mke2fs = |t: &str| make("mke2fs", &["-q", "-F", "-t", t], 16 << 20);
        assert_eq!(mke2fs("ext2"), Some(FsKind::Ext2));
        assert_eq!(mke2fs("ext3"), Some(FsKind::Ext3));
        assert_eq!(mke2fs("ext4"), Some(FsKind::Ext4));
        assert_eq!(make("mkswap", &[], 16 << 20), Some(FsKind::Swap));
        assert_eq!(make("mkfs.vfat", &[], 16 << 20), Some(FsKind::Fat16));
        if std::process::Command::new("mkfs.xfs")
            .arg("-V")
            .output()
            .is_ok()
        {
            assert_eq!(
                make("mkfs.xfs", &["-q", "-f"], 320 << 20),
                Some(FsKind::Xfs)
            );
        } else {
            eprintln!("skipped: mkfs.xfs is not installed (scripts/test.sh installs xfsprogs)");
        }
    }
}
