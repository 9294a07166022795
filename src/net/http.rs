//! HTTP/1.1 for bulk reads (the vSphere data path's): HEAD and Range GETs of files on
//! pooled keep-alive connections, each body read by the calling thread straight into the
//! buffer it fills. The SOAP client (reqwest) drives every connection from one runtime
//! thread and hands bodies over piece by piece, and the small blocking clients read
//! through an 8 KiB buffer: both cost more CPU per byte than the network does here, and
//! a backup streams whole disks. Only what such reads need: no redirects, no
//! compression, no request bodies.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use head::{Body, Head};

mod head;

/// A response head larger than this is not a datastore's.
const MAX_HEAD: usize = 64 << 10;
const IDLE_PER_HOST: usize = 32;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    /// A canned answer (the fuzz target's).
    Canned(io::Cursor<Vec<u8>>),
}

impl Stream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        let tcp = match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
            Stream::Canned(_) => return Ok(()),
        };
        tcp.set_read_timeout(Some(t))?;
        tcp.set_write_timeout(Some(t))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Canned(c) => c.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Canned(_) => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Canned(_) => Ok(()),
        }
    }
}

struct Conn {
    stream: Stream,
    /// Bytes read past the response head: the start of the body.
    extra: Vec<u8>,
}

/// Keep-alive connections per `scheme://host:port`, trusting one TLS configuration.
pub struct Pool {
    tls: Option<Arc<rustls::ClientConfig>>,
    idle: Mutex<HashMap<String, Vec<Conn>>>,
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what}: timed out"))
}

fn left(deadline: Instant, what: &str) -> io::Result<Duration> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        return Err(timed_out(what));
    }
    Ok(d)
}

impl Pool {
    /// `tls` is required for `https` URLs.
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>) -> Pool {
        Pool {
            tls,
            idle: Mutex::new(HashMap::new()),
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

    fn idle_conn(&self, key: &str) -> Option<Conn> {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(key)?
            .pop()
    }

    fn put_back(&self, key: &str, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(key.to_owned()).or_default();
        if list.len() < IDLE_PER_HOST {
            list.push(conn);
        }
    }

    fn connect(&self, url: &reqwest::Url, deadline: Instant) -> io::Result<Conn> {
        let host = url
            .host_str()
            .ok_or_else(|| io::Error::other(format!("{url}: no host")))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| io::Error::other(format!("{url}: no port")))?;
        let bare = host.trim_matches(['[', ']']);
        let mut last = io::Error::other(format!("{host}: no address"));
        let mut sock = None;
        for addr in (bare, port).to_socket_addrs()? {
            let t = left(deadline, host)?.min(CONNECT_TIMEOUT);
            match TcpStream::connect_timeout(&addr, t) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let sock = sock.ok_or(last)?;
        sock.set_nodelay(true)?;
        let stream = match url.scheme() {
            "http" => Stream::Plain(sock),
            "https" => {
                let cfg = self
                    .tls
                    .clone()
                    .ok_or_else(|| io::Error::other("https without a TLS configuration"))?;
                let name = ServerName::try_from(bare.to_owned())
                    .map_err(|e| io::Error::other(format!("{host}: {e}")))?;
                let conn = rustls::ClientConnection::new(cfg, name).map_err(io::Error::other)?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, sock)))
            }
            s => return Err(io::Error::other(format!("{url}: scheme {s} is not HTTP"))),
        };
        Ok(Conn {
            stream,
            extra: Vec::new(),
        })
    }

    /// Sends a request without a body and reads the response head. A pooled connection
    /// the server has meanwhile closed is dropped and the next idle one, or a new one,
    /// tried; a new connection's failure is the answer.
    pub fn send(
        self: &Arc<Self>,
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
        loop {
            let (mut conn, reused) = match self.idle_conn(&key) {
                Some(c) => (c, true),
                None => (self.connect(url, deadline)?, false),
            };
            conn.stream.set_timeouts(left(deadline, &host)?)?;
            let sent = conn
                .stream
                .write_all(head.as_bytes())
                .and_then(|()| conn.stream.flush());
            let parsed = sent.and_then(|()| read_head(&mut conn, deadline, &host));
            match parsed {
                Ok(h) => return self.response(key, conn, h, method, deadline, host),
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

impl Pool {
    fn response(
        self: &Arc<Self>,
        key: String,
        conn: Conn,
        h: Head,
        method: &str,
        deadline: Instant,
        host: String,
    ) -> io::Result<Response> {
        let body = h.framing(method, &host)?;
        let mut resp = Response {
            pool: self.clone(),
            key,
            conn: Some(conn),
            head: h,
            body,
            body_started: 0,
            deadline,
            host,
        };
        if matches!(resp.body, Body::Length { left: 0, .. }) {
            resp.finish();
        }
        Ok(resp)
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
    let mut resp = pool.response(
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

/// A response whose body is read by its owner; it holds its pool, so a long body can be
/// read piece by piece over a streaming read's life.
pub struct Response {
    pool: Arc<Pool>,
    key: String,
    conn: Option<Conn>,
    head: Head,
    body: Body,
    /// Body bytes read so far (chunked bodies: whether a chunk's CRLF comes first).
    body_started: u64,
    deadline: Instant,
    host: String,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }

    /// Hands the connection back to the pool if the body is fully read and the server
    /// keeps it open.
    fn finish(&mut self) {
        let reusable = match self.body {
            Body::Length { left: 0, reuse } => reuse,
            _ => false,
        };
        if let Some(conn) = self.conn.take() {
            if reusable && conn.extra.is_empty() {
                self.pool.put_back(&self.key, conn);
            }
        }
    }

    /// Reads into `buf` from what followed the head, then from the socket.
    fn raw_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let host = self.host.clone();
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| io::Error::other("body already read"))?;
        if !conn.extra.is_empty() {
            let n = conn.extra.len().min(buf.len());
            buf[..n].copy_from_slice(&conn.extra[..n]);
            conn.extra.drain(..n);
            return Ok(n);
        }
        left(self.deadline, &host)?;
        conn.stream.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => timed_out(&host),
            _ => e,
        })
    }

    fn raw_exact(&mut self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.raw_read(buf)?;
            if n == 0 {
                return Err(self.short());
            }
            buf = &mut buf[n..];
        }
        Ok(())
    }

    fn short(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{}: connection closed inside the body", self.host),
        )
    }

    /// A chunk-size line, after the CRLF that ends the previous chunk's data.
    fn chunk_size(&mut self, after_data: bool) -> io::Result<u64> {
        let mut line = Vec::new();
        loop {
            let mut b = [0u8; 1];
            if self.raw_read(&mut b)? == 0 {
                return Err(self.short());
            }
            line.push(b[0]);
            if line.ends_with(b"\r\n") {
                if after_data && line.len() == 2 {
                    line.clear();
                    continue;
                }
                break;
            }
            if line.len() > 1024 {
                return Err(io::Error::other(format!("{}: bad chunk header", self.host)));
            }
        }
        let text = String::from_utf8_lossy(&line);
        let hex = text.trim().split(';').next().unwrap_or("");
        u64::from_str_radix(hex, 16)
            .map_err(|_| io::Error::other(format!("{}: bad chunk size {hex:?}", self.host)))
    }

    /// Moves the deadline of the reads still to come: a body read piece by piece gets
    /// a fresh bound for each piece, not one for the whole transfer.
    pub fn set_deadline(&mut self, deadline: Instant) -> io::Result<()> {
        self.deadline = deadline;
        match &self.conn {
            Some(conn) => conn.stream.set_timeouts(left(deadline, &self.host)?),
            None => Ok(()),
        }
    }

    /// Reads the next `buf.len()` bytes of the body. Once the last byte of a body of
    /// known length is read, the connection goes back to the pool.
    pub fn read_part(&mut self, buf: &mut [u8]) -> io::Result<()> {
        match self.body {
            Body::Length { left, reuse } => {
                if (buf.len() as u64) > left {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{}: body of {left} bytes, {} wanted", self.host, buf.len()),
                    ));
                }
                self.raw_exact(buf)?;
                let left = left - buf.len() as u64;
                self.body = Body::Length { left, reuse };
                if left == 0 {
                    self.finish();
                }
            }
            Body::Close => self.raw_exact(buf)?,
            Body::Chunked { reuse, in_chunk } => {
                let (mut at, mut in_chunk) = (0, in_chunk);
                while at < buf.len() {
                    if in_chunk == 0 {
                        // The first chunk has no CRLF of earlier data before its size.
                        let first = self.body_started == 0;
                        in_chunk = self.chunk_size(!first)?;
                        if in_chunk == 0 {
                            return Err(self.short());
                        }
                    }
                    let n = (in_chunk.min((buf.len() - at) as u64)) as usize;
                    self.raw_exact(&mut buf[at..at + n])?;
                    self.body_started += n as u64;
                    in_chunk -= n as u64;
                    at += n;
                }
                self.body = Body::Chunked { reuse, in_chunk };
            }
        }
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes of body; the connection goes back to the pool
    /// when they are the whole body. A body longer than asked for is left unread and its
    /// connection closed.
    pub fn read_exact_body(mut self, buf: &mut [u8]) -> io::Result<()> {
        self.read_part(buf)?;
        if let Body::Chunked { reuse, in_chunk: 0 } = self.body {
            // The last chunk (size 0) and the empty trailer end the body.
            if self.chunk_size(self.body_started > 0)? == 0 {
                let mut end = [0u8; 2];
                self.raw_exact(&mut end)?;
                if &end == b"\r\n" {
                    self.body = Body::Length { left: 0, reuse };
                }
            }
        }
        self.finish();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
