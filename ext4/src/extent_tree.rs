//! Extent tree nodes: `struct ext4_extent_header` followed by either
//! `struct ext4_extent_idx` (interior, depth > 0) or `struct ext4_extent` (leaf) entries.
//! The root node lives in the inode's 60-byte i_block; others fill a block.

use vmsnapfs_io::le::{u16_at, u32_at};

pub const MAGIC: u16 = 0xF30A;
/// The kernel's own limit (EXT4_MAX_EXTENT_DEPTH).
pub const MAX_DEPTH: u16 = 5;
/// An ee_len above this marks an uninitialized (preallocated, reads as zeros) extent.
pub const INIT_MAX_LEN: u16 = 32768;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First logical block.
    pub logical: u32,
    /// Number of blocks (1..=32768).
    pub len: u32,
    /// First physical block.
    pub physical: u64,
    pub uninit: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub logical: u32,
    pub leaf: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Leaf(Vec<Extent>),
    Index { depth: u16, entries: Vec<Index> },
}

/// Parses one node. Entries must fit the node, sort by logical block, and leaf extents
/// must not overlap; the depth must be within the kernel's limit.
pub fn parse_node(b: &[u8]) -> Result<Node, String> {
    let f = |e: vmsnapfs_io::ShortBuffer| e.to_string();
    let magic = u16_at(b, 0).map_err(f)?;
    if magic != MAGIC {
        return Err(format!("bad extent header magic {magic:#06x}"));
    }
    let entries = u16_at(b, 2).map_err(f)? as usize;
    let max = u16_at(b, 4).map_err(f)? as usize;
    let depth = u16_at(b, 6).map_err(f)?;
    if depth > MAX_DEPTH {
        return Err(format!("extent tree depth {depth} beyond {MAX_DEPTH}"));
    }
    let room = (b.len() - 12.min(b.len())) / 12;
    if entries > max || max > room {
        return Err(format!("{entries} entries, max {max}, room for {room}"));
    }
    if depth == 0 {
        let mut out = Vec::with_capacity(entries);
        let mut next = 0u64;
        for i in 0..entries {
            let o = 12 + i * 12;
            let logical = u32_at(b, o).map_err(f)?;
            let raw_len = u16_at(b, o + 4).map_err(f)?;
            let hi = u16_at(b, o + 6).map_err(f)? as u64;
            let lo = u32_at(b, o + 8).map_err(f)? as u64;
            let (len, uninit) = if raw_len > INIT_MAX_LEN {
                ((raw_len - INIT_MAX_LEN) as u32, true)
            } else {
                (raw_len as u32, false)
            };
            if len == 0 {
                return Err(format!("extent {i} has length 0"));
            }
            if (logical as u64) < next {
                return Err(format!(
                    "extent {i} at logical block {logical} overlaps the one before"
                ));
            }
            next = logical as u64 + len as u64;
            out.push(Extent {
                logical,
                len,
                physical: hi << 32 | lo,
                uninit,
            });
        }
        Ok(Node::Leaf(out))
    } else {
        let mut out = Vec::with_capacity(entries);
        for i in 0..entries {
            let o = 12 + i * 12;
            let logical = u32_at(b, o).map_err(f)?;
            let lo = u32_at(b, o + 4).map_err(f)? as u64;
            let hi = u16_at(b, o + 8).map_err(f)? as u64;
            if out.last().is_some_and(|p: &Index| p.logical >= logical) {
                return Err(format!("index {i} at logical block {logical} out of order"));
            }
            out.push(Index {
                logical,
                leaf: hi << 32 | lo,
            });
        }
        Ok(Node::Index {
            depth,
            entries: out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(depth: u16, entries: &[[u32; 3]]) -> Vec<u8> {
        let mut b = vec![0u8; 60];
        b[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        b[2..4].copy_from_slice(&(entries.len() as u16).to_le_bytes());
        b[4..6].copy_from_slice(&4u16.to_le_bytes());
        b[6..8].copy_from_slice(&depth.to_le_bytes());
        for (i, e) in entries.iter().enumerate() {
            let o = 12 + 12 * i;
            b[o..o + 4].copy_from_slice(&e[0].to_le_bytes());
            b[o + 4..o + 6].copy_from_slice(&(e[1] as u16).to_le_bytes());
            b[o + 8..o + 12].copy_from_slice(&e[2].to_le_bytes());
        }
        b
    }

    #[test]
    fn leaves_uninit_and_limits() {
        let n = parse_node(&node(0, &[[0, 5, 100], [10, 32768 + 3, 200]])).unwrap();
        assert_eq!(
            n,
            Node::Leaf(vec![
                Extent {
                    logical: 0,
                    len: 5,
                    physical: 100,
                    uninit: false
                },
                Extent {
                    logical: 10,
                    len: 3,
                    physical: 200,
                    uninit: true
                },
            ])
        );
        assert!(
            parse_node(&node(0, &[[0, 5, 100], [3, 1, 200]])).is_err(),
            "overlap"
        );
        assert!(parse_node(&node(6, &[])).is_err(), "depth");
        let mut b = node(0, &[]);
        b[4..6].copy_from_slice(&5u16.to_le_bytes());
        assert!(parse_node(&b).is_err(), "max beyond the 60-byte root");
    }
}
