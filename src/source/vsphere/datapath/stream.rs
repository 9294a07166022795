//! Streams: one thread per run of sequential reads, reading one long Range request
//! (`SPAN` bytes, then the next) into the chunks ahead of its reader, in order, as fast
//! as the reader takes them. TCP's flow control holds the server back while the reader
//! is behind by `AHEAD` chunks; a stream nobody reads from for `IDLE` ends and drops its
//! connection (and, if it was the file's last, the file's chunks).
//!
//! A chunk's slot is claimed by exactly one filler. Readers make unclaimed slots only for
//! chunks a live stream will reach, and a stream that ends hands each unclaimed slot
//! still ahead of it back (abandoned, or failed with its error), so no reader waits for a
//! chunk nobody fills.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::net::http::Response;
use crate::sync::Relock;

use super::chunks::{Ctl, Fill, Inner, Slot, State, AHEAD, LEAD, STRAGGLE, STREAMS};
use super::remote::{Attempt, Remote};

/// One request's length: long enough that the server's work per request is nothing,
/// short enough that no request outlives a typical server's idea of a long transfer.
const SPAN: u64 = 256 << 20;
/// A stream whose reader asks for nothing more for this long ends.
const IDLE: Duration = Duration::from_secs(5);

/// Under the state lock, for a read of chunks `first..=last` that continues a stream:
/// moves the stream on (starting one where none is this reader's), and returns each
/// chunk's slot and whether the caller must fetch it itself.
pub(super) fn plan(
    inner: &Arc<Inner>,
    st: &mut State,
    first: u64,
    last: u64,
) -> Vec<(u64, Arc<Slot>, bool)> {
    let ahead_end = (last + 1 + AHEAD).min(inner.chunks());
    // The kernel's parallel reads of one reader arrive a little out of order, a little
    // behind its furthest read or a little ahead: the stream whose reader's furthest
    // read is nearest, if that near, is this read's. Judged by where the reader is, not
    // by where its stream has filled to: a stream runs up to AHEAD chunks past its
    // reader, and a second reader starting there (two partitions of one disk read at
    // once) would take it over, leaving the first to fetch its chunks alone.
    let near = st
        .streams
        .iter()
        .enumerate()
        .filter(|(_, c)| first + STRAGGLE >= c.read && first <= c.read + LEAD)
        .min_by_key(|(_, c)| first.abs_diff(c.read))
        .map(|(k, _)| k);
    let next = match near.map(|k| &mut st.streams[k]) {
        Some(c) => {
            c.limit = c.limit.max(ahead_end);
            c.read = c.read.max(last);
            inner.demand.notify_all();
            Some(c.next)
        }
        None => (first..ahead_end)
            .find(|i| st.find(*i).is_none())
            .and_then(|start| start_stream(inner, st, start, ahead_end, last)),
    };
    (first..=last)
        .map(|i| {
            let by_stream = next.is_some_and(|n| n <= i);
            let (slot, new) = st.slot(i, !by_stream);
            (i, slot, new && !by_stream)
        })
        .collect()
}

/// Starts a stream at chunk `start`; its first chunk, or None if no thread could start.
fn start_stream(
    inner: &Arc<Inner>,
    st: &mut State,
    start: u64,
    limit: u64,
    read: u64,
) -> Option<u64> {
    if st.streams.len() >= STREAMS {
        retire(st, 0, Fill::Abandoned);
    }
    let id = st.next_stream;
    st.next_stream += 1;
    tracing::debug!("{}: stream {id} from chunk {start}", inner.remote.name());
    let me = inner.clone();
    std::thread::Builder::new()
        .name("vsphere-stream".into())
        .spawn(move || run(&me, id))
        .ok()?;
    st.streams.push(Ctl {
        id,
        next: start,
        limit,
        read,
    });
    Some(start)
}

/// Ends stream `at` (its thread sees it gone and exits); the unclaimed slots ahead of
/// it get `fill`.
fn retire(st: &mut State, at: usize, fill: Fill) {
    let c = st.streams.remove(at);
    tracing::debug!("stream {} ends at chunk {}", c.id, c.next);
    for (i, slot) in &st.chunks {
        if *i >= c.next && slot.claim() {
            slot.set(fill.clone());
        }
    }
}

/// Ends every stream of a file nobody reads any more.
pub(super) fn stop_all(inner: &Inner) {
    let mut st = inner.state();
    while !st.streams.is_empty() {
        retire(&mut st, 0, Fill::Abandoned);
    }
    inner.demand.notify_all();
}

/// The response being read, where its body is, and where it ends.
struct Open {
    resp: Response,
    pos: u64,
    end: u64,
}

fn run(inner: &Inner, id: u64) {
    let mut open: Option<Open> = None;
    while let Some((index, slot)) = next_job(inner, id) {
        let (start, mut buf) = inner.job(index);
        let r = inner
            .remote
            .retrying(|r, t| read_on(r, &mut open, start, &mut buf, t));
        match r {
            Ok(()) => slot.set(Fill::Data(Arc::new(buf))),
            Err(e) => {
                // The server stayed unreachable for the whole read deadline: the chunks
                // this stream owed fail the same way instead of each waiting it out again.
                let why = e.to_string();
                slot.set(Fill::Failed(why.clone()));
                let mut st = inner.state();
                if let Some(at) = st.streams.iter().position(|c| c.id == id) {
                    retire(&mut st, at, Fill::Failed(why));
                }
                return;
            }
        }
    }
}

/// The next chunk this stream fills, claimed; None once the stream has ended.
fn next_job(inner: &Inner, id: u64) -> Option<(u64, Arc<Slot>)> {
    let chunks = inner.chunks();
    let mut st = inner.state();
    // Nothing to fill for now: at its limit (at the end of the file too: its reader is
    // still taking the last chunks, which go when the stream ends idle), or at a chunk
    // nobody waits for that another stream's reader is nearer to.
    let idle = |st: &State, at: usize| {
        let next = st.streams[at].next;
        next >= st.streams[at].limit.min(chunks) || (st.find(next).is_none() && st.yields(at, next))
    };
    loop {
        let at = st.streams.iter().position(|c| c.id == id)?;
        let next = st.streams[at].next;
        if !idle(&st, at) {
            st.streams[at].next += 1;
            match st.find(next).cloned() {
                // A reader waits for it.
                Some(slot) if slot.claim() => return Some((next, slot)),
                // Fetched or being fetched by a reader: skipped (the request restarts
                // after it).
                Some(_) => {
                    tracing::debug!("stream {id} skips chunk {next}");
                    continue;
                }
                None => return Some((next, st.slot(next, true).0)),
            }
        }
        let (g, waited) = inner.demand.wait_timeout(st, IDLE).relock();
        st = g;
        if waited.timed_out() {
            let at = st.streams.iter().position(|c| c.id == id)?;
            if idle(&st, at) {
                retire(&mut st, at, Fill::Abandoned);
                if st.streams.is_empty() {
                    // Nobody streams this file any more: its chunks (up to 96 MiB) and
                    // spare buffers go, or a VM's disks read one after another would
                    // each keep theirs until the thaw.
                    st.chunks.clear();
                    st.spare.clear();
                }
                return None;
            }
        }
    }
}

/// Reads `buf.len()` bytes at `start` from the open response, first opening one there if
/// it is elsewhere. A response that fails is dropped, so a retry asks anew from `start`.
fn read_on(
    remote: &Remote,
    open: &mut Option<Open>,
    start: u64,
    buf: &mut [u8],
    budget: Duration,
) -> Attempt {
    let len = buf.len() as u64;
    if open
        .as_ref()
        .is_some_and(|o| o.pos != start || o.end < start + len)
    {
        *open = None;
    }
    let o = match open {
        Some(o) => o,
        None => {
            let end = (start + SPAN).min(remote.size()).max(start + len);
            match remote.range(start, end - start, budget) {
                Attempt::Done(resp) => open.insert(Open {
                    resp,
                    pos: start,
                    end,
                }),
                other => return other.without_value(),
            }
        }
    };
    let read = o
        .resp
        .set_deadline(Instant::now() + budget)
        .and_then(|()| o.resp.read_part(buf));
    match read {
        Ok(()) => {
            o.pos += len;
            if o.pos >= o.end {
                *open = None;
            }
            Attempt::Done(())
        }
        Err(e) => {
            *open = None;
            Attempt::Retry(format!("reading body: {e}"))
        }
    }
}
