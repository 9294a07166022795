//! One INDX block: multi-sector header with fixups, its own VCN, then an index node.

use crate::fields::short;
use crate::fixup::apply_fixups;
use crate::index_entry::{parse_node, IndexEntry};
use vmsnapfs_io::le::u64_at;

pub fn parse(mut b: Vec<u8>, expected_vcn: u64, view: bool) -> Result<Vec<IndexEntry>, String> {
    if b.get(0..4) != Some(b"INDX") {
        return Err(format!(
            "index block at VCN {expected_vcn} has no INDX signature"
        ));
    }
    apply_fixups(&mut b)?;
    let vcn = u64_at(&b, 16).map_err(short("INDX header truncated"))?;
    if vcn != expected_vcn {
        return Err(format!(
            "index block at VCN {expected_vcn} says it is VCN {vcn}"
        ));
    }
    parse_node(&b, 24, view)
}
