//! XFS's own POSIX ACL format (`xfs_acl`: big-endian count, then `xfs_acl_entry` tag, id,
//! perm), stored as the ROOT-namespace attributes SGI_ACL_FILE / SGI_ACL_DEFAULT, and
//! its conversion to the Linux `posix_acl_xattr` v2 format of `system.posix_acl_*`.
use crate::be::{u16_at, u32_at};
use crate::error::Damage;

pub const SGI_ACL_FILE: &[u8] = b"SGI_ACL_FILE";
pub const SGI_ACL_DEFAULT: &[u8] = b"SGI_ACL_DEFAULT";
const ACL_USER: u32 = 0x02;
const ACL_GROUP: u32 = 0x08;
const MAX_ENTRIES: usize = 8191;

/// The `system.posix_acl_*` bytes for one `xfs_acl` value.
pub fn to_linux(v: &[u8]) -> Result<Vec<u8>, Damage> {
    let n = u32_at(v, 0)? as usize;
    if n > MAX_ENTRIES || 4 + n * 12 > v.len() {
        return Err(Damage::new(format!(
            "ACL of {n} entries in {} bytes",
            v.len()
        )));
    }
    let mut out = Vec::with_capacity(4 + n * 8);
    out.extend_from_slice(&2u32.to_le_bytes());
    for i in 0..n {
        let e = 4 + i * 12;
        let tag = u32_at(v, e)?;
        let id = u32_at(v, e + 4)?;
        let perm = u16_at(v, e + 8)?;
        let id = if tag == ACL_USER || tag == ACL_GROUP {
            id
        } else {
            u32::MAX
        };
        out.extend_from_slice(&(tag as u16).to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn converts_user_obj_and_named_user() {
        let mut v = 2u32.to_be_bytes().to_vec();
        for (tag, id, perm) in [(1u32, 0u32, 6u16), (2, 1000, 4)] {
            v.extend_from_slice(&tag.to_be_bytes());
            v.extend_from_slice(&id.to_be_bytes());
            v.extend_from_slice(&perm.to_be_bytes());
            v.extend_from_slice(&[0, 0]);
        }
        let l = super::to_linux(&v).unwrap();
        assert_eq!(l[..4], 2u32.to_le_bytes());
        assert_eq!(l[4..12], [1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(l[12..20], [2, 0, 4, 0, 0xe8, 3, 0, 0]);
        assert!(super::to_linux(&v[..20]).is_err());
    }
}
