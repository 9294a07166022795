//! The FUSE file system: the tree of frozen VMs (see README "The tree"). Read-only; every
//! operation is positional and `&self`, so fuser's worker threads serve VMs in parallel.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use fuser::{Errno, FileAttr, FileHandle, FileType, INodeNo};

use crate::sync::Relock;
use crate::vm::{self, Ctx, Use, VmSlot};

pub mod inodes;
mod ops;
pub mod options;
mod passthrough;
mod seek;
pub mod splice;
mod tree;
mod walk;

use inodes::{Inodes, Node};
pub use options::{DirectIo, TreeOptions};

/// Synthetic entries can change across re-freeze; guest entries are frozen data.
const TTL_TOP: Duration = Duration::from_secs(1);
const TTL_GUEST: Duration = Duration::from_secs(60);
const MIB: u32 = 1 << 20;
/// Hidden xattr on the mount root: lets `vmsnapfs umount` find the serving process.
pub const PID_XATTR: &str = "user.vmsnapfs.pid";
/// Hidden xattr on the mount root: how many read replies were spliced (tests, benches).
pub const SPLICED_XATTR: &str = "user.vmsnapfs.spliced";
/// Hidden xattr on the mount root: how many opens were passed through to a disk's file.
pub const PASSTHROUGH_XATTR: &str = "user.vmsnapfs.passthrough";
/// Hidden xattr on the mount root: how many extents of changes views, fetched ahead,
/// were stored in the kernel's page cache.
pub const STORED_XATTR: &str = "user.vmsnapfs.stored";

enum Handle {
    /// The listing taken at opendir; the hold keeps the VM frozen while it is open.
    Dir {
        entries: Vec<(u64, FileType, OsString, Node)>,
        hold: Option<Use>,
    },
    /// Content fixed at open (status.json is rendered per open).
    Bytes { data: Vec<u8>, _hold: Use },
    /// The hold, and a guest file's size and data ranges once SEEK_DATA/SEEK_HOLE asked:
    /// a copier asks once or twice per extent, and each walk of the file's map costs as
    /// much as its extents.
    Node(Use, OnceLock<(u64, Vec<Range<u64>>)>),
    /// A disk image the kernel reads from its file; only a close comes to us.
    Passed(Use, passthrough::Passed),
    /// A sparse view of changes: the extents fixed at open, so reads take no lock; the
    /// sink stores extents fetched ahead in the kernel's page cache of its file (None
    /// when the file is read past the page cache).
    Changes {
        hold: Use,
        changes: Arc<vm::changes::DiskChanges>,
        disk: usize,
        sink: Option<vm::Sink>,
    },
}

pub struct VmFs {
    ctx: Arc<Ctx>,
    tree: TreeOptions,
    vms: Vec<Arc<VmSlot>>,
    inodes: Inodes,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    mounted_at: SystemTime,
    /// Inode → the freeze it was last opened in.
    opened_in: Mutex<HashMap<u64, u64>>,
    /// Run once the kernel's INIT has been answered (settings INIT would overwrite).
    pub after_init: Option<Box<dyn FnOnce() + Send + Sync>>,
    walk: walk::WalkAhead,
    /// Set when replies may be spliced (a root mount reading one device descriptor).
    pub splice: Option<splice::Splicer>,
    /// `st_blksize` of big-read files: the largest power of two one request holds.
    pub read_size: u32,
    /// Set at INIT when the kernel takes passthrough opens (and `-o passthrough` is on).
    passthrough: Option<passthrough::Passthrough>,
    /// Set once the session exists: changes views store the extents fetched ahead in
    /// the kernel's page cache through it.
    pub notifier: Arc<OnceLock<fuser::Notifier>>,
    /// Extents stored through `notifier`.
    stored: Arc<AtomicU64>,
}

type R<T> = Result<T, Errno>;
type Listing = Vec<(Node, FileType, String)>;

/// The vm layer already logged and noted what deserves it; only the errno is left.
impl From<vm::Error> for Errno {
    fn from(e: vm::Error) -> Errno {
        Errno::from_i32(e.errno())
    }
}

impl VmFs {
    pub fn new(ctx: Arc<Ctx>, vms: Vec<Arc<VmSlot>>, tree: TreeOptions) -> Self {
        let root = if ctx.source.single_vm() {
            Node::Vm(0)
        } else {
            Node::Root
        };
        Self {
            ctx,
            tree,
            vms,
            inodes: Inodes::new(root),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            mounted_at: SystemTime::now(),
            opened_in: Mutex::new(HashMap::new()),
            after_init: None,
            splice: None,
            read_size: MIB,
            walk: Default::default(),
            passthrough: None,
            notifier: Default::default(),
            stored: Default::default(),
        }
    }

    fn node(&self, ino: INodeNo) -> R<Node> {
        self.inodes.node(ino.0).ok_or(Errno::ESTALE)
    }

    fn slot(&self, vm: u32) -> R<&Arc<VmSlot>> {
        self.vms.get(vm as usize).ok_or(Errno::ENOENT)
    }

    fn frozen(&self, vm: u32) -> R<Use> {
        Ok(self.slot(vm)?.use_frozen(&self.ctx)?)
    }

    fn attr(&self, ino: u64, kind: FileType, size: u64, time: SystemTime) -> FileAttr {
        let perm = match kind {
            FileType::Directory => self.tree.dir_mode(),
            FileType::Symlink => 0o777,
            _ => self.tree.file_mode(),
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            kind,
            perm,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: self.tree.uid,
            gid: self.tree.gid,
            rdev: 0,
            blksize: 64 * 1024,
            flags: 0,
        }
    }

    /// A handle that holds the VM frozen while a file is open.
    fn node_handle(&self, u: Use) -> FileHandle {
        self.new_handle(Handle::Node(u, OnceLock::new()))
    }

    fn new_handle(&self, h: Handle) -> FileHandle {
        self.add_handle(Arc::new(h))
    }

    /// Keep the page cache across opens of the same freeze only: after idle release a
    /// re-freeze may show newer data under the same inode.
    fn cache_flags(&self, ino: u64, freeze_id: u64) -> fuser::FopenFlags {
        let seen = self.opened_in.lock().relock().insert(ino, freeze_id);
        if seen == Some(freeze_id) {
            fuser::FopenFlags::FOPEN_KEEP_CACHE
        } else {
            fuser::FopenFlags::empty()
        }
    }

    fn add_handle(&self, h: Arc<Handle>) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().relock().insert(fh, h);
        FileHandle(fh)
    }

    /// A changes view's handle whose extents fetched ahead go to the kernel's page cache
    /// of inode `ino`, while the handle is open: it holds the freeze, so no page from an
    /// earlier freeze can land after a later one's open dropped them.
    fn changes_handle(
        &self,
        ino: u64,
        hold: Use,
        changes: Arc<vm::changes::DiskChanges>,
        disk: usize,
        cached: bool,
    ) -> FileHandle {
        let notifier = self.notifier.get().filter(|_| cached).cloned();
        let stored = self.stored.clone();
        self.add_handle(Arc::new_cyclic(|me: &std::sync::Weak<Handle>| {
            let me = me.clone();
            let sink = notifier.map(|n| -> vm::Sink {
                Arc::new(move |offset: u64, bytes: &[u8]| {
                    // Held across the store: the handle holds the freeze.
                    let Some(_open) = me.upgrade() else {
                        return;
                    };
                    // Refused (the inode left the kernel's cache): the read comes to us.
                    if n.store(INodeNo(ino), offset, bytes).is_ok() {
                        stored.fetch_add(1, Ordering::Relaxed);
                    }
                })
            });
            Handle::Changes {
                hold,
                changes,
                disk,
                sink,
            }
        }))
    }

    fn handle(&self, fh: FileHandle) -> R<Arc<Handle>> {
        self.handles
            .lock()
            .relock()
            .get(&fh.0)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    fn drop_handle(&self, fh: FileHandle) {
        self.handles.lock().relock().remove(&fh.0);
    }
}

fn name_str(name: &OsStr) -> R<&str> {
    name.to_str().ok_or(Errno::ENOENT)
}

/// A name as the kernel hands it, spelled as our tree spells it: guest file systems whose
/// names are bytes (ext4, XFS) take any bytes, escaped as `names::from_bytes` does.
fn tree_name(name: &OsStr, bytes: bool) -> R<std::borrow::Cow<'_, str>> {
    use std::os::unix::ffi::OsStrExt;
    if bytes {
        Ok(crate::guestfs::names::from_bytes(name.as_bytes()))
    } else {
        name_str(name).map(std::borrow::Cow::Borrowed)
    }
}

/// A listed name as the kernel should see it: the guest's own bytes where names are
/// bytes.
fn kernel_name(name: String, bytes: bool) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    match bytes
        .then(|| crate::guestfs::names::to_bytes(&name))
        .flatten()
    {
        Some(raw) => OsString::from_vec(raw),
        None => name.into(),
    }
}
