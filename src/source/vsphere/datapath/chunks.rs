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
/// Chunks kept per file, filled or being filled (at most 96 MiB, only for files read as
/// streams); the least recently used goes first, except those a stream filled for its
/// reader and the reader has not reached (see `awaited`). Room for what two lagging
/// readers await (2 × (AHEAD + 1 + STRAGGLE) = 42) and the chunks they are on: at 40,
/// two readers that both fell behind (a loaded 2-core machine) awaited more than was
/// kept, and the least recently used of those, the next one a reader needed, went.
const KEPT: usize = 48;
/// How far (in chunks) one reader's reads fall behind its furthest read: the kernel's
/// parallel reads arrive out of order. Chunks that far behind are still the reader's to
/// come; reads that far behind are still its.
pub(super) const STRAGGLE: u64 = 4;
/// How far (in chunks) one reader's next read runs ahead of its furthest read so far:
/// the kernel's read-ahead window (4 MiB, raised at mount) spans at most 3 chunks. A
/// read further ahead is another reader's, or a jump.
pub(super) const LEAD: u64 = 3;
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

/// Records a read's end in a file's bounded list of recent ends.
pub(super) fn remember(ends: &mut VecDeque<u64>, end: u64) {
    if ends.len() >= ENDS {
        ends.pop_front();
    }
    ends.push_back(end);
}

/// A stream as readers see it: it fills chunk `next`, then the ones after it, up to
/// (not including) `limit`, for a reader whose furthest read so far is in chunk `read`.
pub(super) struct Ctl {
    pub(super) id: u64,
    pub(super) next: u64,
    pub(super) limit: u64,
    pub(super) read: u64,
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
            let at = self
                .chunks
                .iter()
                .position(|(i, _)| !self.awaited(*i))
                .unwrap_or(0);
            if let Some((_, old)) = self.chunks.remove(at) {
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

    /// Whether a live stream has filled (or is filling) chunk `index` for a reader that
    /// has not got there yet. Under load a reader falls behind its stream; the chunks
    /// it has just read are then the most recently used (and never needed again: the
    /// kernel keeps what it was given), so plain LRU dropped the ones it needs next,
    /// and it fetched each of them alone, a request per chunk.
    fn awaited(&self, index: u64) -> bool {
        self.streams
            .iter()
            .any(|c| index < c.next && index + STRAGGLE >= c.read)
    }

    /// Whether stream `at` leaves chunk `index` to another: the stream of a reader nearer
    /// behind it. Two readers of one disk (its partitions read at once) each have a
    /// stream, and the first's runs up to AHEAD chunks past its reader, into the part
    /// the second reads; filling there, the two streams took turns at the chunks ahead
    /// of the second reader, and each turn cost each stream a new request.
    pub(super) fn yields(&self, at: usize, index: u64) -> bool {
        let mine = self.streams[at].read;
        self.streams
            .iter()
            .enumerate()
            .any(|(k, c)| k != at && c.read > mine && c.read <= index + STRAGGLE)
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
        let r = self.remote.read_exact_at(start, &mut buf).map(|()| buf);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that has filled up to `next` for a reader whose furthest read is `read`.
    fn stream(id: u64, read: u64, next: u64) -> Ctl {
        Ctl {
            id,
            next,
            limit: read + 1 + AHEAD,
            read,
        }
    }

    fn kept(st: &State) -> Vec<u64> {
        let mut v: Vec<u64> = st.chunks.iter().map(|(i, _)| *i).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn chunks_a_lagging_reader_awaits_outlive_those_it_has_read() {
        let mut st = State::default();
        // Stream 0 has filled chunks 0..30 for a reader that has read up to chunk 9.
        st.streams.push(stream(0, 9, 30));
        for i in 0..30 {
            st.slot(i, true);
        }
        // The reader's chunks 0..=9 are read again by it (most recently used).
        for i in 0..10 {
            st.slot(i, true);
        }
        // Another reader's stream far away fills enough more to go 5 over KEPT.
        let far = 500..500 + KEPT as u64 - 25;
        st.streams.push(stream(1, 500, far.end));
        for i in far.clone() {
            st.slot(i, true);
        }
        let k = kept(&st);
        assert_eq!(k.len(), KEPT);
        // Everything the first reader has yet to read (from STRAGGLE chunks behind its
        // furthest read on) is still there; what went is what it had read.
        for i in 9 - STRAGGLE..30 {
            assert!(k.contains(&i), "chunk {i} dropped: {k:?}");
        }
        for i in far {
            assert!(k.contains(&i), "chunk {i} dropped: {k:?}");
        }
        assert_eq!(&k[..25], &(5..30).collect::<Vec<u64>>()[..]);
    }

    #[test]
    fn with_every_chunk_awaited_the_least_recently_used_goes() {
        let mut st = State::default();
        st.streams.push(stream(0, 0, 1000));
        for i in 0..KEPT as u64 + 1 {
            st.slot(i, true);
        }
        let k = kept(&st);
        assert_eq!(k.len(), KEPT);
        assert!(!k.contains(&0));
    }

    #[test]
    fn a_stream_leaves_the_chunks_ahead_of_a_nearer_reader_to_that_readers_stream() {
        let mut st = State::default();
        let ctl = |id, read: u64| stream(id, read, read + 1);
        // Readers at chunks 19 and 25 (two partitions read at once), one far off at 500.
        st.streams.extend([ctl(0, 19), ctl(1, 25), ctl(2, 500)]);
        assert!(!st.yields(0, 20), "nearest behind 20 is reader 0");
        assert!(st.yields(0, 21), "reader 1 is within STRAGGLE of 21");
        assert!(st.yields(0, 30));
        assert!(!st.yields(1, 30), "reader 1 is the nearest behind 30");
        assert!(!st.yields(1, 200), "reader 2 is past it, not behind");
        assert!(!st.yields(2, 510));
    }
}
