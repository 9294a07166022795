//! Walk-ahead for tree walkers. `find`, `tar`, `rsync` and backup agents visit a tree
//! depth first in listing order, and each directory costs two waits in a row: ours (read
//! the index, parse every child's record) and then the kernel's (an inode and a dentry
//! per entry, in the walker's own thread). While the kernel takes in one directory, a
//! worker here reads the one the walker will open next (its first subdirectory, or the
//! next sibling) into the guest file system's caches, so the two waits overlap.
//!
//! Only a guess: a warmed directory the walker never opens costs one listing's work,
//! and a worker that is still busy when the next guess comes skips it.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

use crate::guestfs::GuestFs;
use crate::sync::Relock;

/// Directories bigger than this are listed but their children not read ahead: the
/// guest file system's caches would not keep them all.
const MAX_CHILDREN: usize = 1024;
/// Guesses kept (directory → the sibling after it); past this they start again.
const MAX_GUESSES: usize = 1 << 16;

/// (VM, volume, directory id).
type Key = (u32, u32, u64);

struct Job {
    fs: Arc<dyn GuestFs>,
    dir: u64,
    /// Keeps the VM frozen while the worker reads it (a `vm::Use`).
    _hold: Box<dyn Send>,
}

#[derive(Default)]
pub(super) struct WalkAhead {
    /// A directory → the next subdirectory of its parent, from the parent's listing.
    next: Mutex<HashMap<Key, u64>>,
    worker: OnceLock<Option<SyncSender<Job>>>,
}

impl WalkAhead {
    /// Called when directory `key` has been listed, with its subdirectories in listing
    /// order: warms what the walker opens next, under a hold on its VM that `hold`
    /// takes only when there is something to warm.
    pub(super) fn listed<H: Send + 'static>(
        &self,
        key: Key,
        subdirs: Vec<u64>,
        fs: &Arc<dyn GuestFs>,
        hold: impl FnOnce() -> Option<H>,
    ) {
        let (v, vol, dir) = key;
        let target = {
            let mut next = self.next.lock().relock();
            if next.len() + subdirs.len() > MAX_GUESSES {
                next.clear();
            }
            for w in subdirs.windows(2) {
                next.insert((v, vol, w[0]), w[1]);
            }
            // Depth first: into the first subdirectory, else on to the next sibling.
            subdirs
                .first()
                .copied()
                .or_else(|| next.remove(&(v, vol, dir)))
        };
        if let Some((dir, hold)) = target.and_then(|dir| Some((dir, hold()?))) {
            self.send(Job {
                fs: fs.clone(),
                dir,
                _hold: Box::new(hold),
            });
        }
    }

    fn send(&self, job: Job) {
        let worker = self.worker.get_or_init(|| {
            let (tx, rx) = sync_channel::<Job>(1);
            std::thread::Builder::new()
                .name("walk-ahead".into())
                .spawn(move || {
                    for job in rx {
                        warm(&*job.fs, job.dir);
                    }
                })
                .ok()
                .map(|_| tx)
        });
        if let Some(tx) = worker {
            // A worker still busy with the last guess skips this one.
            let _ = tx.try_send(job);
        }
    }
}

/// Reads `dir` and its children's attributes as the walker's listing will; errors are
/// the walker's own requests' to report.
fn warm(fs: &dyn GuestFs, dir: u64) {
    let Ok(entries) = fs.read_dir(dir) else {
        return;
    };
    if entries.len() > MAX_CHILDREN {
        return;
    }
    for e in entries {
        let _ = fs.stat(e.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guestfs::{DirEntry, Kind, Stat, VolumeInfo};
    use std::io;
    use std::time::{Duration, Instant};

    /// Directory `d` holds `d * 10 + k` for k < `sizes[d]`; records what is read.
    struct Tree {
        sizes: Vec<usize>,
        listed: Mutex<Vec<u64>>,
        stats: Mutex<usize>,
    }

    impl GuestFs for Tree {
        fn info(&self) -> VolumeInfo {
            VolumeInfo::default()
        }
        fn root(&self) -> u64 {
            0
        }
        fn stat(&self, _id: u64) -> io::Result<Stat> {
            *self.stats.lock().relock() += 1;
            Err(io::Error::other("not needed here"))
        }
        fn read_dir(&self, dir: u64) -> io::Result<Vec<DirEntry>> {
            self.listed.lock().relock().push(dir);
            let n = *self.sizes.get(dir as usize).unwrap_or(&0);
            Ok((0..n as u64)
                .map(|k| DirEntry {
                    name: format!("f{k}"),
                    id: dir * 10 + k,
                    kind: Kind::File,
                })
                .collect())
        }
        fn read(&self, _id: u64, _offset: u64, _buf: &mut [u8]) -> io::Result<usize> {
            Ok(0)
        }
    }

    fn until(what: &str, f: impl Fn() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn warms_the_first_subdirectory_then_each_next_sibling() {
        let tree = Arc::new(Tree {
            sizes: vec![0, 3, 2, MAX_CHILDREN + 1],
            listed: Mutex::default(),
            stats: Mutex::default(),
        });
        let fs: Arc<dyn GuestFs> = tree.clone();
        let w = WalkAhead::default();
        let listed = |n: usize| {
            until(&format!("{n} listed"), || {
                tree.listed.lock().relock().len() == n
            })
        };
        // The root lists subdirectories 1, 2, 3: the walker goes into 1 first.
        w.listed((0, 0, 0), vec![1, 2, 3], &fs, || Some(()));
        listed(1);
        // 1 and 2 have no subdirectories: the walker goes on to 2, then 3.
        w.listed((0, 0, 1), vec![], &fs, || Some(()));
        listed(2);
        w.listed((0, 0, 2), vec![], &fs, || Some(()));
        listed(3);
        // 3 is the last: nothing more to guess.
        w.listed((0, 0, 3), vec![], &fs, || Some(()));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(*tree.listed.lock().relock(), [1, 2, 3]);
        // Every child of 1 and 2 stat'ed; 3 is too big to read its children ahead.
        until("stats", || *tree.stats.lock().relock() == 5);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(*tree.stats.lock().relock(), 5);
    }
}
