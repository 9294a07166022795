//! Attribute blocks in the attribute fork: leaves (`xfs_attr_leafblock`, magic 0xfbee /
//! v5 0x3bee), the dabtree nodes above them (`xfs_da_intnode`, 0xfebe / 0x3ebe), and v5
//! remote value blocks (`xfs_attr3_rmt_hdr`, "XARM").
use crate::attr_sf::{AttrValue, RawAttr, ATTR_INCOMPLETE, ATTR_LOCAL};
use crate::be::{bytes_at, u16_at, u32_at, u64_at, u8_at};
use crate::error::Damage;

pub const LEAF_MAGIC_V4: u16 = 0xfbee;
pub const LEAF_MAGIC_V5: u16 = 0x3bee;
pub const NODE_MAGIC_V4: u16 = 0xfebe;
pub const NODE_MAGIC_V5: u16 = 0x3ebe;
pub const RMT_MAGIC: u32 = 0x5841_524d; // XARM
pub const RMT_HDR_LEN: usize = 56;

/// A dabtree block, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// The attributes of a leaf and its right sibling (0: none).
    Leaf { attrs: Vec<RawAttr>, forw: u32 },
    /// An interior node: child block numbers in hash order.
    Node { level: u16, children: Vec<u32> },
}

fn check_v5(b: &[u8], owner: u64) -> Result<(), Damage> {
    if !crate::be::crc_ok(b, 12) {
        return Err(Damage::new("attribute block CRC mismatch"));
    }
    let o = u64_at(b, 48)?;
    if o != owner {
        return Err(Damage::new(format!("attribute block owned by inode {o}")));
    }
    Ok(())
}

pub fn parse(b: &[u8], v5: bool, owner: u64) -> Result<Block, Damage> {
    let forw = u32_at(b, 0)?;
    let magic = u16_at(b, 8)?;
    match (magic, v5) {
        (LEAF_MAGIC_V4, false) | (LEAF_MAGIC_V5, true) => {
            if v5 {
                check_v5(b, owner)?;
            }
            let hdr = if v5 { 80 } else { 32 };
            let cpos = if v5 { 56 } else { 12 };
            let count = u16_at(b, cpos)? as usize;
            if hdr + count * 8 > b.len() {
                return Err(Damage::new(format!("attribute leaf with {count} entries")));
            }
            let mut attrs = Vec::with_capacity(count);
            for i in 0..count {
                let e = hdr + i * 8;
                let nameidx = u16_at(b, e + 4)? as usize;
                let flags = u8_at(b, e + 6)?;
                if flags & ATTR_INCOMPLETE != 0 {
                    continue;
                }
                if nameidx < hdr + count * 8 || nameidx >= b.len() {
                    return Err(Damage::new(format!(
                        "attribute entry {i} name at {nameidx}"
                    )));
                }
                if flags & ATTR_LOCAL != 0 {
                    let vlen = u16_at(b, nameidx)? as usize;
                    let nlen = u8_at(b, nameidx + 2)? as usize;
                    let name = bytes_at(b, nameidx + 3, nlen)?.to_vec();
                    let value = bytes_at(b, nameidx + 3 + nlen, vlen)?.to_vec();
                    attrs.push(RawAttr {
                        flags,
                        name,
                        value: AttrValue::Local(value),
                    });
                } else {
                    let block = u32_at(b, nameidx)?;
                    let len = u32_at(b, nameidx + 4)?;
                    let nlen = u8_at(b, nameidx + 8)? as usize;
                    let name = bytes_at(b, nameidx + 9, nlen)?.to_vec();
                    attrs.push(RawAttr {
                        flags,
                        name,
                        value: AttrValue::Remote { block, len },
                    });
                }
            }
            Ok(Block::Leaf { attrs, forw })
        }
        (NODE_MAGIC_V4, false) | (NODE_MAGIC_V5, true) => {
            if v5 {
                check_v5(b, owner)?;
            }
            let (hdr, cpos) = if v5 { (64, 56) } else { (16, 12) };
            let count = u16_at(b, cpos)? as usize;
            let level = u16_at(b, cpos + 2)?;
            if count == 0 || hdr + count * 8 > b.len() || level == 0 || level > 8 {
                return Err(Damage::new(format!(
                    "attribute node level {level} with {count} entries"
                )));
            }
            let children = (0..count)
                .map(|i| u32_at(b, hdr + i * 8 + 4))
                .collect::<Result<_, _>>()?;
            Ok(Block::Node { level, children })
        }
        _ => Err(Damage::new(format!("attribute block magic {magic:#06x}"))),
    }
}

/// The value bytes of one v5 remote value block: checks the header, returns the payload.
pub fn rmt_payload(b: &[u8], owner: u64) -> Result<&[u8], Damage> {
    if u32_at(b, 0)? != RMT_MAGIC {
        return Err(Damage::new(
            "remote attribute value block without XARM magic",
        ));
    }
    if !crate::be::crc_ok(b, 12) {
        return Err(Damage::new("remote attribute value block CRC mismatch"));
    }
    if u64_at(b, 32)? != owner {
        return Err(Damage::new("remote attribute value block of another inode"));
    }
    let bytes = u32_at(b, 8)? as usize;
    Ok(bytes_at(b, RMT_HDR_LEN, bytes)?)
}
