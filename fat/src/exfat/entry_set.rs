//! A file's directory entry set: File entry, Stream Extension, File Name entries, and
//! the SetChecksum that covers them all (exFAT spec §6.3.3).

use super::{file_directory_entry as fde, file_name_entry as fne, stream_extension as se};
use crate::error::{Error, Result};
use crate::oem::sanitize;
use crate::{Attributes, FileKind, Metadata};

/// SecondaryCount ranges from 2 (stream + one name) to 18 (stream + 17 names = 255 units).
pub(crate) const MIN_SECONDARY: usize = 2;
pub(crate) const MAX_SECONDARY: usize = 18;

pub(crate) fn set_checksum(set: &[u8]) -> u16 {
    set.iter().enumerate().fold(0u16, |s, (i, &b)| {
        if i == 2 || i == 3 {
            s
        } else {
            s.rotate_right(1).wrapping_add(u16::from(b))
        }
    })
}

pub(crate) struct ParsedSet {
    pub name: Option<String>,
    pub meta: Metadata,
    pub contiguous: bool,
    /// `Some` when the set checksum does not match: the entry is listed but unusable.
    pub damage: Option<Error>,
}

/// Parses the set starting at the File entry `set[0..32]`; `set` holds exactly the
/// 1 + SecondaryCount entries. `offset` is the File entry's volume offset, for errors.
pub(crate) fn parse(set: &[u8], offset: u64) -> Result<ParsedSet> {
    let corrupt = |reason: &str| Error::CorruptEntry {
        offset,
        reason: reason.to_string(),
    };
    if set.len() < 32 * (1 + MIN_SECONDARY) || !set.len().is_multiple_of(32) || set[0] != fde::TYPE
    {
        return Err(corrupt("truncated or not a File entry set"));
    }
    let short = Error::short_entry(offset);
    let file = fde::FileDirectoryEntry::parse(&set[..32]).map_err(&short)?;
    if usize::from(file.secondary_count) + 1 != set.len() / 32 {
        return Err(corrupt("SecondaryCount does not match the set"));
    }
    if set[32] != se::TYPE {
        return Err(corrupt("File entry not followed by a Stream Extension"));
    }
    let stream = se::StreamExtension::parse(&set[32..64]).map_err(&short)?;
    let computed = set_checksum(set);
    let damage = (computed != file.set_checksum).then_some(Error::SetChecksum {
        offset,
        computed,
        stored: file.set_checksum,
    });
    let name_len = usize::from(stream.name_length);
    let mut units = Vec::with_capacity(name_len);
    for e in set[64..].chunks_exact(32) {
        if units.len() >= name_len {
            break;
        }
        if e[0] != fne::TYPE {
            break;
        }
        let name = fne::units(e).map_err(&short)?;
        units.extend(name.into_iter().take(name_len - units.len()));
    }
    let name = (units.len() == name_len && name_len > 0)
        .then(|| sanitize(String::from_utf16_lossy(&units)));
    let is_dir = file.attributes & Attributes::DIRECTORY != 0;
    let meta = Metadata {
        kind: if is_dir {
            FileKind::Directory
        } else {
            FileKind::File
        },
        size: stream.data_length,
        valid_data_length: stream.valid_data_length.min(stream.data_length),
        created: file.created(),
        modified: file.modified(),
        accessed: file.accessed(),
        attributes: Attributes(file.attributes & 0x37),
        first_cluster: stream.first_cluster,
    };
    Ok(ParsedSet {
        name,
        meta,
        contiguous: stream.no_fat_chain(),
        damage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_set(name: &str) -> Vec<u8> {
        let units: Vec<u16> = name.encode_utf16().collect();
        let names = units.len().div_ceil(15);
        let mut set = vec![0u8; 32 * (2 + names)];
        set[0] = fde::TYPE;
        set[1] = (1 + names) as u8;
        set[4] = 0x20;
        set[32] = se::TYPE;
        set[33] = 0x03;
        set[35] = units.len() as u8;
        set[32 + 8] = 10; // valid data length
        set[32 + 20] = 5; // first cluster
        set[32 + 24] = 20; // data length
        for (i, u) in units.iter().enumerate() {
            let e = 64 + (i / 15) * 32;
            set[e] = fne::TYPE;
            let o = e + 2 + (i % 15) * 2;
            set[o..o + 2].copy_from_slice(&u.to_le_bytes());
        }
        let c = set_checksum(&set);
        set[2..4].copy_from_slice(&c.to_le_bytes());
        set
    }

    #[test]
    fn parses_and_checks() {
        let set = make_set("a file with a rather long name.txt");
        let p = parse(&set, 4096).unwrap();
        assert_eq!(
            p.name.as_deref(),
            Some("a file with a rather long name.txt")
        );
        assert!(p.damage.is_none());
        assert!(p.contiguous);
        assert_eq!(p.meta.size, 20);
        assert_eq!(p.meta.valid_data_length, 10);
        let mut bad = set.clone();
        bad[70] ^= 1;
        assert!(matches!(
            parse(&bad, 4096).unwrap().damage,
            Some(Error::SetChecksum { .. })
        ));
        assert!(parse(&set[..64], 4096).is_err());
    }
}
