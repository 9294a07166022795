//! A remote file's chunks as readers and streams share them: which are kept, who fills
//! each (exactly one claimant), and how a reader waits for or fetches the one it needs.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::remote::Remote;
use crate::sync::Relock;

/// Small enough that a reader waits little for the chunk it needs (it waits for the
/// whole chunk), big enough that the bookkeeping per chunk is nothing beside the copy.
pub(super) const CHUNK: u64 = 2 << 20;
/// Chunks a stream fills ahead of its reader (32 MiB): the network keeps going while the
/// reader copies, and a burst of reads finds its bytes waiting.
pub(super) const AHEAD: u64 = 16;
/// Chunks kept per file, filled or being filled (at most 80 MiB, only for files read as
/// streams); the least recently used goes first. Room for a stream's window and the
/// chunks its reader is on, twice: chunks filled ahead but not yet read are the least
/// recently used, and must not be the ones dropped.
const KEPT: usize = 40;
/// Ends of recent reads remembered.
pub(super) const ENDS: usize = 16;
/// Buffers of dropped chunks kept for reuse.
const SPARE: usize = 8;
/// Streams per file at once: parallel readers of one disk (a backup reading two
/// partitions at once) each get their own; more than this and the oldest stops.
pub(super) const STREAMS: usize = 4;

pub(super) struct Inner {
    pub(super) remote: Remote,
    pub(super) state: Mutex<State>,
    /// Signalled when a stream may fill more (its limit grew) or must stop.
    pub(super) demand: Condvar,
}

#[derive(Default)]
pub(super) struct State {
    /// (chunk index, its slot), least recently used first.
    pub(super) chunks: VecDeque<(u64, Arc<Slot>)>,
    pub(super) ends: VecDeque<u64>,
    /// Buffers of dropped chunks, for the next fetches: zeroing and faulting in fresh
    /// megabytes for every chunk would cost a pass over memory per byte streamed.
    pub(super) spare: Vec<Vec<u8>>,
    pub(super) streams: Vec<Ctl>,
    pub(super) next_stream: u64,
}

/// A stream as readers see it: it fills chunk `next`, then the ones after it, up to
/// (not including) `limit`.
pub(super) struct Ctl {
    pub(super) id: u64,
    pub(super) next: u64,
    pub(super) limit: u64,
}

impl Ctl {
    /// Whether this stream is on its way to chunk `index`.
    pub(super) fn covers(&self, index: u64) -> bool {
        self.next <= index && index < self.limit
    }
}

/// What became of a chunk.
#[derive(Clone)]
pub(super) enum Fill {
    Data(Arc<Vec<u8>>),
    Failed(String),
    /// Nobody will fill it (the stream that would have stopped, or it was dropped
    /// before its turn): whoever waits for it fetches it.
    Abandoned,
}

/// A chunk, filled by whoever claimed it: a reader's own fetch or a stream.
#[derive(Default)]
pub(super) struct Slot {
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
    pub(super) fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    pub(super) fn wait(&self) -> Fill {
        let mut g = self.fill.lock().relock();
        loop {
            if let Some(f) = &*g {
                return f.clone();
            }
            g = self.ready.wait(g).relock();
        }
    }

    pub(super) fn set(&self, f: Fill) {
        let mut g = self.fill.lock().relock();
        if g.is_none() {
            *g = Some(f);
        }
        self.ready.notify_all();
    }
}

impl State {
    pub(super) fn find(&self, index: u64) -> Option<&Arc<Slot>> {
        self.chunks
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, s)| s)
    }

    /// The slot of chunk `index`, made most recently used; a new one (claimed or not)
    /// if none is kept. A dropped slot that nobody claimed is abandoned, so that
    /// whoever waits for it does not wait for ever.
    pub(super) fn slot(&mut self, index: u64, claimed: bool) -> (Arc<Slot>, bool) {
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
    pub(super) fn forget(&mut self, index: u64, slot: &Arc<Slot>) {
        self.chunks
            .retain(|(i, s)| !(*i == index && Arc::ptr_eq(s, slot)));
    }
}

impl Inner {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().relock()
    }

    pub(super) fn chunks(&self) -> u64 {
        self.remote.size().div_ceil(CHUNK)
    }

    /// Chunk `index`'s offset and a buffer of its length, recycled where one is spare.
    pub(super) fn job(&self, index: u64) -> (u64, Vec<u8>) {
        let start = index * CHUNK;
        let len = (self.remote.size() - start).min(CHUNK) as usize;
        let mut buf = self.state().spare.pop().unwrap_or_default();
        buf.resize(len, 0);
        (start, buf)
    }

    /// Fetches chunk `index` into `slot` with a request of its own.
    pub(super) fn fetch(&self, index: u64, slot: &Slot) {
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
    pub(super) fn bytes(
        &self,
        index: u64,
        mut slot: Arc<Slot>,
        mut mine: bool,
    ) -> io::Result<Arc<Vec<u8>>> {
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
