//! The Allocation Bitmap (exFAT spec §7.1): one bit per cluster, set when in use.

pub(crate) const TYPE: u8 = 0x81;

pub(crate) fn count_free(bitmap: &[u8], cluster_count: u32) -> u32 {
    let full = (cluster_count / 8) as usize;
    let mut used: u64 = bitmap
        .iter()
        .take(full)
        .map(|b| u64::from(b.count_ones()))
        .sum();
    let rest = cluster_count % 8;
    if rest != 0 {
        if let Some(b) = bitmap.get(full) {
            used += u64::from((b & ((1u8 << rest) - 1)).count_ones());
        }
    }
    u32::try_from(u64::from(cluster_count).saturating_sub(used)).unwrap_or(0)
}
