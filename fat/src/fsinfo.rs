//! The FAT32 FSInfo sector (Microsoft FAT spec §5): only a hint, so a bad one is ignored.

use crate::bytes::u32_at;

#[derive(Debug, Clone, Copy)]
pub(crate) struct FsInfo {
    pub free_count: Option<u32>,
}

pub(crate) fn parse(sector: &[u8], cluster_count: u32) -> Option<FsInfo> {
    if u32_at(sector, 0) != 0x4161_5252
        || u32_at(sector, 484) != 0x6141_7272
        || u32_at(sector, 508) != 0xAA55_0000
    {
        return None;
    }
    let free = u32_at(sector, 488);
    Some(FsInfo {
        // 0xFFFFFFFF means "unknown"; anything above the cluster count is stale.
        free_count: (free <= cluster_count).then_some(free),
    })
}
