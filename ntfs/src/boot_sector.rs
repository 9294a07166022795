//! The NTFS boot sector ($Boot, sector 0): geometry and where the MFT starts.

use crate::error::{Error, Result};
use vmsnapfs_io::le::{u16_at, u64_at, u8_at};
use vmsnapfs_io::ShortBuffer;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSector {
    pub bytes_per_sector: u32,
    pub cluster_size: u32,
    pub total_sectors: u64,
    pub total_clusters: u64,
    pub mft_lcn: u64,
    pub mft_mirror_lcn: u64,
    pub file_record_size: u32,
    pub index_record_size: u32,
    pub serial_number: u64,
}

/// Cluster sizes above 64 KiB (Windows 10 1709+ allows up to 2 MiB) no longer fit the
/// one-byte "sectors per cluster" field, so Windows stores them as a negative power of two.
fn sectors_per_cluster(raw: u8) -> Option<u32> {
    match raw {
        0 => None,
        1..=0x80 if raw.is_power_of_two() => Some(raw as u32),
        0xF4..=0xFF => Some(1u32 << (256 - raw as u32)),
        _ => None,
    }
}

/// MFT record and index record sizes: positive means clusters, negative means 2^-n bytes.
fn record_size(raw: u8, cluster_size: u32) -> Option<u32> {
    let v = raw as i8;
    let size = if v > 0 {
        (v as u32).checked_mul(cluster_size)?
    } else {
        let shift = (-(v as i32)) as u32;
        if !(9..=16).contains(&shift) {
            return None;
        }
        1u32 << shift
    };
    (size.is_power_of_two() && (512..=65536).contains(&size)).then_some(size)
}

impl BootSector {
    pub fn parse(b: &[u8]) -> Result<Self> {
        let bad = |m: &str| Error::BootSector(m.to_string());
        let truncated = |e: ShortBuffer| bad(&format!("truncated: {e}"));
        if b.len() < 512 {
            return Err(bad("shorter than 512 bytes"));
        }
        if &b[3..11] != b"NTFS    " {
            return Err(bad("OEM id is not \"NTFS    \""));
        }
        let bytes_per_sector = u16_at(b, 0x0B).map_err(truncated)? as u32;
        if !bytes_per_sector.is_power_of_two() || !(256..=4096).contains(&bytes_per_sector) {
            return Err(bad(&format!("bytes per sector {bytes_per_sector}")));
        }
        let spc_raw = u8_at(b, 0x0D).map_err(truncated)?;
        let spc = sectors_per_cluster(spc_raw)
            .ok_or_else(|| bad(&format!("sectors per cluster byte {spc_raw:#x}")))?;
        let cluster_size = bytes_per_sector
            .checked_mul(spc)
            .filter(|c| (512..=2 * 1024 * 1024).contains(c))
            .ok_or_else(|| bad(&format!("cluster size {bytes_per_sector}*{spc}")))?;
        let total_sectors = u64_at(b, 0x28).map_err(truncated)?;
        let total_clusters = total_sectors / spc as u64;
        let mft_lcn = u64_at(b, 0x30).map_err(truncated)?;
        let mft_mirror_lcn = u64_at(b, 0x38).map_err(truncated)?;
        if mft_lcn == 0 || mft_lcn >= total_clusters {
            return Err(bad(&format!(
                "MFT cluster {mft_lcn} outside {total_clusters} clusters"
            )));
        }
        let frs_raw = u8_at(b, 0x40).map_err(truncated)?;
        let file_record_size = record_size(frs_raw, cluster_size)
            .ok_or_else(|| bad(&format!("file record size byte {frs_raw:#x}")))?;
        let irs_raw = u8_at(b, 0x44).map_err(truncated)?;
        let index_record_size = record_size(irs_raw, cluster_size)
            .ok_or_else(|| bad(&format!("index record size byte {irs_raw:#x}")))?;
        let serial_number = u64_at(b, 0x48).map_err(truncated)?;
        Ok(BootSector {
            bytes_per_sector,
            cluster_size,
            total_sectors,
            total_clusters,
            mft_lcn,
            mft_mirror_lcn,
            file_record_size,
            index_record_size,
            serial_number,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_cluster_encoding() {
        assert_eq!(sectors_per_cluster(0xF4), Some(4096));
        assert_eq!(sectors_per_cluster(8), Some(8));
        assert_eq!(sectors_per_cluster(3), None);
        assert_eq!(record_size(0xF6, 4096), Some(1024));
        assert_eq!(record_size(1, 4096), Some(4096));
        assert_eq!(record_size(0x80, 4096), None);
    }

    fn synthetic(spc: u8, frs: u8) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[3..11].copy_from_slice(b"NTFS    ");
        b[0x0B..0x0D].copy_from_slice(&512u16.to_le_bytes());
        b[0x0D] = spc;
        b[0x28..0x30].copy_from_slice(&(1u64 << 30).to_le_bytes());
        b[0x30..0x38].copy_from_slice(&4u64.to_le_bytes());
        b[0x40] = frs;
        b[0x44] = frs;
        b
    }

    #[test]
    fn cluster_sizes_up_to_2_mib() {
        let bs = BootSector::parse(&synthetic(0xF4, 0xF6)).unwrap();
        assert_eq!(bs.cluster_size, 2 << 20);
        assert_eq!(bs.file_record_size, 1024);
        assert_eq!(bs.total_clusters, (1 << 30) / 4096);
        let bs = BootSector::parse(&synthetic(1, 0xF4)).unwrap();
        assert_eq!((bs.cluster_size, bs.file_record_size), (512, 4096));
        // 4 MiB clusters do not exist.
        assert!(BootSector::parse(&synthetic(0xF3, 0xF6)).is_err());
        // A record size of two 2 MiB clusters is nonsense.
        assert!(BootSector::parse(&synthetic(0xF4, 2)).is_err());
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(BootSector::parse(&[0u8; 512]).is_err());
        assert!(BootSector::parse(&[0u8; 10]).is_err());
    }
}
