//! The AG free-space header, `xfs_agf`, in the second sector of each allocation group:
//! its free-block counters (the superblock's `sb_fdblocks` is only updated lazily, so on
//! a snapshot of a mounted volume the AGFs are the better count).
use crate::be::u32_at;
use crate::error::Damage;

pub const MAGIC: u32 = 0x5841_4746; // XAGF

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agf {
    pub seqno: u32,
    pub length: u32,
    pub flcount: u32,
    pub freeblks: u32,
    pub btreeblks: u32,
}

impl Agf {
    /// Blocks counted free the way the kernel sums them into `sb_fdblocks`
    /// (xfs_initialize_perag_data): free extents, the free list, and btree blocks.
    pub fn free_blocks(&self) -> u64 {
        self.freeblks as u64 + self.flcount as u64 + self.btreeblks as u64
    }
}

/// Parses one AGF sector; `v5` checks its CRC.
pub fn parse(b: &[u8], v5: bool) -> Result<Agf, Damage> {
    if u32_at(b, 0)? != MAGIC {
        return Err(Damage::new("no XAGF magic"));
    }
    if v5 && !crate::be::crc_ok(b, 216) {
        return Err(Damage::new("AGF CRC mismatch"));
    }
    let agf = Agf {
        seqno: u32_at(b, 8)?,
        length: u32_at(b, 12)?,
        flcount: u32_at(b, 48)?,
        freeblks: u32_at(b, 52)?,
        btreeblks: u32_at(b, 60)?,
    };
    if agf.free_blocks() > agf.length as u64 {
        return Err(Damage::new(format!(
            "{} free blocks in an AG of {}",
            agf.free_blocks(),
            agf.length
        )));
    }
    Ok(agf)
}
