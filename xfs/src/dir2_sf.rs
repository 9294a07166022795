//! Shortform directories, `xfs_dir2_sf_hdr` + `xfs_dir2_sf_entry`, inline in the inode's
//! data fork. "." and ".." are not stored: the header holds the parent.
use crate::be::{bytes_at, u16_at, u32_at, u64_at, u8_at};
use crate::error::Damage;

/// A directory entry as stored: name, inode number, file type byte (0 when the volume
/// has no ftype field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub ftype: u8,
}

/// The parent inode and the entries of a shortform directory fork of `size` bytes.
pub fn parse(fork: &[u8], size: u64, ftype: bool) -> Result<(u64, Vec<RawEntry>), Damage> {
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= fork.len())
        .ok_or_else(|| {
            Damage::new(format!(
                "shortform directory of {size} bytes in a {}-byte fork",
                fork.len()
            ))
        })?;
    let b = &fork[..size];
    let count = u8_at(b, 0)? as usize;
    let i8count = u8_at(b, 1)? as usize;
    let wide = i8count != 0;
    let inolen = if wide { 8 } else { 4 };
    let read_ino = |o: usize| -> Result<u64, Damage> {
        Ok(if wide {
            u64_at(b, o)?
        } else {
            u32_at(b, o)? as u64
        })
    };
    let parent = read_ino(2)?;
    let n = if wide { i8count } else { count };
    let mut pos = 2 + inolen;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let namelen = u8_at(b, pos)? as usize;
        if namelen == 0 {
            return Err(Damage::new(format!("empty name at byte {pos}")));
        }
        let _offset = u16_at(b, pos + 1)?;
        let name = bytes_at(b, pos + 3, namelen)?.to_vec();
        let mut p = pos + 3 + namelen;
        let ft = if ftype {
            p += 1;
            u8_at(b, p - 1)?
        } else {
            0
        };
        let ino = read_ino(p)?;
        pos = p + inolen;
        out.push(RawEntry {
            name,
            ino,
            ftype: ft,
        });
    }
    Ok((parent, out))
}
