//! A response's body, read by its owner straight into the buffers it fills: by length,
//! chunked, or until close; its connection goes back for reuse once the body is read.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use super::conn::{left, timed_out, Conn, Idle};
use super::head::{Body, Head};

/// A response whose body is read by its owner; it holds its pool's idle connections, so
/// a long body can be read piece by piece over a streaming read's life and its
/// connection still go back for reuse.
pub struct Response {
    idle: Arc<Idle>,
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
    /// The response to `method` whose head `h` was just read from `conn`.
    pub(super) fn new(
        idle: Arc<Idle>,
        key: String,
        conn: Conn,
        h: Head,
        method: &str,
        deadline: Instant,
        host: String,
    ) -> io::Result<Response> {
        let body = h.framing(method, &host)?;
        let mut resp = Response {
            idle,
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
                self.idle.put_back(&self.key, conn);
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

    fn raw_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let want = buf.len();
        if vmsnapfs_io::fill(buf, |_, b| self.raw_read(b))? < want {
            return Err(self.short());
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
