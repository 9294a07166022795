//! $Secure: security descriptors are stored once in the $SDS stream and found through
//! the $SII view index (security id → SECURITY_DESCRIPTOR_HEADER).

use vmsnapfs_io::le::{u32_at, u64_at};
use vmsnapfs_io::ShortBuffer;

/// Size of the SECURITY_DESCRIPTOR_HEADER in front of each descriptor in $SDS.
pub const SDS_HEADER_LEN: u32 = 20;

/// Where one descriptor lives in $SDS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdsLocation {
    pub security_id: u32,
    /// Offset of the header in $SDS.
    pub offset: u64,
    /// Length including the header.
    pub length: u32,
}

/// Parses the data part of a $SII index entry (a SECURITY_DESCRIPTOR_HEADER: hash,
/// security id, offset, length).
pub fn parse_sii_data(d: &[u8]) -> Result<SdsLocation, ShortBuffer> {
    Ok(SdsLocation {
        security_id: u32_at(d, 4)?,
        offset: u64_at(d, 8)?,
        length: u32_at(d, 16)?,
    })
}
