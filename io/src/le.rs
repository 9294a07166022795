//! Little-endian fields of on-disk structures, read out of a byte buffer.
//!
//! Every parser reads fields at offsets that come from the medium, and a corrupt or
//! truncated image is the normal case for a backup tool, not an exception. So a field
//! that does not fit in the buffer is always an error carrying where it was wanted:
//! never a panic (one bad image must not take the mount down), never a zero (a zero
//! length or offset looks valid and sends a parser down the wrong path silently).

/// A field that does not fit in its buffer: `len` bytes wanted at `offset` of a buffer
/// of `available` bytes. Parsers wrap it into their own error, adding which structure
/// and where on the medium that buffer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{len} bytes wanted at offset {offset} of a {available}-byte buffer")]
pub struct ShortBuffer {
    pub offset: usize,
    pub len: usize,
    pub available: usize,
}

/// The `len` bytes at `offset`.
pub fn bytes_at(b: &[u8], offset: usize, len: usize) -> Result<&[u8], ShortBuffer> {
    offset
        .checked_add(len)
        .and_then(|end| b.get(offset..end))
        .ok_or(ShortBuffer {
            offset,
            len,
            available: b.len(),
        })
}

/// The `N` bytes at `offset`, as an array.
pub fn array_at<const N: usize>(b: &[u8], offset: usize) -> Result<[u8; N], ShortBuffer> {
    let s = bytes_at(b, offset, N)?;
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    Ok(a)
}

pub fn u8_at(b: &[u8], offset: usize) -> Result<u8, ShortBuffer> {
    array_at::<1>(b, offset).map(|[v]| v)
}

pub fn u16_at(b: &[u8], offset: usize) -> Result<u16, ShortBuffer> {
    array_at(b, offset).map(u16::from_le_bytes)
}

pub fn u32_at(b: &[u8], offset: usize) -> Result<u32, ShortBuffer> {
    array_at(b, offset).map(u32::from_le_bytes)
}

pub fn u64_at(b: &[u8], offset: usize) -> Result<u64, ShortBuffer> {
    array_at(b, offset).map(u64::from_le_bytes)
}

/// `count` little-endian u16s at `offset`: the UTF-16 code units of an on-disk name.
pub fn u16s_at(b: &[u8], offset: usize, count: usize) -> Result<Vec<u16>, ShortBuffer> {
    let len = count.saturating_mul(2);
    Ok(bytes_at(b, offset, len)?
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_little_endian_up_to_the_last_byte() {
        let b: Vec<u8> = (1..=10).collect();
        assert_eq!(u8_at(&b, 9), Ok(10));
        assert_eq!(u16_at(&b, 8), Ok(0x0a09));
        assert_eq!(u32_at(&b, 6), Ok(0x0a09_0807));
        assert_eq!(u64_at(&b, 2), Ok(0x0a09_0807_0605_0403));
        assert_eq!(array_at::<3>(&b, 7), Ok([8, 9, 10]));
        assert_eq!(u16s_at(&b, 6, 2), Ok(vec![0x0807, 0x0a09]));
        assert_eq!(u16s_at(&b, 10, 0), Ok(vec![]));
        assert_eq!(bytes_at(&b, 10, 0), Ok(&[][..]));
        assert_eq!(bytes_at(&b, 0, 10), Ok(&b[..]));
    }

    #[test]
    fn a_field_past_the_end_is_an_error_saying_where() {
        let b = [0u8; 10];
        let short = |offset, len| ShortBuffer {
            offset,
            len,
            available: 10,
        };
        assert_eq!(u8_at(&b, 10), Err(short(10, 1)));
        assert_eq!(u16_at(&b, 9), Err(short(9, 2)));
        assert_eq!(u32_at(&b, 7), Err(short(7, 4)));
        assert_eq!(u64_at(&b, 3), Err(short(3, 8)));
        assert_eq!(bytes_at(&b, 11, 0), Err(short(11, 0)));
        assert_eq!(array_at::<4>(&b, 100), Err(short(100, 4)));
        assert_eq!(u16s_at(&b, 4, 4), Err(short(4, 8)));
        assert_eq!(
            u64_at(&[], 0),
            Err(ShortBuffer {
                offset: 0,
                len: 8,
                available: 0
            })
        );
    }

    #[test]
    fn offsets_near_the_top_of_the_address_space_do_not_wrap() {
        let b = [0u8; 10];
        assert!(u64_at(&b, usize::MAX - 3).is_err());
        assert!(bytes_at(&b, 2, usize::MAX).is_err());
        assert!(u16s_at(&b, 0, usize::MAX / 2 + 1).is_err());
    }

    #[test]
    fn the_error_reads_as_a_sentence() {
        let e = u32_at(&[0u8; 2], 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "4 bytes wanted at offset 1 of a 2-byte buffer"
        );
    }
}
