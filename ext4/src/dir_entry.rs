//! Directory entries (`struct ext4_dir_entry_2`; `ext4_dir_entry` without the filetype
//! feature, whose name length is then 16 bits): inode u32, rec_len u16, name_len,
//! file_type, name. Entries with inode 0 (unused, htree node padding, the checksum
//! tail) are skipped, so htree blocks read as linear leaves.

use vmsnapfs_io::le::{u16_at, u32_at, u8_at};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub ino: u32,
    pub name: Vec<u8>,
    /// 0 unknown, 1 file, 2 dir, 3 chr, 4 blk, 5 fifo, 6 sock, 7 symlink.
    pub file_type: u8,
}

/// rec_len as stored, decoded for blocks of up to 64 KiB (ext4_rec_len_from_disk).
pub fn rec_len_from_disk(len: u16, block_size: usize) -> usize {
    if len == 65535 || len == 0 {
        block_size
    } else {
        (len as usize & 65532) | ((len as usize & 3) << 16)
    }
}

/// Parses the entries of a directory region (one block, or inline data). An entry
/// whose rec_len is short, unaligned or past the region is damage, reported with its
/// byte offset in the region.
pub fn parse_block(b: &[u8], filetype: bool) -> Result<Vec<RawEntry>, (usize, String)> {
    let mut out = Vec::new();
    let mut o = 0usize;
    while o < b.len() {
        let err = |m: String| Err((o, m));
        if b.len() - o < 8 {
            return err(format!(
                "{} trailing bytes, no room for an entry",
                b.len() - o
            ));
        }
        let f = |e: vmsnapfs_io::ShortBuffer| (o, e.to_string());
        let ino = u32_at(b, o).map_err(f)?;
        let rec_len = rec_len_from_disk(u16_at(b, o + 4).map_err(f)?, b.len());
        let (name_len, file_type) = if filetype {
            (
                u8_at(b, o + 6).map_err(f)? as usize,
                u8_at(b, o + 7).map_err(f)?,
            )
        } else {
            (u16_at(b, o + 6).map_err(f)? as usize, 0)
        };
        if rec_len < 8 || rec_len & 3 != 0 || rec_len > b.len() - o {
            return err(format!("rec_len {rec_len}"));
        }
        if ino != 0 {
            if name_len == 0 || 8 + name_len > rec_len {
                return err(format!("name_len {name_len} in rec_len {rec_len}"));
            }
            out.push(RawEntry {
                ino,
                name: b[o + 8..o + 8 + name_len].to_vec(),
                file_type: if file_type <= 7 { file_type } else { 0 },
            });
        }
        o += rec_len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rec_len_encoding_for_64k_blocks() {
        assert_eq!(rec_len_from_disk(12, 4096), 12);
        assert_eq!(rec_len_from_disk(65535, 65536), 65536);
        assert_eq!(rec_len_from_disk(0, 65536), 65536);
        assert_eq!(rec_len_from_disk(0xFFFC | 1, 1 << 17), 0x1FFFC);
    }

    #[test]
    fn entries_and_damage() {
        let mut b = vec![0u8; 32];
        b[0..4].copy_from_slice(&12u32.to_le_bytes());
        b[4..6].copy_from_slice(&16u16.to_le_bytes());
        b[6] = 3;
        b[7] = 1;
        b[8..11].copy_from_slice(b"abc");
        b[16..20].copy_from_slice(&0u32.to_le_bytes()); // unused entry
        b[20..22].copy_from_slice(&16u16.to_le_bytes());
        let e = parse_block(&b, true).unwrap();
        assert_eq!(
            e,
            vec![RawEntry {
                ino: 12,
                name: b"abc".to_vec(),
                file_type: 1
            }]
        );
        b[4..6].copy_from_slice(&6u16.to_le_bytes());
        assert_eq!(parse_block(&b, true).unwrap_err().0, 0);
        b[4..6].copy_from_slice(&16u16.to_le_bytes());
        b[6] = 20;
        assert!(parse_block(&b, true).is_err());
    }
}
