//! Extended attributes: `struct ext4_xattr_entry` lists, in the inode body after the
//! extra fields (`struct ext4_xattr_ibody_header`: the magic only) or in one block
//! (`struct ext4_xattr_header`, 32 bytes). Values lie in the same region (ibody: offsets
//! from the first entry; block: from the block start) or, with ea_inode, in an inode
//! of their own. POSIX ACLs are stored in the compact `ext4_acl` form and converted
//! here to the `posix_acl_xattr` form (version 2) that getfacl and rsync expect.

use vmsnapfs_io::le::{u16_at, u32_at, u8_at};

pub const MAGIC: u32 = 0xEA02_0000;
pub const BLOCK_HEADER: usize = 32;
/// Name indices (e_name_index).
pub const INDEX_USER: u8 = 1;
pub const INDEX_ACL_ACCESS: u8 = 2;
pub const INDEX_ACL_DEFAULT: u8 = 3;
pub const INDEX_TRUSTED: u8 = 4;
pub const INDEX_SECURITY: u8 = 6;
pub const INDEX_SYSTEM: u8 = 7;
pub const INDEX_RICHACL: u8 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name_index: u8,
    pub name: Vec<u8>,
    pub value_offs: u16,
    /// Non-zero: the value is the content of this inode (ea_inode).
    pub value_inum: u32,
    pub value_size: u32,
}

impl Entry {
    /// The full attribute name as Linux shows it, or None for internal ones
    /// (`system.data`, the inline-data continuation) and unknown indices.
    pub fn full_name(&self) -> Option<String> {
        let name = String::from_utf8_lossy(&self.name);
        let prefix = match self.name_index {
            0 => "",
            INDEX_USER => "user.",
            INDEX_ACL_ACCESS => return Some("system.posix_acl_access".into()),
            INDEX_ACL_DEFAULT => return Some("system.posix_acl_default".into()),
            INDEX_TRUSTED => "trusted.",
            INDEX_SECURITY => "security.",
            INDEX_SYSTEM if &*self.name == b"data" => return None,
            INDEX_SYSTEM => "system.",
            INDEX_RICHACL => return Some("system.richacl".into()),
            _ => return None,
        };
        Some(format!("{prefix}{name}"))
    }
}

/// Parses the entries of a region: `region` starts at the first entry (after the
/// ibody magic, or at byte 32 of a block). Stops at the 4 zero bytes that end the list;
/// an entry that would run past the region is an error with its offset.
pub fn parse_entries(region: &[u8]) -> Result<Vec<Entry>, (usize, String)> {
    let mut out = Vec::new();
    let mut o = 0usize;
    loop {
        let f = |e: vmsnapfs_io::ShortBuffer| (o, e.to_string());
        if region.len() < o + 4 || u32_at(region, o).map_err(f)? == 0 {
            return Ok(out);
        }
        let name_len = u8_at(region, o).map_err(f)? as usize;
        let name_index = u8_at(region, o + 1).map_err(f)?;
        let value_offs = u16_at(region, o + 2).map_err(f)?;
        let value_inum = u32_at(region, o + 4).map_err(f)?;
        let value_size = u32_at(region, o + 8).map_err(f)?;
        let end = o + 16 + name_len;
        if end > region.len() {
            return Err((o, format!("entry name of {name_len} bytes past the region")));
        }
        out.push(Entry {
            name_index,
            name: region[o + 16..end].to_vec(),
            value_offs,
            value_inum,
            value_size,
        });
        o = (end + 3) & !3;
    }
}

/// The value of an entry stored in its region (`values` is the slice its offsets are
/// relative to).
pub fn inline_value<'a>(values: &'a [u8], e: &Entry) -> Result<&'a [u8], String> {
    let start = e.value_offs as usize;
    start
        .checked_add(e.value_size as usize)
        .and_then(|end| values.get(start..end))
        .ok_or_else(|| {
            format!(
                "value of {} bytes at {start} past a {}-byte region",
                e.value_size,
                values.len()
            )
        })
}

/// Checks an xattr block's header: magic, and h_blocks 1.
pub fn check_block_header(b: &[u8]) -> Result<(), String> {
    let f = |e: vmsnapfs_io::ShortBuffer| e.to_string();
    let magic = u32_at(b, 0).map_err(f)?;
    if magic != MAGIC {
        return Err(format!("bad xattr block magic {magic:#010x}"));
    }
    let blocks = u32_at(b, 8).map_err(f)?;
    if blocks != 1 {
        return Err(format!("xattr block spans {blocks} blocks"));
    }
    Ok(())
}

const ACL_USER_OBJ: u16 = 0x01;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_GROUP: u16 = 0x08;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;
const EXT4_ACL_VERSION: u32 = 1;
const POSIX_ACL_XATTR_VERSION: u32 = 2;
const ACL_UNDEFINED_ID: u32 = u32::MAX;

/// Converts an `ext4_acl` value (version 1; 8-byte entries for named users and groups,
/// 4-byte ones otherwise) into the `posix_acl_xattr` form (version 2, 8-byte entries,
/// id -1 where none).
pub fn acl_to_xattr(v: &[u8]) -> Result<Vec<u8>, String> {
    let f = |e: vmsnapfs_io::ShortBuffer| e.to_string();
    let version = u32_at(v, 0).map_err(f)?;
    if version != EXT4_ACL_VERSION {
        return Err(format!("ext4 ACL version {version}"));
    }
    let mut out = POSIX_ACL_XATTR_VERSION.to_le_bytes().to_vec();
    let mut o = 4;
    while o < v.len() {
        let tag = u16_at(v, o).map_err(f)?;
        let perm = u16_at(v, o + 2).map_err(f)?;
        let (id, len) = match tag {
            ACL_USER | ACL_GROUP => (u32_at(v, o + 4).map_err(f)?, 8),
            ACL_USER_OBJ | ACL_GROUP_OBJ | ACL_MASK | ACL_OTHER => (ACL_UNDEFINED_ID, 4),
            t => return Err(format!("ACL entry tag {t:#x} at {o}")),
        };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
        o += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext4_acl_becomes_posix_acl_xattr_v2() {
        // The ext4_acl bytes debugfs showed for `setfacl -m u:1234:rx` (mode 0654).
        let ext4 = [
            1, 0, 0, 0, 1, 0, 6, 0, 2, 0, 5, 0, 0xd2, 4, 0, 0, 4, 0, 4, 0, 0x10, 0, 5, 0, 0x20, 0,
            4, 0,
        ];
        let x = acl_to_xattr(&ext4).unwrap();
        let mut want = vec![2, 0, 0, 0];
        for (tag, perm, id) in [
            (1u16, 6u16, u32::MAX),
            (2, 5, 1234),
            (4, 4, u32::MAX),
            (0x10, 5, u32::MAX),
            (0x20, 4, u32::MAX),
        ] {
            want.extend_from_slice(&tag.to_le_bytes());
            want.extend_from_slice(&perm.to_le_bytes());
            want.extend_from_slice(&id.to_le_bytes());
        }
        assert_eq!(x, want);
        assert!(acl_to_xattr(&[2, 0, 0, 0]).is_err());
        assert!(acl_to_xattr(&[1, 0, 0, 0, 2, 0, 5]).is_err());
    }

    #[test]
    fn entries_stop_at_the_end_marker_and_refuse_overruns() {
        let mut r = vec![0u8; 64];
        r[0] = 3; // name_len
        r[1] = INDEX_USER;
        r[2..4].copy_from_slice(&40u16.to_le_bytes());
        r[8..12].copy_from_slice(&2u32.to_le_bytes());
        r[16..19].copy_from_slice(b"abc");
        r[40..42].copy_from_slice(b"hi");
        let e = parse_entries(&r).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].full_name().as_deref(), Some("user.abc"));
        assert_eq!(inline_value(&r, &e[0]).unwrap(), b"hi");
        r[0] = 250;
        assert!(parse_entries(&r).is_err());
    }
}
