//! Read-ahead for a sparse changes view. A SEEK_DATA-aware copier asks for one changed
//! extent at a time, and each extent costs a round trip of its own to the datastore (a
//! Range request through vSphere, a seek on a cold local disk), so a nightly incremental
//! of small scattered changes is bound by latency, not bytes. The list of extents is
//! known, so the next ones are fetched by a few standing workers, several at once,
//! while the reader copies this one.
//!
//! The window starts small and doubles each time the reader takes an extent fetched
//! for it, so a reader that only looks at a few extents costs a few requests more, not
//! a window's worth; memory stays under `WINDOW` extents of at most `MAX_EXTENT` each.
//! The workers stand for the life of the process: a thread started per extent cost
//! more than the cached 64 KiB read it made, and readers of several disks at once
//! started threads without bound.

use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use vmsnapfs_io::ReadAt;

use crate::sync::Relock;

/// Extents fetched ahead at most (and so requests in flight at once), and workers.
const WINDOW: usize = 8;
/// Bigger extents are read as asked: their reads are big enough to carry the latency.
const MAX_EXTENT: u64 = 1 << 20;

#[derive(Default)]
pub struct Ahead {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Extent index → its fetch, queued, started or done.
    jobs: BTreeMap<usize, Arc<Job>>,
    /// Extents to fetch ahead of the next read (grows on hits up to WINDOW).
    window: usize,
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
}

impl Job {
    fn new() -> Job {
        Job {
            slot: Mutex::new(Slot::Queued),
            ready: Condvar::new(),
        }
    }

    /// For the reader: the extent's bytes when they were fetched for it; None when it
    /// must read them itself (the fetch failed, and the reader reports the error with
    /// its own context; or no worker has started it, and none will now). Waits only
    /// for a fetch already under way.
    fn take(&self) -> Option<Arc<Vec<u8>>> {
        let mut g = self.slot.lock().relock();
        loop {
            match &*g {
                Slot::Queued => {
                    *g = Slot::Claimed;
                    return None;
                }
                Slot::Claimed => return None,
                Slot::Done(r) => return r.clone(),
                Slot::Running => g = self.ready.wait(g).relock(),
            }
        }
    }

    /// For a worker: whether the fetch is still wanted (it is then marked running).
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

/// A fetch for a worker: the job to fill, and where from.
struct Fetch {
    job: Arc<Job>,
    data: Arc<dyn ReadAt>,
    extent: Range<u64>,
}

impl Fetch {
    fn run(self) {
        if !self.job.start() {
            return;
        }
        // A source that panics must not leave the reader waiting on this job forever,
        // nor take the worker with it: the reader reads the extent itself instead.
        let fetched = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut buf = vec![0u8; (self.extent.end - self.extent.start) as usize];
            vmsnapfs_io::hint::scattered(|| self.data.read_at(self.extent.start, &mut buf))
                .ok()
                .map(|()| Arc::new(buf))
        }));
        self.job.finish(fetched.ok().flatten());
    }
}

/// The workers' queue, started on first use; None when no worker could be started
/// (readers then read every extent as asked).
fn workers() -> Option<&'static Sender<Fetch>> {
    static QUEUE: OnceLock<Option<Sender<Fetch>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = channel::<Fetch>();
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

fn work(rx: &Mutex<Receiver<Fetch>>) {
    loop {
        // The lock is held only while waiting for the next fetch, not while running it.
        let next = rx.lock().relock().recv();
        match next {
            Ok(f) => f.run(),
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
    ) -> io::Result<()> {
        let r = &extents[i];
        let job = {
            let mut st = self.state.lock().relock();
            let job = st.jobs.get(&i).cloned();
            st.window = match job {
                Some(_) => (st.window * 2).clamp(1, WINDOW),
                None => 1,
            };
            // Fetches the reader has left behind are no use to it.
            st.jobs.retain(|&k, _| k + WINDOW >= i);
            st.schedule(data, extents, i);
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
}

impl State {
    /// Queues fetches of the extents after extent `i`, as far as the window reaches.
    fn schedule(&mut self, data: &Arc<dyn ReadAt>, extents: &[Range<u64>], i: usize) {
        let Some(queue) = workers() else {
            return;
        };
        let ahead = extents
            .iter()
            .enumerate()
            .skip(i + 1)
            .take(self.window)
            .filter(|(_, r)| r.end - r.start <= MAX_EXTENT);
        for (k, r) in ahead {
            if self.jobs.len() >= WINDOW * 2 || self.jobs.contains_key(&k) {
                continue;
            }
            let job = Arc::new(Job::new());
            let fetch = Fetch {
                job: job.clone(),
                data: data.clone(),
                extent: r.clone(),
            };
            if queue.send(fetch).is_ok() {
                self.jobs.insert(k, job);
            }
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

    fn extents(n: u64) -> Vec<Range<u64>> {
        (0..n).map(|k| k * 1000..k * 1000 + 100).collect()
    }

    fn want(r: &Range<u64>) -> Vec<u8> {
        (r.start..r.end).map(|o| (o % 251) as u8).collect()
    }

    /// Reads `n` extents of a good source in order, checking each; the source and the
    /// read-ahead are left to look at.
    fn read_in_order(n: u64) -> (Arc<Counted>, Ahead) {
        let src = Arc::new(Counted {
            bad: u64::MAX,
            ..Counted::default()
        });
        let data: Arc<dyn ReadAt> = src.clone();
        let (ahead, ext) = (Ahead::default(), extents(n));
        for (i, r) in ext.iter().enumerate() {
            let mut buf = vec![0u8; 100];
            ahead.read(&data, &ext, i, r.start, &mut buf).unwrap();
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
        ahead.read(&data, &ext, 0, 0, &mut buf).unwrap();
        let mut half = vec![0u8; 30];
        ahead.read(&data, &ext, 1, 1050, &mut half).unwrap();
        assert_eq!(half, want(&(1050..1080)));
        // Extent 5 fails ahead and again when asked: the reader sees the error.
        for i in 2..5 {
            ahead.read(&data, &ext, i, ext[i].start, &mut buf).unwrap();
        }
        assert!(ahead.read(&data, &ext, 5, 5000, &mut buf).is_err());
    }

    #[test]
    fn a_reader_that_jumps_keeps_few_fetches() {
        let data: Arc<dyn ReadAt> = Arc::new(Counted {
            bad: u64::MAX,
            ..Counted::default()
        });
        let (ahead, ext) = (Ahead::default(), extents(1000));
        let mut buf = vec![0u8; 100];
        for i in (0..1000).step_by(97) {
            ahead.read(&data, &ext, i, ext[i].start, &mut buf).unwrap();
            assert_eq!(buf, want(&ext[i]));
            assert!(ahead.state.lock().relock().jobs.len() <= 2 * WINDOW);
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
        let job = Job::new();
        assert!(job.take().is_none(), "queued: the reader reads it itself");
        assert!(!job.start(), "claimed: a worker skips it");
        let job = Job::new();
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
                ahead.read(&data, &ext, i, r.start, &mut buf)
            }));
            match got {
                Ok(r) => r.unwrap(),
                Err(_) => ahead.read(&data, &ext, i, r.start, &mut buf).unwrap(),
            }
            assert_eq!(buf, want(r), "extent {i}");
        }
        assert!(src.panicked.load(Ordering::SeqCst));
    }
}
