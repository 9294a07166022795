//! The ext2/ext3 block map: i_block holds 12 direct block numbers, then one single-,
//! one double- and one triple-indirect block; an indirect block is an array of
//! little-endian u32 block numbers, 0 meaning a hole (of the whole subtree).

pub const DIRECT: usize = 12;

/// The block numbers of an indirect block.
pub fn parse_indirect(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// How many logical blocks one pointer at `level` (0 = direct, 1 = single-indirect ..)
/// covers, for `per_block` pointers per indirect block.
pub fn span(level: u32, per_block: u64) -> u64 {
    per_block.saturating_pow(level)
}
