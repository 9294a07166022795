//! Disk images whose bytes are one local file, as they are (a flat extent at offset 0 of
//! a file exactly the disk's size: a datastore's `-flat.vmdk`), are opened in FUSE
//! passthrough (Linux 6.9+, root): the kernel reads that file for every read of the
//! open file, through that file's own page cache, and no read reaches us. Reading a flat
//! disk then costs what reading the file itself costs: no request per megabyte, no
//! second page cache holding a copy of every byte.
//!
//! What passthrough cannot do is fail a read the way ours does when the file shrinks
//! under a frozen VM (EIO there): the kernel reads short. Such opens are therefore left
//! without FOPEN_NOFLUSH, and their close checks the file's length again and fails
//! with EIO (and a line in status.json) when it no longer holds the disk.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use fuser::{BackingId, ReplyOpen};
use vmsnapfs_io::{Piece, Places};

use crate::sync::Relock;
use crate::vm::error::Result;
use crate::vm::{DiskView, FrozenVm};

/// An open disk image the kernel reads from `file`.
pub(super) struct Passed {
    /// Closed (the id, not the file) when the last open file that uses it is released.
    pub backing: Arc<BackingId>,
    pub file: Arc<File>,
    pub disk: usize,
}

impl Passed {
    /// At close: whether `file` still holds every byte of the disk (see the module
    /// comment); the error is noted in status.json.
    pub fn check(&self, vm: &FrozenVm) -> Result<()> {
        let d = vm.disk(self.disk)?;
        let len = self.file.metadata().map(|m| m.len());
        match len {
            Ok(len) if len >= d.size() => Ok(()),
            Ok(len) => Err(vm.disk_error(
                d,
                len,
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the disk's flat file shrank to {len} bytes of {} while open \
                         (passthrough reads came short)",
                        d.size()
                    ),
                ),
            )),
            Err(e) => Err(vm.disk_error(d, 0, e)),
        }
    }
}

/// What one inode's opens found in one freeze.
struct Seen {
    freeze: u64,
    /// The disk's one file (the freeze's chain holds it), or None: not a single whole
    /// file, or the kernel refused it.
    file: Option<Weak<File>>,
    /// The id every open file of the inode must share (the kernel refuses a second one
    /// while any is open); dead once they are all released.
    id: Weak<BackingId>,
}

#[derive(Default)]
pub(super) struct Passthrough {
    by_ino: Mutex<HashMap<u64, Seen>>,
    opened: AtomicU64,
}

impl Passthrough {
    /// Opens passed through so far (the root's `user.vmsnapfs.passthrough`).
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// A passthrough open of disk `n` of this freeze, or None: the disk is not one whole
    /// local file, or the kernel refused it (not root, a backing file system stacked too
    /// deep); such an inode is then served by reads for the rest of the freeze.
    pub fn open(&self, ino: u64, vm: &FrozenVm, n: usize, reply: &ReplyOpen) -> Option<Passed> {
        let d = vm.disks.get(n)?;
        let mut map = self.by_ino.lock().relock();
        if map.get(&ino).is_none_or(|s| s.freeze != vm.freeze_id) {
            let seen = Seen {
                freeze: vm.freeze_id,
                file: whole_file(d).as_ref().map(Arc::downgrade),
                id: Weak::new(),
            };
            map.insert(ino, seen);
        }
        let seen = map.get_mut(&ino)?;
        let file = seen.file.as_ref()?.upgrade()?;
        let backing = match seen.id.upgrade() {
            Some(id) => id,
            None => match reply.open_backing(file.as_ref()) {
                Ok(id) => {
                    let id = Arc::new(id);
                    seen.id = Arc::downgrade(&id);
                    id
                }
                Err(e) => {
                    tracing::info!(
                        "disk{}: passthrough refused, reads are served: {e}",
                        d.number
                    );
                    seen.file = None;
                    return None;
                }
            },
        };
        self.opened.fetch_add(1, Ordering::Relaxed);
        Some(Passed {
            backing,
            file,
            disk: n,
        })
    }
}

/// The one local file holding all of disk `d`'s bytes at the same offsets, and nothing
/// past them: what the kernel can read in our place.
fn whole_file(d: &DiskView) -> Option<Arc<File>> {
    let size = d.size();
    let one = |len: u64| {
        let mut p = Places::new();
        if !d.data.place(0, len, &mut p) {
            return None;
        }
        match p.pieces() {
            [Piece::File {
                file,
                offset: 0,
                len: l,
            }] if *l == len => Some(file.clone()),
            _ => None,
        }
    };
    // The first sector rules out sparse and streamOptimized images before the whole
    // disk's map is walked.
    one(size.min(512))?;
    let file = one(size)?;
    let len = file.metadata().ok()?.len();
    (len == size).then_some(file)
}
