//! Read-ahead for a sparse changes view. A SEEK_DATA-aware copier asks for one changed
//! extent at a time, and each extent costs a round trip of its own to the datastore (a
//! Range request through vSphere, a seek on a cold local disk), so a nightly incremental
//! of small scattered changes is bound by latency, not bytes. The list of extents is
//! known, so the next ones are fetched by a few standing workers, several at once,
//! while the reader copies this one.
//!
//! Extents that lie in a remote file are fetched in batches of neighbours in the list:
//! a batch's extents are placed in the chain's files, the pieces that lie near each
//! other in one file are read as one range, and the file asks for all of a batch's
//! ranges in one request (`vmsnapfs_io::read_placed`). So a batch costs one request, not
//! one per extent, wherever its changes lie. Local files are read an extent a fetch, by
//! as many workers at once; extents that cannot be placed (compressed grains) are read
//! one by one. A reader that reaches an extent whose batch no worker has started yet
//! fetches that batch itself, whole, so a late worker (a loaded machine) costs no
//! request per extent either.
//!
//! A fetched extent may also be handed to a sink (the FUSE layer stores it in the
//! kernel's page cache of the view's file), so the reader's read of it is answered by
//! the kernel without a request to us: a SEEK_DATA-aware copy is a chain of small
//! synchronous requests, and each one it need not make is a round trip between two
//! processes saved. Such a reader's SEEK_DATA then says where it is (`seek`).
//!
//! The window starts at one batch and doubles each time the reader takes an extent
//! fetched for it, so a reader that only looks at a few extents costs a request or two
//! more, not a window's worth; memory stays under `WINDOW` batches of at most
//! `BATCH_BYTES` (plus one extent) each. The workers stand for the life of the process:
//! a thread started per extent cost more than the cached 64 KiB read it made, and
//! readers of several disks at once started threads without bound.

use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

use vmsnapfs_io::{read_placed, Merge, Piece, Places, ReadAt};

use crate::sync::Relock;

/// Batches fetched ahead at most (and so requests in flight at once), and workers.
const WINDOW: usize = 8;
/// Extents one batch holds at most.
const BATCH: usize = 8;
/// A batch is closed once its extents hold this many bytes.
const BATCH_BYTES: u64 = 1 << 20;
/// Bigger extents are read as asked: their reads are big enough to carry the latency.
const MAX_EXTENT: u64 = 1 << 20;
/// A gap of up to 256 KiB between two pieces of one file is read with them: it costs a
/// fraction of a millisecond on a datastore link, a request about a millisecond.
const MERGE: Merge = Merge {
    gap: 256 << 10,
    span: 4 << 20,
};

/// Takes a fetched extent's bytes (the disk offset they start at) where a reader finds
/// them without asking us. Called after the extent's job is done, so a read waiting on
/// it is never held up by the hand-over.
pub type Sink = Arc<dyn Fn(u64, &[u8]) + Send + Sync>;

#[derive(Default)]
pub struct Ahead {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Extent index → its fetch, queued, started or done.
    jobs: BTreeMap<usize, Arc<Job>>,
    /// Batches to fetch ahead of the next read (grows on hits up to WINDOW).
    window: usize,
    /// Whether the disk's extents have been seen placed in a remote file: batches of
    /// several extents are only for such files. A local file's extents are fetched one
    /// by one, each by a worker of its own: a cold local disk serves eight small reads
    /// at once sooner than one merged read (measured: 20-25 % slower copies merged).
    ranged: Arc<AtomicBool>,
}

enum Slot {
    Queued,
    Running,
    /// The bytes, or None when the fetch failed.
    Done(Option<Arc<Vec<u8>>>),
    /// The reader got there before any worker and reads it itself.
    Claimed,
}

struct Job {
    slot: Mutex<Slot>,
    ready: Condvar,
    /// The batch it was queued in, for a reader that gets there before a worker.
    batch: Weak<Batch>,
}

impl Job {
    fn new(batch: Weak<Batch>) -> Job {
        Job {
            slot: Mutex::new(Slot::Queued),
            ready: Condvar::new(),
            batch,
        }
    }

    /// For the reader: the extent's bytes when they were fetched for it; None when it
    /// must read them itself (the fetch failed, and the reader reports the error with
    /// its own context). A batch no worker has started yet is fetched by the reader,
    /// whole: taking this extent alone would cost a request of its own and one more
    /// for the rest, and a loaded machine's workers may start late for many batches in
    /// a row (the kernel's own read-ahead then reached them all before a worker did).
    fn take(&self) -> Option<Arc<Vec<u8>>> {
        let mut fetched_here = false;
        let mut g = self.slot.lock().relock();
        loop {
            match &*g {
                Slot::Queued if !fetched_here => {
                    let Some(batch) = self.batch.upgrade() else {
                        *g = Slot::Claimed;
                        return None;
                    };
                    drop(g);
                    batch.run(Some(self));
                    fetched_here = true;
                    g = self.slot.lock().relock();
                }
                Slot::Queued | Slot::Claimed => {
                    *g = Slot::Claimed;
                    return None;
                }
                Slot::Done(r) => return r.clone(),
                Slot::Running => g = self.ready.wait(g).relock(),
            }
        }
    }

    /// For whoever fetches the batch: whether this extent is still wanted (it is then
    /// marked running).
    fn start(&self) -> bool {
        let mut g = self.slot.lock().relock();
        let wanted = matches!(*g, Slot::Queued);
        if wanted {
            *g = Slot::Running;
        }
        wanted
    }

    fn finish(&self, r: Option<Arc<Vec<u8>>>) {
        *self.slot.lock().relock() = Slot::Done(r);
        self.ready.notify_all();
    }
}

/// Extents fetched together, and where from: by a worker, or by the reader that
/// reaches one of them first.
struct Batch {
    data: Arc<dyn ReadAt>,
    ranged: Arc<AtomicBool>,
    jobs: Vec<(Arc<Job>, Range<u64>)>,
    sink: Option<Sink>,
}

/// What the workers do: fetch a batch, or hand a batch a reader fetched to its sink.
enum Task {
    Fetch(Arc<Batch>),
    Hand(Sink, Vec<(u64, Arc<Vec<u8>>)>),
}

impl Batch {
    fn new(
        data: &Arc<dyn ReadAt>,
        ranged: &Arc<AtomicBool>,
        extents: impl Iterator<Item = Range<u64>>,
        sink: Option<&Sink>,
    ) -> Arc<Batch> {
        Arc::new_cyclic(|me: &Weak<Batch>| Batch {
            data: data.clone(),
            ranged: ranged.clone(),
            jobs: extents
                .map(|r| (Arc::new(Job::new(me.clone())), r))
                .collect(),
            sink: sink.cloned(),
        })
    }

    /// Fetches the extents no one has started: on a worker, or for the `reader` of one
    /// of them. A reader never hands them to the sink itself: it may be answering a read
    /// of the kernel's pages, which stay locked until it does, and the sink would wait
    /// on them for ever. A worker hands them over instead, but for the reader's own
    /// extent, which its read puts there.
    fn run(&self, reader: Option<&Job>) {
        let mine: Vec<_> = self.jobs.iter().filter(|(j, _)| j.start()).collect();
        if mine.is_empty() {
            return;
        }
        let extents: Vec<Range<u64>> = mine.iter().map(|(_, r)| r.clone()).collect();
        // A source that panics must not leave the reader waiting on these jobs forever,
        // nor take the worker with it: the reader reads the extents itself instead.
        let fetched = std::panic::catch_unwind(AssertUnwindSafe(|| {
            vmsnapfs_io::hint::scattered(|| fetch(&*self.data, &extents, &self.ranged))
        }))
        .unwrap_or_default();
        let mut done = Vec::new();
        for ((job, r), bytes) in mine
            .into_iter()
            .zip(fetched.into_iter().chain(std::iter::repeat(None)))
        {
            job.finish(bytes.clone());
            let read_here = reader.is_some_and(|j| std::ptr::eq(j, &**job));
            if let Some(b) = bytes.filter(|_| !read_here) {
                done.push((r.start, b));
            }
        }
        // Only once every job of the batch is done: a read of the kernel's pages may wait
        // on one of them while holding the pages the sink would fill.
        let Some(sink) = &self.sink else {
            return;
        };
        if reader.is_none() {
            hand(sink, done);
        } else if let Some(queue) = workers().filter(|_| !done.is_empty()) {
            let _ = queue.send(Task::Hand(sink.clone(), done));
        }
    }
}

fn hand(sink: &Sink, done: Vec<(u64, Arc<Vec<u8>>)>) {
    for (at, bytes) in done {
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| sink(at, &bytes)));
    }
}

/// The bytes of each extent, None for one that could not be read (its reader reads it
/// again and reports the error with its own context). Placed extents are read
/// together, the others one by one.
fn fetch(
    data: &dyn ReadAt,
    extents: &[Range<u64>],
    ranged: &AtomicBool,
) -> Vec<Option<Arc<Vec<u8>>>> {
    let mut bufs: Vec<Vec<u8>> = extents
        .iter()
        .map(|r| vec![0u8; (r.end - r.start) as usize])
        .collect();
    let mut ok = vec![true; extents.len()];
    let mut placed: Vec<Option<Places>> = Vec::with_capacity(extents.len());
    for (k, r) in extents.iter().enumerate() {
        let mut p = Places::with_ranged();
        if data.place(r.start, r.end - r.start, &mut p) {
            if p.pieces().iter().any(|p| matches!(p, Piece::Ranged { .. })) {
                ranged.store(true, Ordering::Relaxed);
            }
            placed.push(Some(p));
        } else {
            ok[k] = data.read_at(r.start, &mut bufs[k]).is_ok();
            placed.push(None);
        }
    }
    let mut batch: Vec<(&Places, &mut [u8])> = placed
        .iter()
        .zip(bufs.iter_mut())
        .filter_map(|(p, b)| p.as_ref().map(|p| (p, &mut b[..])))
        .collect();
    if !batch.is_empty() && read_placed(&mut batch, MERGE).is_err() {
        for (k, p) in placed.iter().enumerate() {
            ok[k] &= p.is_none();
        }
    }
    bufs.into_iter()
        .zip(ok)
        .map(|(b, ok)| ok.then(|| Arc::new(b)))
        .collect()
}

/// The workers' queue, started on first use; None when no worker could be started
/// (readers then read every extent as asked).
fn workers() -> Option<&'static Sender<Task>> {
    static QUEUE: OnceLock<Option<Sender<Task>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = channel::<Task>();
            let rx = Arc::new(Mutex::new(rx));
            let started = (0..WINDOW)
                .filter(|_| {
                    let rx = rx.clone();
                    std::thread::Builder::new()
                        .name("changes-ahead".into())
                        .spawn(move || work(&rx))
                        .is_ok()
                })
                .count();
            (started > 0).then_some(tx)
        })
        .as_ref()
}

fn work(rx: &Mutex<Receiver<Task>>) {
    loop {
        // The lock is held only while waiting for the next fetch, not while running it.
        let next = rx.lock().relock().recv();
        match next {
            Ok(Task::Fetch(b)) => b.run(None),
            Ok(Task::Hand(sink, done)) => hand(&sink, done),
            Err(_) => return,
        }
    }
}

impl Ahead {
    /// Reads `part.len()` bytes at `at` of extent `i` of `extents` into `part`, from a
    /// fetch made ahead when there is one, and starts fetching the extents after it.
    pub fn read(
        &self,
        data: &Arc<dyn ReadAt>,
        extents: &[Range<u64>],
        i: usize,
        at: u64,
        part: &mut [u8],
        sink: Option<&Sink>,
    ) -> io::Result<()> {
        let r = &extents[i];
        let job = {
            let mut st = self.state.lock().relock();
            let job = st.jobs.get(&i).cloned();
            st.moved_to(data, extents, i, job.is_some(), sink);
            job
        };
        let fetched = job.as_ref().and_then(|j| j.take());
        let read = match fetched {
            Some(bytes) => {
                let from = (at - r.start) as usize;
                part.copy_from_slice(&bytes[from..from + part.len()]);
                Ok(())
            }
            None => vmsnapfs_io::hint::scattered(|| data.read_at(at, part)),
        };
        if job.is_some() && at + part.len() as u64 == r.end {
            self.state.lock().relock().jobs.remove(&i);
        }
        read
    }

    /// A reader's SEEK_DATA found extent `i`, which it reads next (from the kernel's
    /// pages when the sink put it there): extent `i` is fetched first if it is not
    /// already under way, then the window moves as for a read.
    pub fn seek(&self, data: &Arc<dyn ReadAt>, extents: &[Range<u64>], i: usize, sink: &Sink) {
        let Some(r) = extents.get(i) else {
            return;
        };
        let mut st = self.state.lock().relock();
        let hit = st.jobs.contains_key(&i);
        if !hit && r.end - r.start <= MAX_EXTENT {
            if let Some(queue) = workers() {
                st.send(queue, data, extents, vec![i], Some(sink));
            }
        }
        st.moved_to(data, extents, i, hit, Some(sink));
    }
}

impl State {
    /// The reader is at extent `i`: the window grows when a fetch was made for it (`hit`)
    /// and starts again from one batch when not; fetches it left behind are dropped,
    /// and those after it queued.
    fn moved_to(
        &mut self,
        data: &Arc<dyn ReadAt>,
        extents: &[Range<u64>],
        i: usize,
        hit: bool,
        sink: Option<&Sink>,
    ) {
        self.window = if hit {
            (self.window * 2).clamp(1, WINDOW)
        } else {
            1
        };
        self.jobs.retain(|&k, _| k + BATCH >= i);
        self.schedule(data, extents, i, sink);
    }

    /// Queues fetches of the extents after extent `i`, in batches, as far as the window
    /// reaches. Only whole batches go out (but at the end of the list): topped up one
    /// extent at a time as the reader advances, they would be a request per extent again.
    fn schedule(
        &mut self,
        data: &Arc<dyn ReadAt>,
        extents: &[Range<u64>],
        i: usize,
        sink: Option<&Sink>,
    ) {
        let Some(queue) = workers() else {
            return;
        };
        let len = |k: usize| extents[k].end - extents[k].start;
        let (mut count, mut bytes) = self
            .jobs
            .range(i + 1..)
            .fold((0, 0), |(n, b), (&k, _)| (n + 1, b + len(k)));
        let size = if self.ranged.load(Ordering::Relaxed) {
            BATCH
        } else {
            1
        };
        let (most, most_bytes) = (self.window * size, self.window as u64 * BATCH_BYTES);
        let mut batch: Vec<usize> = Vec::new();
        let mut batch_bytes = 0;
        let mut reached_end = true;
        for k in i + 1..extents.len() {
            if count >= most || bytes >= most_bytes {
                reached_end = false;
                break;
            }
            if self.jobs.contains_key(&k) || len(k) > MAX_EXTENT {
                continue;
            }
            batch.push(k);
            batch_bytes += len(k);
            count += 1;
            bytes += len(k);
            // The next extent goes on its own: the reader wants it now, not with a batch.
            if batch.len() == size || batch_bytes >= BATCH_BYTES || k == i + 1 {
                self.send(queue, data, extents, std::mem::take(&mut batch), sink);
                batch_bytes = 0;
            }
        }
        if reached_end && !batch.is_empty() {
            self.send(queue, data, extents, batch, sink);
        }
    }

    fn send(
        &mut self,
        queue: &Sender<Task>,
        data: &Arc<dyn ReadAt>,
        extents: &[Range<u64>],
        batch: Vec<usize>,
        sink: Option<&Sink>,
    ) {
        let b = Batch::new(
            data,
            &self.ranged,
            batch.iter().map(|&k| extents[k].clone()),
            sink,
        );
        let jobs: Vec<(usize, Arc<Job>)> = batch
            .into_iter()
            .zip(b.jobs.iter().map(|(j, _)| j.clone()))
            .collect();
        if queue.send(Task::Fetch(b)).is_ok() {
            self.jobs.extend(jobs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::thread::ThreadId;

    /// Bytes are their offset mod 251; reads are counted (and the threads that made
    /// them noted), and fail past `bad`.
    #[derive(Default)]
    struct Counted {
        reads: AtomicUsize,
        bad: u64,
        threads: Mutex<HashSet<ThreadId>>,
        /// The first read at this offset panics.
        panic_at: Option<u64>,
        panicked: AtomicBool,
    }

    impl ReadAt for Counted {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.threads
                .lock()
                .relock()
                .insert(std::thread::current().id());
            if self.panic_at == Some(offset) && !self.panicked.swap(true, Ordering::SeqCst) {
                panic!("source panics at {offset}");
            }
            if offset >= self.bad {
                return Err(io::Error::other("bad sector"));
            }
            for (k, b) in buf.iter_mut().enumerate() {
                *b = ((offset + k as u64) % 251) as u8;
            }
            Ok(())
        }
        fn size(&self) -> u64 {
            1 << 30
        }
    }

    /// A source that reads well everywhere.
    fn good() -> Arc<Counted> {
        Arc::new(Counted {
            bad: u64::MAX,
            ..Counted::default()
        })
    }

    fn extents(n: u64) -> Vec<Range<u64>> {
        (0..n).map(|k| k * 1000..k * 1000 + 100).collect()
    }

    fn want(r: &Range<u64>) -> Vec<u8> {
        (r.start..r.end).map(|o| (o % 251) as u8).collect()
    }

    /// Reads `n` extents of a good source in order, checking each; the source and the
    /// read-ahead are left to look at.
    fn read_in_order(n: u64) -> (Arc<Counted>, Ahead) {
        let src = good();
        let data: Arc<dyn ReadAt> = src.clone();
        let (ahead, ext) = (Ahead::default(), extents(n));
        for (i, r) in ext.iter().enumerate() {
            let mut buf = vec![0u8; 100];
            ahead.read(&data, &ext, i, r.start, &mut buf, None).unwrap();
            assert_eq!(buf, want(r), "extent {i}");
        }
        (src, ahead)
    }

    #[test]
    fn reads_in_order_get_the_right_bytes_and_fetch_each_extent_once() {
        let (src, ahead) = read_in_order(40);
        assert_eq!(src.reads.load(Ordering::SeqCst), 40);
        assert!(ahead.state.lock().relock().jobs.is_empty());
    }

    #[test]
    fn a_part_of_an_extent_and_a_failed_fetch_are_read_as_asked() {
        let src = Arc::new(Counted {
            bad: 5000,
            ..Counted::default()
        });
        let data: Arc<dyn ReadAt> = src;
        let (ahead, ext) = (Ahead::default(), extents(10));
        let mut buf = vec![0u8; 100];
        ahead.read(&data, &ext, 0, 0, &mut buf, None).unwrap();
        let mut half = vec![0u8; 30];
        ahead.read(&data, &ext, 1, 1050, &mut half, None).unwrap();
        assert_eq!(half, want(&(1050..1080)));
        // Extent 5 fails ahead and again when asked: the reader sees the error.
        for i in 2..5 {
            ahead
                .read(&data, &ext, i, ext[i].start, &mut buf, None)
                .unwrap();
        }
        assert!(ahead.read(&data, &ext, 5, 5000, &mut buf, None).is_err());
    }

    #[test]
    fn a_reader_that_jumps_keeps_few_fetches() {
        let data: Arc<dyn ReadAt> = good();
        let (ahead, ext) = (Ahead::default(), extents(1000));
        let mut buf = vec![0u8; 100];
        for i in (0..1000).step_by(97) {
            ahead
                .read(&data, &ext, i, ext[i].start, &mut buf, None)
                .unwrap();
            assert_eq!(buf, want(&ext[i]));
            assert!(ahead.state.lock().relock().jobs.len() <= 2 * BATCH);
        }
    }

    #[test]
    fn fetches_run_on_standing_workers_not_a_thread_each() {
        let (src, _) = read_in_order(200);
        let threads = src.threads.lock().relock().len();
        // The workers and this reader, however many extents.
        assert!(threads <= WINDOW + 1, "{threads} threads read 200 extents");
        assert_eq!(src.reads.load(Ordering::SeqCst), 200);
    }

    #[test]
    fn a_fetch_no_worker_started_is_the_readers_and_no_worker_makes_it() {
        // Its batch gone (nothing to fetch it with): the reader reads it as asked.
        let job = Job::new(Weak::new());
        assert!(job.take().is_none(), "queued: the reader reads it itself");
        assert!(!job.start(), "claimed: a worker skips it");
        let job = Job::new(Weak::new());
        assert!(job.start());
        job.finish(Some(Arc::new(vec![7; 3])));
        assert_eq!(job.take().as_deref(), Some(&vec![7; 3]));
    }

    #[test]
    fn a_source_that_panics_ahead_leaves_no_reader_waiting() {
        let src = Arc::new(Counted {
            bad: u64::MAX,
            panic_at: Some(3000),
            ..Counted::default()
        });
        let data: Arc<dyn ReadAt> = src.clone();
        let (ahead, ext) = (Ahead::default(), extents(10));
        let mut buf = vec![0u8; 100];
        for (i, r) in ext.iter().enumerate() {
            // Extent 3's first read panics: on a worker when it is fetched ahead (the
            // reader then reads it again), else in the reader, which is this test's.
            let got = std::panic::catch_unwind(AssertUnwindSafe(|| {
                ahead.read(&data, &ext, i, r.start, &mut buf, None)
            }));
            match got {
                Ok(r) => r.unwrap(),
                Err(_) => ahead.read(&data, &ext, i, r.start, &mut buf, None).unwrap(),
            }
            assert_eq!(buf, want(r), "extent {i}");
        }
        assert!(src.panicked.load(Ordering::SeqCst));
    }

    /// A disk whose extent k (at k * 1000) lies in `file` at `at(k)`, and places it there.
    struct Linked {
        file: vmsnapfs_io::Ranged,
        at: fn(u64) -> u64,
    }

    impl Linked {
        fn map(&self, offset: u64) -> u64 {
            (self.at)(offset / 1000) + offset % 1000
        }
    }

    impl ReadAt for Linked {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.file.0.read_at(self.map(offset), buf)
        }
        fn size(&self) -> u64 {
            1 << 30
        }
        fn place(&self, offset: u64, len: u64, out: &mut Places) -> bool {
            out.ranged(&self.file, self.map(offset), len)
        }
    }

    /// Reads `n` extents of a `Linked` disk in order, as a copier would (which takes a
    /// while between extents: it writes each and seeks to the next); the reads the file
    /// saw.
    fn read_linked(n: u64, at: fn(u64) -> u64) -> usize {
        let file = good();
        let data: Arc<dyn ReadAt> = Arc::new(Linked {
            file: vmsnapfs_io::Ranged(file.clone()),
            at,
        });
        let (ahead, ext) = (Ahead::default(), extents(n));
        let mut buf = vec![0u8; 100];
        for (i, r) in ext.iter().enumerate() {
            std::thread::sleep(std::time::Duration::from_micros(300));
            ahead.read(&data, &ext, i, r.start, &mut buf, None).unwrap();
            let at = at(i as u64);
            assert_eq!(buf, want(&(at..at + 100)), "extent {i}");
        }
        file.reads.load(Ordering::SeqCst)
    }

    #[test]
    fn extents_side_by_side_in_a_file_are_fetched_a_batch_a_request() {
        // 200 extents a kilobyte apart in the disk, back to back in the file: the
        // first read as asked, then batches (a few more when a worker starts late and
        // the reader reads an extent itself).
        let reads = read_linked(200, |k| 5000 + k * 100);
        let batches = 199usize.div_ceil(BATCH);
        assert!(
            reads <= 1 + batches + 4,
            "{reads} reads for {batches} batches"
        );
    }

    #[test]
    fn extents_far_apart_in_a_file_are_fetched_one_a_request() {
        // A megabyte apart: past the gap worth reading.
        assert_eq!(read_linked(50, |k| k * (1 << 20)), 50);
    }

    /// What a sink was handed: each extent's start and bytes.
    type Handed = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

    /// A sink that records what it is handed.
    fn recording() -> (Sink, Handed) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let sink: Sink =
            Arc::new(move |at: u64, b: &[u8]| g.lock().relock().push((at, b.to_vec())));
        (sink, got)
    }

    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let t = std::time::Instant::now();
        while !done() {
            assert!(t.elapsed().as_secs() < 10, "still waiting for {what}");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn a_seeking_reader_gets_the_extents_ahead_handed_to_the_sink() {
        let src = good();
        let data: Arc<dyn ReadAt> = src.clone();
        let (ahead, ext) = (Ahead::default(), extents(40));
        let (sink, got) = recording();
        // A copier whose reads the kernel answers: only its SEEK_DATAs come to us.
        for i in 0..ext.len() {
            ahead.seek(&data, &ext, i, &sink);
            wait_for(&format!("extent {i} in the sink"), || {
                got.lock()
                    .relock()
                    .iter()
                    .any(|(at, _)| *at == ext[i].start)
            });
        }
        let got = got.lock().relock();
        for (at, bytes) in got.iter() {
            let r = ext
                .iter()
                .find(|r| r.start == *at)
                .expect("an extent's start");
            assert_eq!(*bytes, want(r));
        }
        // Each extent fetched once, though no read ever took one.
        assert_eq!(src.reads.load(Ordering::SeqCst), 40);
        assert_eq!(got.len(), 40);
        // Seeking past the last extent (no data after) is nothing to fetch.
        ahead.seek(&data, &ext, ext.len(), &sink);
    }

    #[test]
    fn the_sink_runs_after_the_jobs_are_done_so_a_read_waiting_on_one_never_blocks_it() {
        // As the kernel would: the sink for an extent waits until a read of that
        // extent, which waits for the fetch, has its bytes. Handing over first would
        // leave both waiting for ever.
        let src = good();
        let data: Arc<dyn ReadAt> = src.clone();
        let (ahead, ext) = (Ahead::default(), extents(20));
        let read_done = Arc::new((Mutex::new(false), Condvar::new()));
        let timed_out = Arc::new(AtomicBool::new(false));
        let (rd, to) = (read_done.clone(), timed_out.clone());
        let target = ext[1].start;
        let sink: Sink = Arc::new(move |at: u64, _: &[u8]| {
            if at == target {
                let (m, c) = &*rd;
                let g = m.lock().relock();
                let (_g, w) = c
                    .wait_timeout_while(g, std::time::Duration::from_secs(5), |d| !*d)
                    .relock();
                to.store(w.timed_out(), Ordering::SeqCst);
            }
        });
        ahead.seek(&data, &ext, 0, &sink);
        // Both fetches made (extent 0, and 1 ahead of it): extent 1's worker is done
        // with it or in the sink, never waiting to start.
        wait_for("two fetches", || src.reads.load(Ordering::SeqCst) >= 2);
        let mut buf = vec![0u8; 100];
        ahead
            .read(&data, &ext, 1, ext[1].start, &mut buf, Some(&sink))
            .unwrap();
        assert_eq!(buf, want(&ext[1]));
        let (m, c) = &*read_done;
        *m.lock().relock() = true;
        c.notify_all();
        wait_for("the sink", || Arc::strong_count(&sink) == 1);
        assert!(
            !timed_out.load(Ordering::SeqCst),
            "the read waited on the hand-over"
        );
    }

    #[test]
    fn a_reader_that_reaches_a_queued_batch_fetches_it_whole_and_a_worker_hands_the_rest_over() {
        // As the kernel's read-ahead on a loaded machine: a read reaches extent 2 of a
        // batch of 2..6 before any worker starts it.
        let file = good();
        let data: Arc<dyn ReadAt> = Arc::new(Linked {
            file: vmsnapfs_io::Ranged(file.clone()),
            at: |k| 5000 + k * 100,
        });
        let ext = extents(8);
        let (sink, got) = recording();
        let me = std::thread::current().id();
        let handed_by = Arc::new(Mutex::new(HashSet::new()));
        let by = handed_by.clone();
        let sink: Sink = Arc::new(move |at: u64, b: &[u8]| {
            by.lock().relock().insert(std::thread::current().id());
            sink(at, b)
        });
        let ranged = Arc::new(AtomicBool::new(false));
        let batch = Batch::new(&data, &ranged, ext[2..6].iter().cloned(), Some(&sink));
        let bytes = batch.jobs[0].0.take().expect("fetched by the reader");
        assert_eq!(*bytes, want(&(5200..5300)));
        assert_eq!(
            file.reads.load(Ordering::SeqCst),
            1,
            "one request, four extents"
        );
        for (k, (job, _)) in batch.jobs.iter().enumerate().skip(1) {
            let at = 5000 + (k as u64 + 2) * 100;
            assert_eq!(job.take().as_deref(), Some(&want(&(at..at + 100))));
        }
        assert_eq!(file.reads.load(Ordering::SeqCst), 1);
        // A worker that gets to the batch later finds nothing to do.
        batch.run(None);
        assert_eq!(file.reads.load(Ordering::SeqCst), 1);
        // All but the reader's own extent, which its read answers: one hand-over.
        wait_for("the hand-over", || got.lock().relock().len() == 3);
        let starts: Vec<u64> = got.lock().relock().iter().map(|(at, _)| *at).collect();
        assert_eq!(starts, vec![3000, 4000, 5000]);
        assert!(
            !handed_by.lock().relock().contains(&me),
            "the reader handed its batch to the sink itself"
        );
    }
}
