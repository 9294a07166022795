//! $EA_INFORMATION and $EA: OS/2-style extended attributes, kept by NTFS for WSL's POSIX
//! metadata ($LXUID, $LXGID, $LXMOD, $LXDEV) among others. $EA is a packed list of
//! FILE_FULL_EA_INFORMATION entries: next-entry offset (u32), flags (u8), name length
//! (u8), value length (u16), the ASCII name and a NUL, then the value.

use crate::fields::short;
use vmsnapfs_io::le::{bytes_at, u16_at, u32_at, u8_at};

/// The EA must be understood to use the file (FILE_NEED_EA).
pub const FLAG_NEED_EA: u8 = 0x80;
const ENTRY_HEADER: usize = 8;
/// More entries than fit in the largest $EA Windows allows (64 KiB) is corruption.
const MAX_ENTRIES: usize = 65536 / ENTRY_HEADER;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ea {
    pub flags: u8,
    /// The name as stored (ASCII; Windows upper-cases it).
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// $EA_INFORMATION: sizes that let Windows answer without reading $EA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EaInformation {
    /// Size of the packed (OS/2 FEA) list.
    pub packed_size: u16,
    /// How many EAs carry [`FLAG_NEED_EA`].
    pub need_ea_count: u16,
    /// Size of the $EA value.
    pub unpacked_size: u32,
}

pub fn parse_information(b: &[u8]) -> Result<EaInformation, String> {
    let f = short("$EA_INFORMATION truncated");
    Ok(EaInformation {
        packed_size: u16_at(b, 0).map_err(&f)?,
        need_ea_count: u16_at(b, 2).map_err(&f)?,
        unpacked_size: u32_at(b, 4).map_err(&f)?,
    })
}

/// Every entry of a $EA value, in order. An entry reaching past the value, or a next
/// offset that would overlap the entry, is an error naming the entry's offset.
pub fn parse(b: &[u8]) -> Result<Vec<Ea>, String> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < b.len() {
        if out.len() >= MAX_ENTRIES {
            return Err("$EA has too many entries".into());
        }
        let at = |what: &'static str| move |e| format!("$EA entry at {off}: {what}: {e}");
        let next = u32_at(b, off).map_err(at("truncated"))? as usize;
        let flags = u8_at(b, off + 4).map_err(at("truncated"))?;
        let name_len = u8_at(b, off + 5).map_err(at("truncated"))? as usize;
        let value_len = u16_at(b, off + 6).map_err(at("truncated"))? as usize;
        let name = bytes_at(b, off + ENTRY_HEADER, name_len).map_err(at("name out of bounds"))?;
        let value_at = off + ENTRY_HEADER + name_len + 1;
        let value = bytes_at(b, value_at, value_len).map_err(at("value out of bounds"))?;
        let len = ENTRY_HEADER + name_len + 1 + value_len;
        out.push(Ea {
            flags,
            name: name.to_vec(),
            value: value.to_vec(),
        });
        if next == 0 {
            break;
        }
        if next < len {
            return Err(format!(
                "$EA entry at {off}: next entry at +{next} overlaps its {len} bytes"
            ));
        }
        off += next;
    }
    Ok(out)
}

/// POSIX metadata that WSL (and ntfs-3g's `special_files=wsl`) keep in EAs. A field is
/// `None` when its EA is absent or does not have the size WSL writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LxMetadata {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `st_mode`: file type and permission bits.
    pub mode: Option<u32>,
    /// A device's (major, minor).
    pub device: Option<(u32, u32)>,
}

pub const LXUID: &[u8] = b"$LXUID";
pub const LXGID: &[u8] = b"$LXGID";
pub const LXMOD: &[u8] = b"$LXMOD";
pub const LXDEV: &[u8] = b"$LXDEV";

impl LxMetadata {
    pub fn from_eas(eas: &[Ea]) -> LxMetadata {
        let get = |n: &[u8]| eas.iter().find(|e| e.name.eq_ignore_ascii_case(n));
        let u32v = |n: &[u8]| {
            get(n)
                .filter(|e| e.value.len() == 4)
                .and_then(|e| u32_at(&e.value, 0).ok())
        };
        LxMetadata {
            uid: u32v(LXUID),
            gid: u32v(LXGID),
            mode: u32v(LXMOD),
            device: get(LXDEV)
                .filter(|e| e.value.len() == 8)
                .and_then(|e| Some((u32_at(&e.value, 0).ok()?, u32_at(&e.value, 4).ok()?))),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == LxMetadata::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ntfs-3g `special_files=wsl` wrote for `mknod c 4 6` (its system.ntfs_ea).
    const NTFS3G_CHR: &str =
        "1400000000060400244c584d4f4400a4210000001800000000060800244c5844455600040000000600000000";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ntfs3g_wsl_device() {
        let eas = parse(&unhex(NTFS3G_CHR)).unwrap();
        assert_eq!(eas.len(), 2);
        assert_eq!(eas[0].name, b"$LXMOD");
        let lx = LxMetadata::from_eas(&eas);
        assert_eq!(lx.mode, Some(0o20644));
        assert_eq!(lx.device, Some((4, 6)));
        assert_eq!(lx.uid, None);
    }

    #[test]
    fn damaged_lists_are_errors() {
        let good = unhex(NTFS3G_CHR);
        for cut in [1, 7, 12, 18, 30] {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut overlap = good.clone();
        overlap[0] = 4;
        assert!(parse(&overlap).is_err());
        let mut long = good.clone();
        long[6] = 0xff;
        assert!(parse(&long).is_err());
        assert_eq!(parse(&[]).unwrap(), vec![]);
        // A value of the wrong size is ignored, not misread.
        let mut eas = parse(&good).unwrap();
        eas[0].value.push(0);
        assert_eq!(LxMetadata::from_eas(&eas).mode, None);
    }

    #[test]
    fn information() {
        let i = parse_information(&[8, 0, 1, 0, 20, 0, 0, 0]).unwrap();
        assert_eq!(i.need_ea_count, 1);
        assert_eq!(i.unpacked_size, 20);
        assert!(parse_information(&[0; 7]).is_err());
    }
}
