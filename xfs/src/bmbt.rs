//! Extent records (`xfs_bmbt_rec`) and the block-mapping B+tree: its root in the inode
//! fork (`xfs_bmdr_block`) and its long-form blocks (`xfs_btree_block`, "BMAP"/"BMA3").
use crate::be::{u16_at, u32_at, u64_at};
use crate::error::Damage;

pub const MAGIC_V4: u32 = 0x424d_4150; // BMAP
pub const MAGIC_V5: u32 = 0x424d_4133; // BMA3
/// Deepest tree accepted (the kernel's own limit for 64-bit extent counts is below this).
pub const MAX_LEVELS: u16 = 12;

/// One mapping of file blocks `[offset, offset + len)` to filesystem blocks starting at
/// `block`; `unwritten` extents (preallocated, never written) read as zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub block: u64,
    pub len: u64,
    pub unwritten: bool,
}

/// Decodes one packed 128-bit extent record.
pub fn decode_rec(b: &[u8], off: usize) -> Result<Extent, Damage> {
    let l0 = u64_at(b, off)?;
    let l1 = u64_at(b, off + 8)?;
    Ok(Extent {
        unwritten: l0 >> 63 != 0,
        offset: (l0 & ((1 << 63) - 1)) >> 9,
        block: ((l0 & 0x1ff) << 43) | (l1 >> 21),
        len: l1 & ((1 << 21) - 1),
    })
}

/// `n` extent records at the start of `b` (an extents-format fork, or a leaf's records).
pub fn parse_records(b: &[u8], off: usize, n: usize) -> Result<Vec<Extent>, Damage> {
    let need = n.checked_mul(16).and_then(|x| x.checked_add(off));
    if need.is_none_or(|e| e > b.len()) {
        return Err(Damage::new(format!(
            "{n} extent records do not fit in {} bytes",
            b.len()
        )));
    }
    (0..n).map(|i| decode_rec(b, off + i * 16)).collect()
}

/// An interior node's view: its level and the child block pointers, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Level 0: extent records.
    Leaf(Vec<Extent>),
    /// Level > 0: child filesystem block numbers.
    Interior { level: u16, ptrs: Vec<u64> },
}

/// The B+tree root held in an inode fork (`xfs_bmdr_block`: level, numrecs, keys, ptrs,
/// where the pointer array starts after as many keys as the fork could hold).
pub fn parse_root(fork: &[u8]) -> Result<Node, Damage> {
    let level = u16_at(fork, 0)?;
    let n = u16_at(fork, 2)? as usize;
    if level == 0 || level > MAX_LEVELS {
        return Err(Damage::new(format!("B+tree root at level {level}")));
    }
    let maxrecs = fork.len().saturating_sub(4) / 16;
    if n == 0 || n > maxrecs {
        return Err(Damage::new(format!(
            "B+tree root with {n} records (room for {maxrecs})"
        )));
    }
    let ptrs = (0..n)
        .map(|i| u64_at(fork, 4 + maxrecs * 8 + i * 8))
        .collect::<Result<_, _>>()?;
    Ok(Node::Interior { level, ptrs })
}

/// Header size of a long-form btree block.
pub fn header_len(v5: bool) -> usize {
    if v5 {
        72
    } else {
        24
    }
}

/// One long-form B+tree block of the block-mapping tree. `owner` is checked on v5.
pub fn parse_block(b: &[u8], v5: bool, owner: u64) -> Result<(Node, u64), Damage> {
    let magic = u32_at(b, 0)?;
    let want = if v5 { MAGIC_V5 } else { MAGIC_V4 };
    if magic != want {
        return Err(Damage::new(format!("bmbt block magic {magic:#010x}")));
    }
    if v5 {
        if !crate::be::crc_ok(b, 64) {
            return Err(Damage::new("bmbt block CRC mismatch"));
        }
        let o = u64_at(b, 56)?;
        if o != owner {
            return Err(Damage::new(format!("bmbt block owned by inode {o}")));
        }
    }
    let level = u16_at(b, 4)?;
    let n = u16_at(b, 6)? as usize;
    let right = u64_at(b, 16)?;
    let hdr = header_len(v5);
    if level > MAX_LEVELS {
        return Err(Damage::new(format!("bmbt block at level {level}")));
    }
    if level == 0 {
        let max = (b.len() - hdr.min(b.len())) / 16;
        if n > max {
            return Err(Damage::new(format!(
                "bmbt leaf with {n} records (room for {max})"
            )));
        }
        Ok((Node::Leaf(parse_records(b, hdr, n)?), right))
    } else {
        let max = (b.len() - hdr.min(b.len())) / 16;
        if n == 0 || n > max {
            return Err(Damage::new(format!(
                "bmbt node with {n} records (room for {max})"
            )));
        }
        let ptrs = (0..n)
            .map(|i| u64_at(b, hdr + max * 8 + i * 8))
            .collect::<Result<_, _>>()?;
        Ok((Node::Interior { level, ptrs }, right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        // startoff 5, startblock 0x1234567, count 9, unwritten
        let (off, blk, cnt) = (5u64, 0x1234567u64, 9u64);
        let l0 = (1u64 << 63) | (off << 9) | (blk >> 43);
        let l1 = (blk << 21) | cnt;
        let mut b = l0.to_be_bytes().to_vec();
        b.extend_from_slice(&l1.to_be_bytes());
        let e = decode_rec(&b, 0).unwrap();
        assert_eq!(
            e,
            Extent {
                offset: off,
                block: blk,
                len: cnt,
                unwritten: true
            }
        );
        assert!(parse_records(&b, 0, 2).is_err());
    }
}
