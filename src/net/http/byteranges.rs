//! The answer to a request for several ranges at once: a `multipart/byteranges` body
//! (RFC 9110, 14.6), each part headed by the `Content-Range` it holds. Parts are found
//! by their lengths, never by searching the data for the boundary, so data that
//! happens to hold the boundary's bytes cannot cut a part short.

use std::ops::Range;

/// The boundary of a `multipart/byteranges` content type; None for any other type.
pub fn boundary(content_type: &str) -> Option<&str> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/byteranges") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        (k.trim().eq_ignore_ascii_case("boundary") && !v.is_empty()).then_some(v)
    })
}

/// The first byte and the last of a `Content-Range: bytes FIRST-LAST/TOTAL` value.
pub fn content_range(value: &str) -> Option<(u64, u64)> {
    let (span, _total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

/// A part's head (its delimiter line and headers) or the body's epilogue longer than
/// this is not a server's answer to a request of ours.
const HEAD_MAX: usize = 8 << 10;
/// Bytes read at a time while looking for a part's head.
const HEAD_READ: u64 = 512;

/// Why a multipart body could not be read.
#[derive(Debug)]
pub enum PartError {
    /// Reading the body failed (the connection, a timeout).
    Io(std::io::Error),
    /// The body is not a well-formed answer.
    Malformed(&'static str),
}

/// Reads a `multipart/byteranges` body of known length as it arrives: each part's head
/// is parsed from a small look-ahead, and its data goes straight into the caller's
/// buffer (`data`), with no copy of the whole body first. `read` fills its buffer with
/// the body's next bytes exactly.
pub struct PartReader<F> {
    read: F,
    /// The body's length, and its bytes not yet read.
    len: u64,
    left: u64,
    /// Read and not yet used: `ahead[pos..]`.
    ahead: Vec<u8>,
    pos: usize,
    delim: Vec<u8>,
    /// Bytes of the current part's data not yet handed out.
    part_left: u64,
}

impl<F: FnMut(&mut [u8]) -> std::io::Result<()>> PartReader<F> {
    pub fn new(read: F, body_len: u64, boundary: &str) -> Self {
        PartReader {
            read,
            len: body_len,
            left: body_len,
            ahead: Vec::new(),
            pos: 0,
            delim: format!("--{boundary}").into_bytes(),
            part_left: 0,
        }
    }

    /// Body bytes used so far (read and handed out or skipped as framing).
    pub fn consumed(&self) -> u64 {
        self.len - self.left - (self.ahead.len() - self.pos) as u64
    }

    /// Reads a little more of the body into the look-ahead; false at its end.
    fn more(&mut self) -> Result<bool, PartError> {
        if self.left == 0 {
            return Ok(false);
        }
        if self.ahead.len() - self.pos >= HEAD_MAX {
            return Err(PartError::Malformed("a part's head longer than 8 KiB"));
        }
        let n = self.left.min(HEAD_READ) as usize;
        let old = self.ahead.len();
        self.ahead.resize(old + n, 0);
        (self.read)(&mut self.ahead[old..]).map_err(PartError::Io)?;
        self.left -= n as u64;
        Ok(true)
    }

    /// The next part: the file offset its data starts at and its length. None after the
    /// closing delimiter, once the rest of the body (a short epilogue) is read.
    pub fn next_part(&mut self) -> Result<Option<(u64, u64)>, PartError> {
        if self.part_left > 0 {
            return Err(PartError::Malformed("a part left unread"));
        }
        self.ahead.drain(..self.pos);
        self.pos = 0;
        let (head, end) = loop {
            if let Some(d) = find(&self.ahead, &self.delim) {
                let after = d + self.delim.len();
                if self.ahead.len() >= after + 2 {
                    if &self.ahead[after..after + 2] == b"--" {
                        if self.left > HEAD_MAX as u64 {
                            return Err(PartError::Malformed("a long epilogue"));
                        }
                        while self.more()? {}
                        self.pos = self.ahead.len();
                        return Ok(None);
                    }
                    if let Some(h) = find(&self.ahead[after..], b"\r\n\r\n") {
                        break (after..after + h, after + h + 4);
                    }
                }
            }
            if !self.more()? {
                return Err(PartError::Malformed("the body ends inside a part's head"));
            }
        };
        let text = std::str::from_utf8(&self.ahead[head])
            .map_err(|_| PartError::Malformed("a part's head is not text"))?;
        let (first, last) = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-range")
                    .then(|| content_range(v))?
            })
            .ok_or(PartError::Malformed("a part without a Content-Range"))?;
        let len = (last - first)
            .checked_add(1)
            .ok_or(PartError::Malformed("a part's range overflows"))?;
        self.pos = end;
        if len > (self.ahead.len() - self.pos) as u64 + self.left {
            return Err(PartError::Malformed("a part longer than the body"));
        }
        self.part_left = len;
        Ok(Some((first, len)))
    }

    /// The current part's next `out.len()` bytes.
    pub fn data(&mut self, out: &mut [u8]) -> Result<(), PartError> {
        if out.len() as u64 > self.part_left {
            return Err(PartError::Malformed("more asked of a part than it holds"));
        }
        let have = (self.ahead.len() - self.pos).min(out.len());
        out[..have].copy_from_slice(&self.ahead[self.pos..self.pos + have]);
        self.pos += have;
        let rest = &mut out[have..];
        if !rest.is_empty() {
            (self.read)(rest).map_err(PartError::Io)?;
            self.left -= rest.len() as u64;
        }
        self.part_left -= out.len() as u64;
        Ok(())
    }
}

/// Each part of a whole `body`: the file offset its data starts at, and where in `body`
/// the data lies. None when the body is not well formed, or holds more than `most`
/// parts. (The same reader as a streamed body's, over bytes in memory.)
pub fn parts(body: &[u8], boundary: &str, most: usize) -> Option<Vec<(u64, Range<usize>)>> {
    let mut at = 0;
    let read = |b: &mut [u8]| {
        b.copy_from_slice(&body[at..at + b.len()]);
        at += b.len();
        Ok(())
    };
    let mut r = PartReader::new(read, body.len() as u64, boundary);
    let mut out = Vec::new();
    while let Some((first, len)) = r.next_part().ok()? {
        if out.len() == most {
            return None;
        }
        let start = r.consumed() as usize;
        let mut skip = vec![0u8; usize::try_from(len).ok()?];
        r.data(&mut skip).ok()?;
        out.push((first, start..start + skip.len()));
    }
    Some(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body as Go's net/http (the simulator's server) writes one.
    fn body(boundary: &str, parts: &[(u64, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (at, data) in parts {
            b.extend(
                format!("\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n").bytes(),
            );
            let last = at + data.len() as u64 - 1;
            b.extend(format!("Content-Range: bytes {at}-{last}/1000\r\n\r\n").bytes());
            b.extend(*data);
        }
        b.extend(format!("\r\n--{boundary}--\r\n").bytes());
        b
    }

    #[test]
    fn parts_are_found_by_length_even_when_the_data_holds_the_boundary() {
        let tricky = b"ab\r\n--XYZ\r\nContent-Range: bytes 0-1/9\r\n\r\nzz";
        let b = body("XYZ", &[(10, b"hello"), (500, tricky), (20, b"!")]);
        let got = parts(&b, "XYZ", 8).unwrap();
        let spans: Vec<(u64, &[u8])> = got.iter().map(|(a, r)| (*a, &b[r.clone()])).collect();
        assert_eq!(spans, [(10, &b"hello"[..]), (500, tricky), (20, b"!")]);
        assert!(parts(&b, "XYZ", 2).is_none(), "more parts than asked for");
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let b = body("B", &[(0, b"0123456789")]);
        assert!(
            parts(&b[..b.len() - 20], "B", 4).is_none(),
            "cut inside the data"
        );
        assert!(parts(&b, "other", 4).is_none(), "no such boundary");
        let no_range = b"--B\r\nContent-Type: x\r\n\r\nabc\r\n--B--\r\n";
        assert!(parts(no_range, "B", 4).is_none());
        let backwards = b"--B\r\nContent-Range: bytes 9-3/10\r\n\r\nabc\r\n--B--\r\n";
        assert!(parts(backwards, "B", 4).is_none());
        let huge = b"--B\r\nContent-Range: bytes 0-18446744073709551615/1\r\n\r\n--B--";
        assert!(parts(huge, "B", 4).is_none());
        assert_eq!(parts(b"--B--\r\n", "B", 4), Some(vec![]));
    }

    #[test]
    fn content_types_and_ranges_are_read_as_servers_write_them() {
        assert_eq!(boundary("multipart/byteranges; boundary=abc"), Some("abc"));
        assert_eq!(
            boundary("Multipart/ByteRanges;boundary=\"a b\""),
            Some("a b")
        );
        assert_eq!(boundary("multipart/byteranges"), None);
        assert_eq!(boundary("application/octet-stream; boundary=x"), None);
        assert_eq!(boundary("multipart/byteranges; boundary="), None);
        assert_eq!(content_range(" bytes 5-9/100"), Some((5, 9)));
        assert_eq!(content_range("bytes 5-9/*"), Some((5, 9)));
        assert_eq!(content_range("bytes 9-5/100"), None);
        assert_eq!(content_range("bytes */100"), None);
    }

    /// A reader over `body` that fails once `fail_at` bytes have been read.
    fn reading(body: &[u8], fail_at: usize) -> impl FnMut(&mut [u8]) -> std::io::Result<()> + '_ {
        let mut at = 0;
        move |b: &mut [u8]| {
            if at + b.len() > fail_at {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            b.copy_from_slice(&body[at..at + b.len()]);
            at += b.len();
            Ok(())
        }
    }

    #[test]
    fn a_streamed_body_goes_part_by_part_into_the_callers_buffers() {
        let big: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let b = body("sep", &[(4096, &big), (7, b"xyz")]);
        let mut r = PartReader::new(reading(&b, usize::MAX), b.len() as u64, "sep");
        assert_eq!(r.next_part().unwrap(), Some((4096, 5000)));
        // Read in two pieces: the first from what the head's look-ahead holds, the
        // rest straight from the body.
        let mut got = vec![0u8; 5000];
        let (a, rest) = got.split_at_mut(100);
        r.data(a).unwrap();
        r.data(rest).unwrap();
        assert_eq!(got, big);
        assert!(matches!(
            r.data(&mut [0u8; 1]),
            Err(PartError::Malformed(_))
        ));
        assert_eq!(r.next_part().unwrap(), Some((7, 3)));
        let mut small = [0u8; 3];
        r.data(&mut small).unwrap();
        assert_eq!(&small, b"xyz");
        assert_eq!(r.next_part().unwrap(), None);
        assert_eq!(r.consumed(), b.len() as u64, "the whole body read");
    }

    #[test]
    fn a_streamed_body_that_lies_or_breaks_is_refused() {
        // A part that claims more than the body holds.
        let lie = b"--B\r\nContent-Range: bytes 0-99999/100000\r\n\r\nabc\r\n--B--\r\n";
        let mut r = PartReader::new(reading(lie, usize::MAX), lie.len() as u64, "B");
        assert!(matches!(r.next_part(), Err(PartError::Malformed(_))));
        // Heads that never end are not read without bound.
        let endless = vec![b'x'; 64 << 10];
        let mut r = PartReader::new(reading(&endless, usize::MAX), endless.len() as u64, "B");
        assert!(matches!(r.next_part(), Err(PartError::Malformed(_))));
        // A part left half read is not skipped silently.
        let b = body("B", &[(0, b"0123456789"), (20, b"ab")]);
        let mut r = PartReader::new(reading(&b, usize::MAX), b.len() as u64, "B");
        r.next_part().unwrap();
        r.data(&mut [0u8; 4]).unwrap();
        assert!(matches!(r.next_part(), Err(PartError::Malformed(_))));
        // The connection failing inside a part's data is the transport's error.
        let long = vec![5u8; 2000];
        let b = body("B", &[(0, &long)]);
        let mut r = PartReader::new(reading(&b, 1000), b.len() as u64, "B");
        assert_eq!(r.next_part().unwrap(), Some((0, 2000)));
        assert!(matches!(r.data(&mut [0u8; 2000]), Err(PartError::Io(_))));
    }
}
