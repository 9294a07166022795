//! Stream markers of streamOptimized extents: a grain marker (`lba`, compressed `size`,
//! then data) or, with size 0, a metadata marker whose type says what follows.

use vmsnapfs_io::le::{u32_at, u64_at};
use vmsnapfs_io::ShortBuffer;

pub const GRAIN_HEADER_LEN: usize = 12;
pub const MARKER_LEN: usize = 512;

pub const TYPE_EOS: u32 = 0;
pub const TYPE_GT: u32 = 1;
pub const TYPE_GD: u32 = 2;
pub const TYPE_FOOTER: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A compressed grain of `size` bytes for virtual sector `lba`.
    Grain { lba: u64, size: u32 },
    /// A metadata marker: `sectors` of metadata of `kind` follow.
    Meta { sectors: u64, kind: u32 },
}

impl Marker {
    /// Decodes the start of a marker: 12 bytes for a grain marker, 16 for a metadata
    /// marker (its type follows the size).
    pub fn parse(b: &[u8]) -> Result<Marker, ShortBuffer> {
        let val = u64_at(b, 0)?;
        let size = u32_at(b, 8)?;
        Ok(if size != 0 {
            Marker::Grain { lba: val, size }
        } else {
            Marker::Meta {
                sectors: val,
                kind: u32_at(b, 12)?,
            }
        })
    }
}

/// The 1536 bytes at the end of a streamOptimized file whose header says GD_AT_END: footer
/// marker, footer (a copy of the header with the real gdOffset), end-of-stream marker.
pub fn check_footer(tail: &[u8; 3 * MARKER_LEN]) -> Result<[u8; 512], String> {
    if !matches!(
        Marker::parse(tail),
        Ok(Marker::Meta {
            kind: TYPE_FOOTER,
            ..
        })
    ) {
        return Err("no footer marker before the end-of-stream marker".into());
    }
    if Marker::parse(&tail[2 * MARKER_LEN..])
        != Ok(Marker::Meta {
            sectors: 0,
            kind: TYPE_EOS,
        })
    {
        return Err("no end-of-stream marker at the end of the file".into());
    }
    let mut footer = [0u8; 512];
    footer.copy_from_slice(&tail[MARKER_LEN..2 * MARKER_LEN]);
    Ok(footer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_markers() {
        let mut b = [0u8; 16];
        b[0] = 8;
        b[8] = 100;
        assert_eq!(Marker::parse(&b), Ok(Marker::Grain { lba: 8, size: 100 }));
        // A grain marker is whole in 12 bytes.
        assert_eq!(
            Marker::parse(&b[..12]),
            Ok(Marker::Grain { lba: 8, size: 100 })
        );
        b[8] = 0;
        b[12] = 2;
        assert_eq!(
            Marker::parse(&b),
            Ok(Marker::Meta {
                sectors: 8,
                kind: TYPE_GD
            })
        );
        // A metadata marker is not, and a short one is an error, not a type of zero.
        assert_eq!(
            Marker::parse(&b[..12]).unwrap_err(),
            ShortBuffer {
                offset: 12,
                len: 4,
                available: 12
            }
        );
    }
}
