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

/// Each part of `body`: the file offset its data starts at, and where in `body` the
/// data lies. None when the body is not well formed, or holds more than `most` parts.
pub fn parts(body: &[u8], boundary: &str, most: usize) -> Option<Vec<(u64, Range<usize>)>> {
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        pos += find(&body[pos..], delim.as_bytes())? + delim.len();
        if body[pos..].starts_with(b"--") {
            return Some(out);
        }
        if out.len() == most {
            return None;
        }
        let head_len = find(&body[pos..], b"\r\n\r\n")?;
        let head = std::str::from_utf8(&body[pos..pos + head_len]).ok()?;
        let (first, last) = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-range")
                .then(|| content_range(v))?
        })?;
        let start = pos + head_len + 4;
        let len = usize::try_from(last - first).ok()?.checked_add(1)?;
        let end = start.checked_add(len).filter(|&e| e <= body.len())?;
        out.push((first, start..end));
        pos = end;
    }
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
}
