//! The FAT32 FSInfo sector (Microsoft FAT spec §5): only a hint, so a bad one is ignored.

use vmsnapfs_io::le::u32_at;

#[derive(Debug, Clone, Copy)]
pub(crate) struct FsInfo {
    pub free_count: Option<u32>,
}

/// `None` for a sector that is not an FSInfo, too short to be one included.
pub(crate) fn parse(sector: &[u8], cluster_count: u32) -> Option<FsInfo> {
    let field = |offset| u32_at(sector, offset).ok();
    if field(0)? != 0x4161_5252 || field(484)? != 0x6141_7272 || field(508)? != 0xAA55_0000 {
        return None;
    }
    let free = field(488)?;
    Some(FsInfo {
        // 0xFFFFFFFF means "unknown"; anything above the cluster count is stale.
        free_count: (free <= cluster_count).then_some(free),
    })
}
