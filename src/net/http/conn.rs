//! Connections: plain or TLS sockets (or a canned answer), opened within a deadline,
//! and the keep-alive ones waiting for reuse.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::sync::Relock;

const IDLE_PER_HOST: usize = 32;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    /// A canned answer (the fuzz target's).
    Canned(io::Cursor<Vec<u8>>),
}

impl Stream {
    pub(super) fn set_timeouts(&self, t: Duration) -> io::Result<()> {
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

pub(super) struct Conn {
    pub(super) stream: Stream,
    /// Bytes read past the response head: the start of the body.
    pub(super) extra: Vec<u8>,
}

pub(super) fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what}: timed out"))
}

pub(super) fn left(deadline: Instant, what: &str) -> io::Result<Duration> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        return Err(timed_out(what));
    }
    Ok(d)
}

/// Keep-alive connections waiting for reuse, per `scheme://host:port`.
#[derive(Default)]
pub(super) struct Idle(Mutex<HashMap<String, Vec<Conn>>>);

impl Idle {
    pub(super) fn take(&self, key: &str) -> Option<Conn> {
        self.0.lock().relock().get_mut(key)?.pop()
    }

    pub(super) fn put_back(&self, key: &str, conn: Conn) {
        let mut idle = self.0.lock().relock();
        let list = idle.entry(key.to_owned()).or_default();
        if list.len() < IDLE_PER_HOST {
            list.push(conn);
        }
    }
}

/// Opens a connection to `url`'s host; `tls` is required for `https`.
pub(super) fn connect(
    url: &reqwest::Url,
    tls: Option<&Arc<rustls::ClientConfig>>,
    deadline: Instant,
) -> io::Result<Conn> {
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
            let cfg = tls
                .cloned()
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
