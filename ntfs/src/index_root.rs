//! $INDEX_ROOT: the resident top node of a directory (or view index) B+ tree.

use crate::fields::short;
use crate::index_entry::{parse_node, IndexEntry};
use vmsnapfs_io::le::u32_at;

pub struct IndexRoot {
    pub indexed_type: u32,
    pub collation: u32,
    pub block_size: u32,
    pub entries: Vec<IndexEntry>,
}

pub fn parse(b: &[u8], view: bool) -> Result<IndexRoot, String> {
    let indexed_type = u32_at(b, 0).map_err(short("$INDEX_ROOT truncated"))?;
    let collation = u32_at(b, 4).map_err(short("$INDEX_ROOT truncated"))?;
    let block_size = u32_at(b, 8).map_err(short("$INDEX_ROOT truncated"))?;
    if !block_size.is_power_of_two() || !(512..=65536).contains(&block_size) {
        return Err(format!("index block size {block_size}"));
    }
    Ok(IndexRoot {
        indexed_type,
        collation,
        block_size,
        entries: parse_node(b, 16, view)?,
    })
}
