//! Read-ahead for a sparse changes view. A SEEK_DATA-aware copier asks for one changed
//! extent at a time, and each extent costs a round trip of its own to the datastore (a
//! Range request through vSphere, a seek on a cold local disk), so a nightly incremental
//! of small scattered changes is bound by latency, not bytes. The list of extents is
//! known, so the next ones are fetched on other threads, several at once, while the
//! reader copies this one.
//!
//! The window starts small and doubles each time the reader takes an extent fetched
//! for it, so a reader that only looks at a few extents costs a few requests more, not
//! a window's worth; memory stays under `WINDOW` extents of at most `MAX_EXTENT` each.

use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex};

use vmsnapfs_io::ReadAt;

/// Extents fetched ahead at most (and so requests in flight at once).
const WINDOW: usize = 8;
/// Bigger extents are read as asked: their reads are big enough to carry the latency.
const MAX_EXTENT: u64 = 1 << 20;

#[derive(Default)]
pub struct Ahead {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Extent index → its fetch, started or done.
    jobs: BTreeMap<usize, Arc<Job>>,
    /// Extents to fetch ahead of the next read (grows on hits up to WINDOW).
    window: usize,
}

#[derive(Default)]
struct Job {
    done: Mutex<Option<Option<Arc<Vec<u8>>>>>,
    ready: Condvar,
}

impl Job {
    /// The extent's bytes, or None when the fetch failed (the caller reads it again,
    /// and so reports the error with its own context).
    fn wait(&self) -> Option<Arc<Vec<u8>>> {
        let mut g = relock(self.done.lock());
        loop {
            if let Some(r) = &*g {
                return r.clone();
            }
            g = relock(self.ready.wait(g));
        }
    }

    fn finish(&self, r: Option<Arc<Vec<u8>>>) {
        *relock(self.done.lock()) = Some(r);
        self.ready.notify_all();
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
            let mut st = relock(self.state.lock());
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
        if let Some(bytes) = job.and_then(|j| j.wait()) {
            let from = (at - r.start) as usize;
            part.copy_from_slice(&bytes[from..from + part.len()]);
            if at + part.len() as u64 == r.end {
                relock(self.state.lock()).jobs.remove(&i);
            }
            return Ok(());
        }
        vmsnapfs_io::hint::scattered(|| data.read_at(at, part))
    }
}

impl State {
    /// Starts fetching the extents after extent `i`, as far as the window reaches.
    fn schedule(&mut self, data: &Arc<dyn ReadAt>, extents: &[Range<u64>], i: usize) {
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
            let job = Arc::new(Job::default());
            self.jobs.insert(k, job.clone());
            let (data, r) = (data.clone(), r.clone());
            let spawned = std::thread::Builder::new()
                .name("changes-ahead".into())
                .spawn(move || {
                    let mut buf = vec![0u8; (r.end - r.start) as usize];
                    let ok = vmsnapfs_io::hint::scattered(|| data.read_at(r.start, &mut buf));
                    job.finish(ok.ok().map(|()| Arc::new(buf)));
                });
            if spawned.is_err() {
                // No thread to spare: the reader fetches it when it gets there.
                self.jobs.remove(&k);
            }
        }
    }
}

fn relock<G>(r: Result<G, std::sync::PoisonError<G>>) -> G {
    r.unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Bytes are their offset mod 251; reads are counted, and fail past `bad`.
    struct Counted {
        reads: AtomicUsize,
        bad: u64,
    }

    impl ReadAt for Counted {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.reads.fetch_add(1, Ordering::SeqCst);
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

    #[test]
    fn reads_in_order_get_the_right_bytes_and_fetch_each_extent_once() {
        let src = Arc::new(Counted {
            reads: AtomicUsize::new(0),
            bad: u64::MAX,
        });
        let data: Arc<dyn ReadAt> = src.clone();
        let (ahead, ext) = (Ahead::default(), extents(40));
        for (i, r) in ext.iter().enumerate() {
            let mut buf = vec![0u8; 100];
            ahead.read(&data, &ext, i, r.start, &mut buf).unwrap();
            assert_eq!(buf, want(r), "extent {i}");
        }
        assert_eq!(src.reads.load(Ordering::SeqCst), 40);
        assert!(relock(ahead.state.lock()).jobs.is_empty());
    }

    #[test]
    fn a_part_of_an_extent_and_a_failed_fetch_are_read_as_asked() {
        let src = Arc::new(Counted {
            reads: AtomicUsize::new(0),
            bad: 5000,
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
            reads: AtomicUsize::new(0),
            bad: u64::MAX,
        });
        let (ahead, ext) = (Ahead::default(), extents(1000));
        let mut buf = vec![0u8; 100];
        for i in (0..1000).step_by(97) {
            ahead.read(&data, &ext, i, ext[i].start, &mut buf).unwrap();
            assert_eq!(buf, want(&ext[i]));
            assert!(relock(ahead.state.lock()).jobs.len() <= 2 * WINDOW);
        }
    }
}
