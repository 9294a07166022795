//! The ext2/3/4 superblock (`struct ext4_super_block`): 1024 bytes at volume offset 1024.

use crate::error::{Error, Result};
use vmsnapfs_io::le::{bytes_at, u16_at, u32_at, u8_at};

pub const OFFSET: u64 = 1024;
pub const SIZE: usize = 1024;
pub const MAGIC: u16 = 0xEF53;

pub mod compat {
    pub const HAS_JOURNAL: u32 = 0x4;
    pub const EXT_ATTR: u32 = 0x8;
    pub const RESIZE_INODE: u32 = 0x10;
    pub const DIR_INDEX: u32 = 0x20;
    pub const SPARSE_SUPER2: u32 = 0x200;
    pub const FAST_COMMIT: u32 = 0x400;
    pub const ORPHAN_FILE: u32 = 0x1000;
}

pub mod incompat {
    pub const COMPRESSION: u32 = 0x1;
    pub const FILETYPE: u32 = 0x2;
    pub const RECOVER: u32 = 0x4;
    pub const JOURNAL_DEV: u32 = 0x8;
    pub const META_BG: u32 = 0x10;
    pub const EXTENTS: u32 = 0x40;
    pub const BIT64: u32 = 0x80;
    pub const MMP: u32 = 0x100;
    pub const FLEX_BG: u32 = 0x200;
    pub const EA_INODE: u32 = 0x400;
    pub const DIRDATA: u32 = 0x1000;
    pub const CSUM_SEED: u32 = 0x2000;
    pub const LARGEDIR: u32 = 0x4000;
    pub const INLINE_DATA: u32 = 0x8000;
    pub const ENCRYPT: u32 = 0x10000;
    pub const CASEFOLD: u32 = 0x20000;

    /// What this reader implements. MMP only guards writers; CSUM_SEED only changes
    /// how checksums are seeded (checksums are not verified); LARGEDIR only deepens
    /// the htree, which directories are read around (as linear leaves).
    pub const SUPPORTED: u32 = FILETYPE
        | RECOVER
        | META_BG
        | EXTENTS
        | BIT64
        | MMP
        | FLEX_BG
        | EA_INODE
        | CSUM_SEED
        | LARGEDIR
        | INLINE_DATA;

    pub const NAMES: &[(u32, &str)] = &[
        (COMPRESSION, "compression"),
        (FILETYPE, "filetype"),
        (RECOVER, "needs_recovery"),
        (JOURNAL_DEV, "journal_dev"),
        (META_BG, "meta_bg"),
        (EXTENTS, "extent"),
        (BIT64, "64bit"),
        (MMP, "mmp"),
        (FLEX_BG, "flex_bg"),
        (EA_INODE, "ea_inode"),
        (DIRDATA, "dirdata"),
        (CSUM_SEED, "metadata_csum_seed"),
        (LARGEDIR, "large_dir"),
        (INLINE_DATA, "inline_data"),
        (ENCRYPT, "encrypt"),
        (CASEFOLD, "casefold"),
    ];
}

pub mod ro_compat {
    pub const SPARSE_SUPER: u32 = 0x1;
    pub const LARGE_FILE: u32 = 0x2;
    pub const HUGE_FILE: u32 = 0x8;
    pub const GDT_CSUM: u32 = 0x10;
    pub const DIR_NLINK: u32 = 0x20;
    pub const EXTRA_ISIZE: u32 = 0x40;
    pub const BIGALLOC: u32 = 0x200;
    pub const METADATA_CSUM: u32 = 0x400;
}

/// The fields this reader uses, decoded.
#[derive(Debug, Clone)]
pub struct Superblock {
    pub inodes_count: u32,
    pub blocks_count: u64,
    pub free_blocks_count: u64,
    pub free_inodes_count: u32,
    pub first_data_block: u32,
    pub log_block_size: u32,
    pub log_cluster_size: u32,
    pub blocks_per_group: u32,
    pub clusters_per_group: u32,
    pub inodes_per_group: u32,
    pub mtime: u32,
    pub wtime: u32,
    pub state: u16,
    pub rev_level: u32,
    pub first_ino: u32,
    pub inode_size: u16,
    pub feature_compat: u32,
    pub feature_incompat: u32,
    pub feature_ro_compat: u32,
    pub uuid: [u8; 16],
    pub volume_name: [u8; 16],
    pub journal_inum: u32,
    pub journal_dev: u32,
    pub last_orphan: u32,
    pub hash_seed: [u32; 4],
    pub def_hash_version: u8,
    pub desc_size: u16,
    pub first_meta_bg: u32,
    pub min_extra_isize: u16,
    pub error_count: u32,
    pub backup_bgs: [u32; 2],
}

impl Superblock {
    /// Parses and sanity-checks the superblock (the 1024 bytes at volume offset 1024).
    /// Geometry that would make later arithmetic overflow or loop is refused here.
    pub fn parse(b: &[u8]) -> Result<Superblock> {
        let f = |e: vmsnapfs_io::ShortBuffer| Error::Superblock(e.to_string());
        let u32f = |o| u32_at(b, o).map_err(f);
        let u16f = |o| u16_at(b, o).map_err(f);
        let magic = u16f(0x38)?;
        if magic != MAGIC {
            return Err(Error::Superblock(format!("bad magic {magic:#06x}")));
        }
        let rev_level = u32f(0x4C)?;
        let (first_ino, inode_size) = if rev_level == 0 {
            (11, 128)
        } else {
            (u32f(0x54)?, u16f(0x58)?)
        };
        let feature_incompat = if rev_level == 0 { 0 } else { u32f(0x60)? };
        let is64 = feature_incompat & incompat::BIT64 != 0;
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(bytes_at(b, 0x68, 16).map_err(f)?);
        let mut volume_name = [0u8; 16];
        volume_name.copy_from_slice(bytes_at(b, 0x78, 16).map_err(f)?);
        let hi = |o| -> Result<u64> { Ok(if is64 { u32f(o)? as u64 } else { 0 }) };
        let sb = Superblock {
            inodes_count: u32f(0x0)?,
            blocks_count: u32f(0x4)? as u64 | hi(0x150)? << 32,
            free_blocks_count: u32f(0xC)? as u64 | hi(0x158)? << 32,
            free_inodes_count: u32f(0x10)?,
            first_data_block: u32f(0x14)?,
            log_block_size: u32f(0x18)?,
            log_cluster_size: u32f(0x1C)?,
            blocks_per_group: u32f(0x20)?,
            clusters_per_group: u32f(0x24)?,
            inodes_per_group: u32f(0x28)?,
            mtime: u32f(0x2C)?,
            wtime: u32f(0x30)?,
            state: u16f(0x3A)?,
            rev_level,
            first_ino,
            inode_size,
            feature_compat: if rev_level == 0 { 0 } else { u32f(0x5C)? },
            feature_incompat,
            feature_ro_compat: if rev_level == 0 { 0 } else { u32f(0x64)? },
            uuid,
            volume_name,
            journal_inum: u32f(0xE0)?,
            journal_dev: u32f(0xE4)?,
            last_orphan: u32f(0xE8)?,
            hash_seed: [u32f(0xEC)?, u32f(0xF0)?, u32f(0xF4)?, u32f(0xF8)?],
            def_hash_version: u8_at(b, 0xFC).map_err(f)?,
            desc_size: if is64 { u16f(0xFE)? } else { 32 },
            first_meta_bg: u32f(0x104)?,
            min_extra_isize: u16f(0x15C)?,
            error_count: u32f(0x194)?,
            backup_bgs: [u32f(0x24C)?, u32f(0x250)?],
        };
        sb.validate()?;
        Ok(sb)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Superblock(m));
        if self.log_block_size > 6 {
            return bad(format!(
                "block size 2^(10+{}) is beyond 64 KiB",
                self.log_block_size
            ));
        }
        let bs = self.block_size() as u64;
        // A group's block bitmap is one block: 8 * bs clusters (blocks without bigalloc).
        let cluster_shift = if self.has_ro_compat(ro_compat::BIGALLOC) {
            match self.log_cluster_size.checked_sub(self.log_block_size) {
                Some(d) if self.log_cluster_size <= 16 + 6 && d <= 16 => d,
                _ => {
                    return bad(format!(
                        "cluster size 2^(10+{}) with block size 2^(10+{})",
                        self.log_cluster_size, self.log_block_size
                    ))
                }
            }
        } else {
            0
        };
        if self.blocks_per_group == 0 || self.blocks_per_group as u64 > (8 * bs) << cluster_shift {
            return bad(format!("{} blocks per group", self.blocks_per_group));
        }
        if self.inodes_per_group == 0 || self.inodes_per_group as u64 > 8 * bs {
            return bad(format!("{} inodes per group", self.inodes_per_group));
        }
        let isz = self.inode_size as u64;
        if isz < 128 || !isz.is_power_of_two() || isz > bs {
            return bad(format!("inode size {isz}"));
        }
        if self.desc_size < 32 || !self.desc_size.is_power_of_two() || self.desc_size as u64 > bs {
            return bad(format!("group descriptor size {}", self.desc_size));
        }
        if self.first_data_block as u64 >= self.blocks_count {
            return bad(format!(
                "first data block {} beyond {} blocks",
                self.first_data_block, self.blocks_count
            ));
        }
        let groups = self.group_count();
        if self.blocks_count.checked_mul(bs).is_none() {
            return bad(format!(
                "{} blocks of {bs} bytes overflow",
                self.blocks_count
            ));
        }
        if (self.inodes_count as u64) > groups.saturating_mul(self.inodes_per_group as u64) {
            return bad(format!(
                "{} inodes do not fit {groups} groups of {}",
                self.inodes_count, self.inodes_per_group
            ));
        }
        if self.first_ino < 11 && self.rev_level > 0 {
            return bad(format!("first non-reserved inode {}", self.first_ino));
        }
        Ok(())
    }

    /// INCOMPAT features set here that this reader does not implement, by name;
    /// `Unsupported` if any.
    pub fn check_features(&self) -> Result<()> {
        let unknown = self.feature_incompat & !incompat::SUPPORTED;
        if unknown == 0 {
            return Ok(());
        }
        let mut names: Vec<String> = incompat::NAMES
            .iter()
            .filter(|(bit, _)| unknown & bit != 0)
            .map(|(_, n)| n.to_string())
            .collect();
        let known: u32 = incompat::NAMES.iter().map(|(b, _)| b).fold(0, |a, b| a | b);
        if unknown & !known != 0 {
            names.push(format!("unknown INCOMPAT bits {:#x}", unknown & !known));
        }
        Err(Error::Unsupported(names.join(", ")))
    }

    pub fn block_size(&self) -> u32 {
        1024 << self.log_block_size
    }
    pub fn group_count(&self) -> u64 {
        (self.blocks_count - self.first_data_block as u64).div_ceil(self.blocks_per_group as u64)
    }
    pub fn has_incompat(&self, f: u32) -> bool {
        self.feature_incompat & f != 0
    }
    pub fn has_compat(&self, f: u32) -> bool {
        self.feature_compat & f != 0
    }
    pub fn has_ro_compat(&self, f: u32) -> bool {
        self.feature_ro_compat & f != 0
    }
    pub fn label(&self) -> String {
        let end = self.volume_name.iter().position(|&c| c == 0).unwrap_or(16);
        String::from_utf8_lossy(&self.volume_name[..end]).into_owned()
    }

    /// Whether `group` holds a superblock backup (and so a copy of the descriptors).
    pub fn group_has_super(&self, group: u64) -> bool {
        if group == 0 {
            return true;
        }
        if self.has_compat(compat::SPARSE_SUPER2) {
            return group == self.backup_bgs[0] as u64 || group == self.backup_bgs[1] as u64;
        }
        if group <= 1 || !self.has_ro_compat(ro_compat::SPARSE_SUPER) {
            return true;
        }
        if group & 1 == 0 {
            return false;
        }
        [3u64, 5, 7].iter().any(|&p| {
            let mut n = p;
            while n < group {
                n *= p;
            }
            n == group
        })
    }

    /// The volume byte offset of group `group`'s descriptor.
    pub fn descriptor_offset(&self, group: u64) -> u64 {
        let bs = self.block_size() as u64;
        let ds = self.desc_size as u64;
        let per_block = bs / ds;
        let first = self.first_data_block as u64;
        if self.has_incompat(incompat::META_BG) && group / per_block >= self.first_meta_bg as u64 {
            let meta_first_group = group / per_block * per_block;
            let block = first
                + meta_first_group * self.blocks_per_group as u64
                + self.group_has_super(meta_first_group) as u64;
            block * bs + (group % per_block) * ds
        } else {
            // The block after the superblock's (not s_first_data_block + 1: bigalloc
            // with 1 KiB blocks has s_first_data_block 0 yet the superblock in block 1).
            (OFFSET / bs + 1) * bs + group * ds
        }
    }
}

/// Whether these bytes (the first 2 KiB of a volume, or at least its superblock at
/// 1024..2048) look like an ext2/3/4 file system: by the superblock, never a partition type.
pub fn probe(first_2k: &[u8]) -> bool {
    first_2k
        .get(OFFSET as usize..OFFSET as usize + SIZE)
        .is_some_and(|b| Superblock::parse(b).is_ok())
}
