//! $STANDARD_INFORMATION: timestamps, DOS attribute bits and (NTFS 3.x) the security id.

use crate::fields::short;
use vmsnapfs_io::le::{u32_at, u64_at};

#[derive(Debug, Clone, Copy, Default)]
pub struct StandardInformation {
    pub created: u64,
    pub modified: u64,
    pub mft_modified: u64,
    pub accessed: u64,
    pub attributes: u32,
    pub security_id: Option<u32>,
}

pub fn parse(b: &[u8]) -> Result<StandardInformation, String> {
    let truncated = short("$STANDARD_INFORMATION truncated");
    let f = |o| u64_at(b, o).map_err(&truncated);
    Ok(StandardInformation {
        created: f(0)?,
        modified: f(8)?,
        mft_modified: f(16)?,
        accessed: f(24)?,
        attributes: u32_at(b, 32).map_err(&truncated)?,
        // NTFS 1.2 records are 48 bytes and have no security id; 3.x are 72.
        security_id: if b.len() >= 72 {
            Some(u32_at(b, 52).map_err(&truncated)?)
        } else {
            None
        },
    })
}
