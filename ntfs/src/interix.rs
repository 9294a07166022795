//! Interix (Services for Unix) special files, as ntfs-3g writes them by default: a file
//! with FILE_ATTRIBUTE_SYSTEM whose unnamed data is an 8-byte magic and a payload, or an
//! empty (not hidden) system file for a FIFO. ntfs-3g reads them back the same way
//! (`ntfs_fuse_getattr`), so do we; anything that does not match exactly stays a
//! regular file.

use vmsnapfs_io::le::{bytes_at, u16s_at, u64_at};

pub const MAGIC_SYMLINK: &[u8; 8] = b"IntxLNK\x01";
pub const MAGIC_CHAR_DEVICE: &[u8; 8] = b"IntxCHR\0";
pub const MAGIC_BLOCK_DEVICE: &[u8; 8] = b"IntxBLK\0";
/// A FIFO spelled out with a magic; ntfs-3g itself writes FIFOs as empty system files.
pub const MAGIC_FIFO: &[u8; 8] = b"IntxFIFO";

const MAGIC_LEN: usize = 8;
/// Magic, then major and minor as little-endian u64.
pub const DEVICE_LEN: u64 = 24;
/// The longest symlink target ntfs-3g accepts: PATH_MAX UTF-16 units.
pub const MAX_TARGET_UNITS: u64 = 4096;
/// No Interix file is larger: a file above this is never read to be classified.
pub const MAX_LEN: u64 = MAGIC_LEN as u64 + 2 * MAX_TARGET_UNITS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Special {
    /// The UTF-16 target, decoded (invalid UTF-16 mapped as in [`crate::name`]).
    Symlink(String),
    CharDevice {
        major: u64,
        minor: u64,
    },
    BlockDevice {
        major: u64,
        minor: u64,
    },
    Fifo,
}

/// Whether a system file of `size` bytes could be an Interix special file, so that its
/// data is worth reading at all.
pub fn may_be_special(size: u64) -> bool {
    size == 0 || size == MAGIC_LEN as u64 || (size > MAGIC_LEN as u64 && size <= MAX_LEN)
}

/// Classifies the whole unnamed data of a system file; `None` means a regular file.
/// `hidden` is FILE_ATTRIBUTE_HIDDEN: an empty hidden system file is not a FIFO.
pub fn parse(data: &[u8], hidden: bool) -> Option<Special> {
    if data.is_empty() {
        return (!hidden).then_some(Special::Fifo);
    }
    if data.len() as u64 > MAX_LEN {
        return None;
    }
    let magic = bytes_at(data, 0, MAGIC_LEN).ok()?;
    let device = || -> Option<(u64, u64)> {
        (data.len() as u64 == DEVICE_LEN).then_some(())?;
        Some((u64_at(data, 8).ok()?, u64_at(data, 16).ok()?))
    };
    match magic {
        m if m == MAGIC_FIFO && data.len() == MAGIC_LEN => Some(Special::Fifo),
        m if m == MAGIC_CHAR_DEVICE => {
            let (major, minor) = device()?;
            Some(Special::CharDevice { major, minor })
        }
        m if m == MAGIC_BLOCK_DEVICE => {
            let (major, minor) = device()?;
            Some(Special::BlockDevice { major, minor })
        }
        m if m == MAGIC_SYMLINK => {
            let rest = data.len() - MAGIC_LEN;
            // An odd length or an empty target is not something ntfs-3g wrote.
            if rest == 0 || !rest.is_multiple_of(2) {
                return None;
            }
            let units = u16s_at(data, MAGIC_LEN, rest / 2).ok()?;
            if units.contains(&0) {
                return None;
            }
            Some(Special::Symlink(crate::name::from_utf16(&units)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(target: &str) -> Vec<u8> {
        let mut d = MAGIC_SYMLINK.to_vec();
        d.extend(target.encode_utf16().flat_map(|u| u.to_le_bytes()));
        d
    }

    #[test]
    fn symlinks_devices_and_fifos() {
        assert_eq!(
            parse(&link("rel/target.txt"), false),
            Some(Special::Symlink("rel/target.txt".into()))
        );
        let mut dev = MAGIC_BLOCK_DEVICE.to_vec();
        dev.extend(8u64.to_le_bytes());
        dev.extend(1u64.to_le_bytes());
        assert_eq!(
            parse(&dev, false),
            Some(Special::BlockDevice { major: 8, minor: 1 })
        );
        dev[..8].copy_from_slice(MAGIC_CHAR_DEVICE);
        assert_eq!(
            parse(&dev, true),
            Some(Special::CharDevice { major: 8, minor: 1 })
        );
        assert_eq!(parse(&[], false), Some(Special::Fifo));
        assert_eq!(parse(&[], true), None);
        assert_eq!(parse(MAGIC_FIFO, false), Some(Special::Fifo));
    }

    #[test]
    fn anything_else_is_a_regular_file() {
        let mut odd = link("abc");
        odd.push(b'x');
        assert_eq!(parse(&odd, false), None);
        assert_eq!(parse(MAGIC_SYMLINK, false), None);
        let mut bad = link("abc");
        bad[7] = 2;
        assert_eq!(parse(&bad, false), None);
        assert_eq!(parse(&link("a\0b"), false), None);
        let mut short_dev = MAGIC_CHAR_DEVICE.to_vec();
        short_dev.extend([0u8; 15]);
        assert_eq!(parse(&short_dev, false), None);
        assert_eq!(parse(&link(&"x".repeat(4097)), false), None);
        assert_eq!(parse(b"MZ\x90\0", false), None);
        assert!(!may_be_special(MAX_LEN + 1));
    }
}
