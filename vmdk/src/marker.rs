//! Stream markers of streamOptimized extents: a grain marker (`lba`, compressed `size`,
//! then data) or, with size 0, a metadata marker whose type says what follows.

use crate::le::{u32_at, u64_at};

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
    /// Decodes the 16 bytes every marker starts with.
    pub fn parse(b: &[u8; 16]) -> Marker {
        let val = u64_at(b, 0);
        let size = u32_at(b, 8);
        if size != 0 {
            Marker::Grain { lba: val, size }
        } else {
            Marker::Meta {
                sectors: val,
                kind: u32_at(b, 12),
            }
        }
    }
}

/// The 1536 bytes at the end of a streamOptimized file whose header says GD_AT_END: footer
/// marker, footer (a copy of the header with the real gdOffset), end-of-stream marker.
pub fn check_footer(tail: &[u8; 3 * MARKER_LEN]) -> Result<[u8; 512], String> {
    let mut m = [0u8; 16];
    m.copy_from_slice(&tail[..16]);
    if !matches!(
        Marker::parse(&m),
        Marker::Meta {
            kind: TYPE_FOOTER,
            ..
        }
    ) {
        return Err("no footer marker before the end-of-stream marker".into());
    }
    m.copy_from_slice(&tail[2 * MARKER_LEN..2 * MARKER_LEN + 16]);
    if Marker::parse(&m)
        != (Marker::Meta {
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
        assert_eq!(Marker::parse(&b), Marker::Grain { lba: 8, size: 100 });
        b[8] = 0;
        b[12] = 2;
        assert_eq!(
            Marker::parse(&b),
            Marker::Meta {
                sectors: 8,
                kind: TYPE_GD
            }
        );
    }
}
