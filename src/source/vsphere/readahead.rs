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

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use vmsnapfs_io::{check_bounds, Lent, ReadAt};

use super::datastore::Remote;

mod stream;

/// Small enough that a reader waits little for the chunk it needs (it waits for the
/// whole chunk), big enough that the bookkeeping per chunk is nothing beside the copy.
const CHUNK: u64 = 2 << 20;
/// Chunks a stream fills ahead of its reader (32 MiB): the network keeps going while the
/// reader copies, and a burst of reads finds its bytes waiting.
const AHEAD: u64 = 16;
/// Chunks kept per file, filled or being filled (at most 80 MiB, only for files read as
/// streams); the least recently used goes first. Room for a stream's window and the
/// chunks its reader is on, twice: chunks filled ahead but not yet read are the least
/// recently used, and must not be the ones dropped.
const KEPT: usize = 40;
/// Ends of recent reads remembered.
const ENDS: usize = 16;
/// Buffers of dropped chunks kept for reuse.
const SPARE: usize = 8;
/// Streams per file at once: parallel readers of one disk (a backup reading two
/// partitions at once) each get their own; more than this and the oldest stops.
const STREAMS: usize = 4;

pub struct HttpFile {
    inner: Arc<Inner>,
}

struct Inner {
    remote: Remote,
    state: Mutex<State>,
    /// Signalled when a stream may fill more (its limit grew) or must stop.
    demand: Condvar,
}

#[derive(Default)]
struct State {
    /// (chunk index, its slot), least recently used first.
    chunks: VecDeque<(u64, Arc<Slot>)>,
    ends: VecDeque<u64>,
    /// Buffers of dropped chunks, for the next fetches: zeroing and faulting in fresh
    /// megabytes for every chunk would cost a pass over memory per byte streamed.
    spare: Vec<Vec<u8>>,
    streams: Vec<stream::Ctl>,
    next_stream: u64,
}

/// What became of a chunk.
#[derive(Clone)]
enum Fill {
    Data(Arc<Vec<u8>>),
    Failed(String),
    /// Nobody will fill it (the stream that would have stopped, or it was dropped
    /// before its turn): whoever waits for it fetches it.
    Abandoned,
}

/// A chunk, filled by whoever claimed it: a reader's own fetch or a stream.
#[derive(Default)]
struct Slot {
    fill: Mutex<Option<Fill>>,
    ready: Condvar,
    claimed: AtomicBool,
}

impl Slot {
    fn claimed() -> Slot {
        Slot {
            claimed: AtomicBool::new(true),
            ..Slot::default()
        }
    }

    /// True for the one caller that gets to fill this slot.
    fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    fn wait(&self) -> Fill {
        let mut g = self.fill.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(f) = &*g {
                return f.clone();
            }
            g = self.ready.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn set(&self, f: Fill) {
        let mut g = self.fill.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(f);
        }
        self.ready.notify_all();
    }
}

impl State {
    fn find(&self, index: u64) -> Option<&Arc<Slot>> {
        self.chunks
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, s)| s)
    }

    /// The slot of chunk `index`, made most recently used; a new one (claimed or not)
    /// if none is kept. A dropped slot that nobody claimed is abandoned, so that
    /// whoever waits for it does not wait for ever.
    fn slot(&mut self, index: u64, claimed: bool) -> (Arc<Slot>, bool) {
        if let Some(at) = self.chunks.iter().position(|(i, _)| *i == index) {
            let entry = self.chunks.remove(at).expect("position is inside");
            let slot = entry.1.clone();
            self.chunks.push_back(entry);
            return (slot, false);
        }
        if self.chunks.len() >= KEPT {
            if let Some((_, old)) = self.chunks.pop_front() {
                if old.claim() {
                    old.set(Fill::Abandoned);
                }
                // Reusable only once no reader holds it any more.
                let data = Arc::into_inner(old)
                    .and_then(|s| s.fill.into_inner().ok().flatten())
                    .and_then(|f| match f {
                        Fill::Data(d) => Arc::into_inner(d),
                        _ => None,
                    });
                if let Some(buf) = data.filter(|_| self.spare.len() < SPARE) {
                    self.spare.push(buf);
                }
            }
        }
        let slot = Arc::new(if claimed {
            Slot::claimed()
        } else {
            Slot::default()
        });
        self.chunks.push_back((index, slot.clone()));
        (slot, true)
    }

    /// Drops `slot` (chunk `index`) if it is still the one kept, so the next read of
    /// that chunk asks again.
    fn forget(&mut self, index: u64, slot: &Arc<Slot>) {
        self.chunks
            .retain(|(i, s)| !(*i == index && Arc::ptr_eq(s, slot)));
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn chunks(&self) -> u64 {
        self.remote.size().div_ceil(CHUNK)
    }

    /// Chunk `index`'s offset and a buffer of its length, recycled where one is spare.
    fn job(&self, index: u64) -> (u64, Vec<u8>) {
        let start = index * CHUNK;
        let len = (self.remote.size() - start).min(CHUNK) as usize;
        let mut buf = self.state().spare.pop().unwrap_or_default();
        buf.resize(len, 0);
        (start, buf)
    }

    /// Fetches chunk `index` into `slot` with a request of its own.
    fn fetch(&self, index: u64, slot: &Slot) {
        let (start, mut buf) = self.job(index);
        tracing::debug!("{}: chunk {index} fetched alone", self.remote.name());
        let r = self
            .remote
            .retrying(|r, t| r.fetch(start, &mut buf, t))
            .map(|()| buf);
        slot.set(match r {
            Ok(buf) => Fill::Data(Arc::new(buf)),
            Err(e) => Fill::Failed(e.to_string()),
        });
    }

    /// Chunk `index`'s bytes: waits for `slot`, and fetches the chunk itself if nobody
    /// else will.
    fn bytes(&self, index: u64, mut slot: Arc<Slot>, mut mine: bool) -> io::Result<Arc<Vec<u8>>> {
        loop {
            if mine {
                self.fetch(index, &slot);
            }
            match slot.wait() {
                Fill::Data(d) => return Ok(d),
                Fill::Failed(e) => {
                    self.state().forget(index, &slot);
                    return Err(io::Error::other(e));
                }
                Fill::Abandoned => {
                    let mut st = self.state();
                    st.forget(index, &slot);
                    let (s, new) = st.slot(index, true);
                    // A slot kept meanwhile by another reader or a stream is theirs.
                    mine = new || s.claim();
                    slot = s;
                }
            }
        }
    }
}

impl HttpFile {
    pub fn new(remote: Remote) -> HttpFile {
        HttpFile {
            inner: Arc::new(Inner {
                remote,
                state: Mutex::default(),
                demand: Condvar::new(),
            }),
        }
    }

    /// Records the read of `offset..end` and, if it continues a stream, each of its
    /// chunks' slot and whether the caller fetches it; None for a read on its own.
    fn plan(&self, offset: u64, end: u64) -> Option<Vec<(u64, Arc<Slot>, bool)>> {
        let inner = &self.inner;
        let (first, last) = (offset / CHUNK, (end - 1) / CHUNK);
        let mut st = inner.state();
        let streaming = st.ends.contains(&offset)
            || st.find(first).is_some()
            || st.streams.iter().any(|c| c.covers(first));
        if st.ends.len() >= ENDS {
            st.ends.pop_front();
        }
        st.ends.push_back(end);
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
            return inner.remote.retrying(|r, t| r.fetch(offset, buf, t));
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
            return Some(
                inner
                    .remote
                    .retrying(|r, t| r.fetch(offset, &mut buf, t))
                    .map(|()| Lent {
                        data: Arc::new(buf),
                        range: 0..len,
                    }),
            );
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
}

fn short(inner: &Inner, start: u64) -> io::Error {
    io::Error::other(format!(
        "{}: chunk at {start} came back short",
        inner.remote.name()
    ))
}
