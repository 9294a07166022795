//! HTTP/1.1 for bulk reads (the vSphere data path's): HEAD and Range GETs of files on
//! pooled keep-alive connections, each body read by the calling thread straight into the
//! buffer it fills. The SOAP client (reqwest) drives every connection from one runtime
//! thread and hands bodies over piece by piece, and the small blocking clients read
//! through an 8 KiB buffer: both cost more CPU per byte than the network does here, and
//! a backup streams whole disks. Only what such reads need: no redirects, no
//! compression, no request bodies.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conn::{connect, left, timed_out, Conn, Idle, Stream};
use head::Head;

pub use response::Response;

pub mod byteranges;
mod conn;
mod head;
mod response;

/// A response head larger than this is not a datastore's.
const MAX_HEAD: usize = 64 << 10;

/// Keep-alive connections per `scheme://host:port`, trusting one TLS configuration.
pub struct Pool {
    tls: Option<Arc<rustls::ClientConfig>>,
    idle: Arc<Idle>,
}

impl Pool {
    /// `tls` is required for `https` URLs.
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>) -> Pool {
        Pool {
            tls,
            idle: Arc::default(),
        }
    }

    fn key(url: &reqwest::Url) -> String {
        format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    /// Sends a request without a body and reads the response head. A pooled connection
    /// the server has meanwhile closed is dropped and the next idle one, or a new one,
    /// tried; a new connection's failure is the answer.
    pub fn send(
        &self,
        method: &str,
        url: &reqwest::Url,
        headers: &[(&str, &str)],
        deadline: Instant,
    ) -> io::Result<Response> {
        let key = Self::key(url);
        let mut target = url.path().to_owned();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_owned(),
        };
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vmsnapfs/{}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        for (k, v) in headers {
            if v.contains(['\r', '\n']) {
                return Err(io::Error::other(format!("header {k} holds a line break")));
            }
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        // One line per request at debug level: what a read costs the server, countable
        // in a log (bench/incremental.sh counts them).
        let range = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("range"))
            .map_or("-", |(_, v)| *v);
        tracing::debug!("http request: {method} {host}{target} range {range}");
        loop {
            let (mut conn, reused) = match self.idle.take(&key) {
                Some(c) => (c, true),
                None => (connect(url, self.tls.as_ref(), deadline)?, false),
            };
            conn.stream.set_timeouts(left(deadline, &host)?)?;
            let sent = conn
                .stream
                .write_all(head.as_bytes())
                .and_then(|()| conn.stream.flush());
            let parsed = sent.and_then(|()| read_head(&mut conn, deadline, &host));
            match parsed {
                Ok(h) => {
                    return Response::new(self.idle.clone(), key, conn, h, method, deadline, host)
                }
                // Closed while idle in the pool: nothing was answered, so asking again
                // on a fresh connection is safe for these read-only requests.
                Err(e) if reused && e.kind() != io::ErrorKind::TimedOut => {
                    tracing::debug!("{host}: pooled connection gone ({e}); reconnecting");
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Parses `answer` as the server's reply to `method` and reads `want` bytes of its
/// body: the whole receiving side without a socket, for the fuzz target. With `split`
/// inside the body, it is read in two parts as a stream reads it.
#[doc(hidden)]
pub fn parse_canned(
    answer: &[u8],
    method: &str,
    want: usize,
    split: usize,
) -> io::Result<(u16, Vec<u8>)> {
    let pool = Arc::new(Pool::new(None));
    let mut conn = Conn {
        stream: Stream::Canned(io::Cursor::new(answer.to_vec())),
        extra: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(1);
    let head = read_head(&mut conn, deadline, "canned")?;
    let mut resp = Response::new(
        pool.idle.clone(),
        "canned".into(),
        conn,
        head,
        method,
        deadline,
        "canned".into(),
    )?;
    let status = resp.status();
    let mut body = vec![0u8; want];
    if split > 0 && split < want {
        let (a, b) = body.split_at_mut(split);
        resp.read_part(a)?;
        resp.read_part(b)?;
    } else if want > 0 {
        resp.read_exact_body(&mut body)?;
    }
    Ok((status, body))
}

fn read_head(conn: &mut Conn, deadline: Instant, host: &str) -> io::Result<Head> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        if let Some((head, len)) = head::parse(&buf, host)? {
            conn.extra = buf.split_off(len);
            return Ok(head);
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other(format!(
                "{host}: response head over {MAX_HEAD} bytes"
            )));
        }
        let mut chunk = [0u8; 4096];
        let n = conn.stream.read(&mut chunk).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => timed_out(host),
            _ => e,
        })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{host}: connection closed before an answer"),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        left(deadline, host)?;
    }
}

#[cfg(test)]
mod tests;
