//! $REPARSE_POINT: symlinks, junctions, and the tags other filter drivers own.

use crate::fields::short;
use vmsnapfs_io::le::{bytes_at, u16_at, u16s_at, u32_at};
use vmsnapfs_io::ShortBuffer;

pub const TAG_MOUNT_POINT: u32 = 0xA000_0003;
pub const TAG_SYMLINK: u32 = 0xA000_000C;
pub const TAG_DEDUP: u32 = 0x8000_0013;
pub const TAG_WOF: u32 = 0x8000_0017;
pub const TAG_LX_SYMLINK: u32 = 0xA000_001D;
/// WSL special files: the reparse point only marks the type, the device numbers are in
/// the $LXDEV extended attribute.
pub const TAG_LX_FIFO: u32 = 0x8000_0024;
pub const TAG_LX_CHR: u32 = 0x8000_0025;
pub const TAG_LX_BLK: u32 = 0x8000_0026;

const SYMLINK_FLAG_RELATIVE: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    Symlink,
    Junction,
    /// A WSL (LX) symlink: a POSIX target stored as UTF-8, kept verbatim.
    WslSymlink,
    /// An Interix symlink (a system file holding `IntxLNK\x01` and a UTF-16 target), as
    /// ntfs-3g writes `ln -s` by default; the target is kept verbatim.
    Interix,
}

/// Tags that [`parse_link`] decodes.
pub fn is_link_tag(tag: u32) -> bool {
    matches!(tag, TAG_SYMLINK | TAG_MOUNT_POINT | TAG_LX_SYMLINK)
}

/// A decoded symlink or junction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReparseTarget {
    pub kind: LinkKind,
    /// True for a relative symlink (the target is relative to the link's directory).
    pub relative: bool,
    /// The target with `/` separators. Relative targets are kept relative. Absolute
    /// Windows targets (`\??\C:\dir\x`, `C:\dir\x`, `\dir\x`) lose their drive prefix and
    /// become volume-rooted (`/dir/x`), so a FUSE layer can prefix its own mount point and
    /// the link stays inside this volume. Targets on other volumes (UNC, `\??\Volume{..}`)
    /// are converted the same way on a best-effort basis and flagged by `foreign`.
    pub target: String,
    /// The absolute target names a UNC share or volume GUID path rather than a drive.
    pub foreign: bool,
    pub substitute_name: String,
    pub print_name: String,
}

pub fn tag(b: &[u8]) -> Result<u32, ShortBuffer> {
    u32_at(b, 0)
}

pub fn parse_link(b: &[u8]) -> Result<ReparseTarget, String> {
    let tag = u32_at(b, 0).map_err(short("reparse data truncated"))?;
    let data_len = u16_at(b, 4).map_err(short("reparse data truncated"))? as usize;
    let data = bytes_at(b, 8, data_len).map_err(short("reparse data length out of bounds"))?;
    let (kind, path_base, relative) = match tag {
        TAG_SYMLINK => {
            let flags = u32_at(data, 8).map_err(short("symlink data truncated"))?;
            (LinkKind::Symlink, 12, flags & SYMLINK_FLAG_RELATIVE != 0)
        }
        TAG_MOUNT_POINT => (LinkKind::Junction, 8, false),
        TAG_LX_SYMLINK => {
            // u32 version (2), then the target in UTF-8 up to the end of the data.
            let t = data.get(4..).ok_or("WSL symlink data truncated")?;
            if t.is_empty() {
                return Err("WSL symlink has an empty target".into());
            }
            let target = String::from_utf8_lossy(t).into_owned();
            return Ok(ReparseTarget {
                kind: LinkKind::WslSymlink,
                relative: !target.starts_with('/'),
                foreign: false,
                substitute_name: target.clone(),
                print_name: target.clone(),
                target,
            });
        }
        _ => return Err(format!("tag {tag:#010x} is not a link")),
    };
    // Name offsets are relative to the path buffer, lengths in bytes.
    let get = |o: usize| -> Result<String, String> {
        let off = u16_at(data, o).map_err(short("link data truncated"))? as usize;
        let len = u16_at(data, o + 2).map_err(short("link data truncated"))? as usize;
        let units =
            u16s_at(data, path_base + off, len / 2).map_err(short("link name out of bounds"))?;
        Ok(crate::name::from_utf16(&units))
    };
    let substitute_name = get(0)?;
    let print_name = get(4)?;
    let src = if substitute_name.is_empty() {
        &print_name
    } else {
        &substitute_name
    };
    let (target, foreign) = if relative {
        (src.replace('\\', "/"), false)
    } else {
        absolute_to_volume_path(src)
    };
    Ok(ReparseTarget {
        kind,
        relative,
        target,
        foreign,
        substitute_name,
        print_name,
    })
}

fn absolute_to_volume_path(p: &str) -> (String, bool) {
    let mut s = p;
    for prefix in ["\\??\\", "\\\\?\\", "\\\\.\\"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest;
            break;
        }
    }
    let mut foreign = false;
    let bytes = s.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        s = &s[2..];
    } else if let Some(rest) = s.strip_prefix("UNC\\") {
        foreign = true;
        s = rest;
    } else if s.starts_with("Volume{") {
        foreign = true;
        s = s.find('\\').map(|i| &s[i..]).unwrap_or("");
    } else if let Some(rest) = s.strip_prefix("\\\\") {
        foreign = true;
        s = rest;
    }
    let mut out = String::from("/");
    out.push_str(s.trim_start_matches('\\').replace('\\', "/").as_str());
    (out, foreign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_stay_in_volume() {
        assert_eq!(
            absolute_to_volume_path("\\??\\C:\\Users\\x"),
            ("/Users/x".to_string(), false)
        );
        assert_eq!(absolute_to_volume_path("D:\\"), ("/".to_string(), false));
        assert!(absolute_to_volume_path("\\??\\UNC\\srv\\share").1);
    }
}
