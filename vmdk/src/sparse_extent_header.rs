//! `SparseExtentHeader`: the first sector of a hosted sparse ("KDMV") extent, and the copy of
//! it in a streamOptimized footer.

use vmsnapfs_io::le::{u16_at, u32_at, u64_at, u8_at};

pub const MAGIC: &[u8; 4] = b"KDMV";
pub const SIZE: usize = 512;
/// gdOffset value saying the grain directory was written at the end (streamOptimized).
pub const GD_AT_END: u64 = u64::MAX;

pub const FLAG_VALID_NEWLINE_TEST: u32 = 1 << 0;
pub const FLAG_REDUNDANT_GT: u32 = 1 << 1;
pub const FLAG_ZEROED_GRAIN_GTE: u32 = 1 << 2;
pub const FLAG_COMPRESSED: u32 = 1 << 16;
pub const FLAG_MARKERS: u32 = 1 << 17;

pub const COMPRESSION_NONE: u16 = 0;
pub const COMPRESSION_DEFLATE: u16 = 1;

/// Largest grain accepted: VMware and qemu write 64 KiB; anything past 32 MiB is damage, and
/// compressed grains are inflated into buffers of this size.
pub const MAX_GRAIN_SECTORS: u64 = 65536;
/// VMware writes 512; qemu refuses more than 512. We allow a little slack.
pub const MAX_GTES_PER_GT: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseExtentHeader {
    pub version: u32,
    pub flags: u32,
    /// Sectors.
    pub capacity: u64,
    /// Sectors.
    pub grain_size: u64,
    pub descriptor_offset: u64,
    pub descriptor_size: u64,
    pub num_gtes_per_gt: u32,
    pub rgd_offset: u64,
    pub gd_offset: u64,
    pub overhead: u64,
    pub unclean_shutdown: bool,
    pub compress_algorithm: u16,
}

impl SparseExtentHeader {
    /// Decodes the fields without judging them; see [`validate`](Self::validate).
    pub fn parse(b: &[u8; SIZE]) -> Result<Self, String> {
        if &b[0..4] != MAGIC {
            return Err("no KDMV magic".into());
        }
        let h = || {
            Ok(Self {
                version: u32_at(b, 4)?,
                flags: u32_at(b, 8)?,
                capacity: u64_at(b, 12)?,
                grain_size: u64_at(b, 20)?,
                descriptor_offset: u64_at(b, 28)?,
                descriptor_size: u64_at(b, 36)?,
                num_gtes_per_gt: u32_at(b, 44)?,
                rgd_offset: u64_at(b, 48)?,
                gd_offset: u64_at(b, 56)?,
                overhead: u64_at(b, 64)?,
                unclean_shutdown: u8_at(b, 72)? != 0,
                compress_algorithm: u16_at(b, 77)?,
            })
        };
        h().map_err(|e: vmsnapfs_io::ShortBuffer| format!("sparse extent header: {e}"))
    }

    /// Checks what the grain lookup relies on.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3).contains(&self.version) {
            return Err(format!(
                "unsupported sparse extent version {}",
                self.version
            ));
        }
        if self.grain_size == 0 || self.grain_size > MAX_GRAIN_SECTORS {
            return Err(format!(
                "grain size {} sectors out of range",
                self.grain_size
            ));
        }
        if self.num_gtes_per_gt == 0 || self.num_gtes_per_gt > MAX_GTES_PER_GT {
            return Err(format!(
                "{} entries per grain table out of range",
                self.num_gtes_per_gt
            ));
        }
        if self.compress_algorithm > COMPRESSION_DEFLATE {
            return Err(format!(
                "unknown compression algorithm {}",
                self.compress_algorithm
            ));
        }
        Ok(())
    }

    pub fn compressed(&self) -> bool {
        self.compress_algorithm == COMPRESSION_DEFLATE
    }

    pub fn has_markers(&self) -> bool {
        self.flags & FLAG_MARKERS != 0
    }

    pub fn zeroed_grain_gte(&self) -> bool {
        self.flags & FLAG_ZEROED_GRAIN_GTE != 0
    }

    pub fn has_redundant_gd(&self) -> bool {
        self.flags & FLAG_REDUNDANT_GT != 0 && self.rgd_offset != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_zero_and_huge_grains() {
        let mut b = [0u8; SIZE];
        b[0..4].copy_from_slice(MAGIC);
        b[4] = 1;
        b[44] = 0;
        b[45] = 2; // 512 GTEs
        let h = SparseExtentHeader::parse(&b).unwrap();
        assert!(h.validate().is_err()); // grain 0
        b[20..28].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(SparseExtentHeader::parse(&b).unwrap().validate().is_err());
        b[20..28].copy_from_slice(&128u64.to_le_bytes());
        assert!(SparseExtentHeader::parse(&b).unwrap().validate().is_ok());
    }
}
