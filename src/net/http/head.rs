//! Response heads, parsed by httparse (fast, and fuzzed far beyond what we could), and
//! what they say about the body that follows.

use std::io;

/// Headers one head may carry; a datastore sends about ten.
const MAX_HEADERS: usize = 128;

pub(super) struct Head {
    pub(super) status: u16,
    headers: Vec<(String, String)>,
    keep_alive: bool,
}

pub(super) enum Body {
    /// `left` bytes to come; the connection is reusable after them if `reuse`.
    Length { left: u64, reuse: bool },
    /// Chunked transfer coding; `in_chunk` bytes of the current chunk still to come.
    Chunked { reuse: bool, in_chunk: u64 },
    /// Until the server closes the connection.
    Close,
}

/// Parses the head at the start of `buf`: the head and its length, or None while the
/// head is still incomplete.
pub(super) fn parse(buf: &[u8], host: &str) -> io::Result<Option<(Head, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    // "Name : value" was always taken as Name; keep taking it.
    let parsed = httparse::ParserConfig::default()
        .allow_spaces_after_header_name_in_responses(true)
        .parse_response(&mut resp, buf);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            let start = &buf[..buf.len().min(64)];
            return Err(io::Error::other(format!(
                "{host}: not an HTTP answer ({e}): {:?}",
                String::from_utf8_lossy(start)
            )));
        }
    };
    let (Some(version), Some(status)) = (resp.version, resp.code) else {
        return Err(io::Error::other(format!("{host}: no status line")));
    };
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_owned();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    let connection = headers
        .iter()
        .find(|(k, _)| k == "connection")
        .map(|(_, v)| v.to_ascii_lowercase());
    let keep_alive = match connection.as_deref() {
        Some(c) if c.contains("close") => false,
        Some(c) if c.contains("keep-alive") => true,
        _ => version == 1,
    };
    let head = Head {
        status,
        headers,
        keep_alive,
    };
    Ok(Some((head, len)))
}

impl Head {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// How the body that follows this head is delimited (RFC 9112, 6.3).
    pub(super) fn framing(&self, method: &str, host: &str) -> io::Result<Body> {
        let reuse = self.keep_alive;
        if method == "HEAD" || matches!(self.status, 100..=199 | 204 | 304) {
            return Ok(Body::Length { left: 0, reuse });
        }
        let chunked = self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            return Ok(Body::Chunked { reuse, in_chunk: 0 });
        }
        match self.header("content-length") {
            Some(v) => {
                let left = v
                    .parse::<u64>()
                    .map_err(|_| io::Error::other(format!("{host}: bad Content-Length {v:?}")))?;
                Ok(Body::Length { left, reuse })
            }
            None => Ok(Body::Close),
        }
    }
}
