//! Shortform attributes, `xfs_attr_sf_hdr` + `xfs_attr_sf_entry`, inline in the inode's
//! attribute fork.
use crate::be::{bytes_at, u16_at, u8_at};
use crate::error::Damage;

pub const ATTR_LOCAL: u8 = 0x01;
pub const ATTR_ROOT: u8 = 0x02;
pub const ATTR_SECURE: u8 = 0x04;
pub const ATTR_PARENT: u8 = 0x08;
pub const ATTR_INCOMPLETE: u8 = 0x80;

/// One attribute as stored: namespace flags, name, and the value or where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttr {
    pub flags: u8,
    pub name: Vec<u8>,
    pub value: AttrValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    Local(Vec<u8>),
    /// `len` bytes from attribute-fork block `block` on.
    Remote {
        block: u32,
        len: u32,
    },
}

pub fn parse(fork: &[u8]) -> Result<Vec<RawAttr>, Damage> {
    let total = u16_at(fork, 0)? as usize;
    if total > fork.len() || total < 4 {
        return Err(Damage::new(format!(
            "shortform attributes of {total} bytes in a {}-byte fork",
            fork.len()
        )));
    }
    let b = &fork[..total];
    let count = u8_at(b, 2)? as usize;
    let mut pos = 4;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let namelen = u8_at(b, pos)? as usize;
        let valuelen = u8_at(b, pos + 1)? as usize;
        let flags = u8_at(b, pos + 2)?;
        let name = bytes_at(b, pos + 3, namelen)?.to_vec();
        let value = bytes_at(b, pos + 3 + namelen, valuelen)?.to_vec();
        pos += 3 + namelen + valuelen;
        out.push(RawAttr {
            flags,
            name,
            value: AttrValue::Local(value),
        });
    }
    Ok(out)
}
