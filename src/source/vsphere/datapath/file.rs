//! Read-ahead for remote chain files. A backup streams disks: one Range request per FUSE
//! read would pay a round trip per MiB and leave the network idle while the reader
//! copies, and every request costs the server work of its own (authorization, lookup,
//! opening the file: about a millisecond each against the simulator, more through a
//! vCenter). So a read that continues an earlier one is served from aligned chunks, and
//! one long Range request per stream of reads (see `stream.rs`) fills the chunks ahead
//! of the reader, in order, as curl would read the file.
//!
//! The kernel's own read-ahead sends several reads at once, answered by several FUSE
//! threads in any order, so "continues an earlier one" means: starts where one of the
//! recent reads ends (recorded when that read starts, not when it finishes), or falls in
//! a chunk already held or that a stream is about to fill. Random reads (grain tables,
//! metadata) are fetched as asked.
use std::io;
use std::sync::{Arc, Condvar, Mutex};

use vmsnapfs_io::{check_bounds, fits, Lent, Places, Ranged, ReadAt};

use super::chunks::{remember, Inner, Slot, CHUNK};
use super::remote::Remote;
use super::stream;

pub struct HttpFile {
    inner: Arc<Inner>,
    /// The file as a ranged source: pieces placed in it are read by exact Range requests
    /// (several at once, merged: see `vmsnapfs_io::read_placed`), never streams.
    exact: Ranged,
}

impl HttpFile {
    pub fn new(remote: Remote) -> HttpFile {
        let inner = Arc::new(Inner {
            remote,
            state: Mutex::default(),
            demand: Condvar::new(),
        });
        HttpFile {
            exact: Ranged(Arc::new(Exact(inner.clone()))),
            inner,
        }
    }

    /// Records the read of `offset..end` and, if it continues a stream, each of its
    /// chunks' slot and whether the caller fetches it; None for a read on its own.
    fn plan(&self, offset: u64, end: u64) -> Option<Vec<(u64, Arc<Slot>, bool)>> {
        // Scattered extents (changed blocks): each fetched on its own, never a stream.
        if vmsnapfs_io::hint::is_scattered() {
            return None;
        }
        let inner = &self.inner;
        let (first, last) = (offset / CHUNK, (end - 1) / CHUNK);
        let mut st = inner.state();
        let streaming = st.ends.contains(&offset)
            || st.find(first).is_some()
            || st.streams.iter().any(|c| c.covers(first));
        remember(&mut st.ends, end);
        streaming.then(|| stream::plan(inner, &mut st, first, last))
    }
}

impl Drop for HttpFile {
    fn drop(&mut self) {
        stream::stop_all(&self.inner);
    }
}

impl ReadAt for HttpFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let inner = &self.inner;
        check_bounds(offset, buf.len(), inner.remote.size())?;
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset + buf.len() as u64;
        let Some(needed) = self.plan(offset, end) else {
            return inner.remote.read_exact_at(offset, buf);
        };
        let mut pos = offset;
        for (index, slot, mine) in needed {
            let data = inner.bytes(index, slot, mine)?;
            let start = index * CHUNK;
            let have = (start + data.len() as u64).min(end);
            if have <= pos {
                return Err(short(inner, start));
            }
            let from = (pos - start) as usize;
            let n = (have - pos) as usize;
            let at = (pos - offset) as usize;
            buf[at..at + n].copy_from_slice(&data[from..from + n]);
            pos += n as u64;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.inner.remote.size()
    }

    /// A read inside one chunk of a stream is lent the chunk itself; a read on its own
    /// gets a buffer of its own, fetched as `read_at` would.
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<Lent>> {
        let inner = &self.inner;
        if let Err(e) = check_bounds(offset, len, inner.remote.size()) {
            return Some(Err(e));
        }
        let end = offset + len as u64;
        if len == 0 || offset / CHUNK != (end - 1) / CHUNK {
            return None;
        }
        let Some(mut needed) = self.plan(offset, end) else {
            let mut buf = vec![0u8; len];
            return Some(inner.remote.read_exact_at(offset, &mut buf).map(|()| Lent {
                data: Arc::new(buf),
                range: 0..len,
            }));
        };
        let (index, slot, mine) = needed.pop()?;
        Some(inner.bytes(index, slot, mine).and_then(|data| {
            let from = (offset - index * CHUNK) as usize;
            if data.len() < from + len {
                return Err(short(inner, index * CHUNK));
            }
            Ok(Lent {
                data,
                range: from..from + len,
            })
        }))
    }

    /// Only for a caller that reads the bytes itself (nothing to splice from here).
    fn place(&self, offset: u64, len: u64, out: &mut Places) -> bool {
        fits(offset, len, self.size()) && out.ranged(&self.exact, offset, len)
    }
}

/// Reads exactly what is asked, one Range request each.
struct Exact(Arc<Inner>);

impl ReadAt for Exact {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_bounds(offset, buf.len(), self.0.remote.size())?;
        if buf.is_empty() {
            return Ok(());
        }
        self.0.remote.read_exact_at(offset, buf)
    }

    fn size(&self) -> u64 {
        self.0.remote.size()
    }

    fn read_ranges(&self, ranges: &mut [(u64, &mut [u8])]) -> io::Result<()> {
        for (offset, buf) in ranges.iter() {
            check_bounds(*offset, buf.len(), self.0.remote.size())?;
        }
        self.0.remote.retrying(|r, t| r.fetch_ranges(ranges, t))
    }
}

fn short(inner: &Inner, start: u64) -> io::Error {
    io::Error::other(format!(
        "{}: chunk at {start} came back short",
        inner.remote.name()
    ))
}
