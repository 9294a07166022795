//! Filling a buffer from a source that may return less than asked.
//!
//! The readers' `read` calls (a guest file, a stream, an extent) return short at the end
//! of what they hold and may return short before it (one run, one extent at a time). A
//! caller that wants a whole buffer loops until it is full or the source has no more;
//! written out by hand, that loop is where an off-by-one or an endless loop on a zero-
//! length read creeps in, so it is written once.

/// Fills `buf` by calling `read(filled, rest)` with the number of bytes filled so far
/// and the part of `buf` still empty, until `buf` is full or `read` returns 0 (the end
/// of the source). Returns how many bytes were filled: less than `buf.len()` only at the
/// end of the source. The first error is returned as is; what was filled before it is
/// then unspecified.
///
/// `filled` is an offset into `buf`; the caller adds its own starting position, e.g.
/// `fill(buf, |at, b| file.read(pos + at as u64, b))`.
pub fn fill<E>(
    buf: &mut [u8],
    mut read: impl FnMut(usize, &mut [u8]) -> Result<usize, E>,
) -> Result<usize, E> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = read(filled, &mut buf[filled..])?;
        if n == 0 {
            break;
        }
        // A source claiming more than it was given cannot have filled it; clamping keeps
        // the loop from indexing past the buffer.
        filled += n.min(buf.len() - filled);
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source of `data` that returns at most `step` bytes a call.
    fn stepped<'a>(
        data: &'a [u8],
        step: usize,
        calls: &'a mut usize,
    ) -> impl FnMut(usize, &mut [u8]) -> Result<usize, String> + 'a {
        move |at, b| {
            *calls += 1;
            let n = b.len().min(step).min(data.len().saturating_sub(at));
            b[..n].copy_from_slice(&data[at..at + n]);
            Ok(n)
        }
    }

    #[test]
    fn pieces_are_put_together_until_the_buffer_is_full() {
        let data: Vec<u8> = (0..100).collect();
        let mut calls = 0;
        let mut buf = [0u8; 50];
        assert_eq!(fill(&mut buf, stepped(&data, 7, &mut calls)), Ok(50));
        assert_eq!(buf[..], data[..50]);
        assert_eq!(calls, 8, "stops as soon as the buffer is full");
    }

    #[test]
    fn a_short_source_fills_what_it_has() {
        let data: Vec<u8> = (0..30).collect();
        let mut calls = 0;
        let mut buf = [0xffu8; 50];
        assert_eq!(fill(&mut buf, stepped(&data, 8, &mut calls)), Ok(30));
        assert_eq!(buf[..30], data[..]);
        assert!(
            buf[30..].iter().all(|&b| b == 0xff),
            "untouched past the end"
        );
    }

    #[test]
    fn a_zero_length_read_ends_the_fill() {
        let mut calls = 0;
        let mut buf = [0u8; 10];
        assert_eq!(fill(&mut buf, stepped(&[], 4, &mut calls)), Ok(0));
        assert_eq!(calls, 1);
    }

    #[test]
    fn an_empty_buffer_reads_nothing() {
        let mut calls = 0;
        assert_eq!(fill(&mut [], stepped(&[1, 2, 3], 4, &mut calls)), Ok(0));
        assert_eq!(calls, 0);
    }

    #[test]
    fn errors_pass_through_and_stop_the_fill() {
        let mut calls = 0;
        let mut buf = [0u8; 10];
        let r = fill(&mut buf, |at, b| {
            calls += 1;
            if at >= 4 {
                return Err(std::io::Error::other(format!("bad sector at {at}")));
            }
            b[..4].fill(1);
            Ok(4)
        });
        assert_eq!(r.unwrap_err().to_string(), "bad sector at 4");
        assert_eq!(calls, 2);
    }

    #[test]
    fn a_source_claiming_too_much_cannot_overrun() {
        let mut buf = [0u8; 10];
        assert_eq!(fill(&mut buf, |_, b| Ok::<_, ()>(b.len() + 5)), Ok(10));
    }
}
