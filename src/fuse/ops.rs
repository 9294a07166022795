//! The FUSE operations: answers from the tree for reads, EROFS for every write.

use std::ffi::OsStr;
use std::io;
use std::time::SystemTime;

use fuser::{
    Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};

use super::inodes::Node;
use super::DirectIo;
use super::{kernel_name, seek, splice, Handle, VmFs, MIB};
use crate::vm::status;
use vmsnapfs_io::Places;

impl Filesystem for VmFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Big requests: disk images are read sequentially in bulk by backup tools.
        if let Err(max) = config.set_max_write(4 * MIB) {
            let _ = config.set_max_write(max);
        }
        if let Err(max) = config.set_max_readahead(4 * MIB) {
            let _ = config.set_max_readahead(max);
        }
        let _ = config.set_max_background(64);
        let _ = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS);
        // For direct_io images: a big read goes out as several requests at once, and
        // mmap still works (through the page cache) where the kernel allows it (6.6+).
        let _ = config.add_capabilities(InitFlags::FUSE_ASYNC_DIO);
        let _ = config.add_capabilities(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP);
        // Flat disks read by the kernel from their own file. A depth of 1: backing
        // files on plain file systems (ext4, XFS, NFS), and this mount may still be
        // stacked under overlayfs.
        if self.tree.passthrough
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok()
        {
            self.passthrough = Some(Default::default());
        }
        if let Some(f) = self.after_init.take() {
            f();
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = (|| {
            let parent = self.node(parent)?;
            let node = self.lookup_node(&parent, name)?;
            let ino = self.inodes.ino(node.clone());
            self.getattr_node(ino, &node)
        })();
        match r {
            Ok((attr, ttl)) => reply.entry(&ttl, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.node(ino).and_then(|n| self.getattr_node(ino.0, &n)) {
            Ok((attr, ttl)) => reply.attr(&ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let r = (|| {
            let Node::Guest(v, vol, id) = self.node(ino)? else {
                return Err(Errno::EINVAL);
            };
            let u = self.frozen(v)?;
            let fs = u.vm.guest_fs(vol as usize)?;
            Ok(u.vm.guest(vol as usize, "readlink", fs.read_link(id))?)
        })();
        match r {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY || flags.0 & libc::O_TRUNC != 0 {
            return reply.error(Errno::EROFS);
        }
        let r = (|| {
            let node = self.node(ino)?;
            let v = node.vm().ok_or(Errno::EISDIR)?;
            let u = self.frozen(v)?;
            if let (Node::Flat(_, n), Some(pt)) = (&node, &self.passthrough) {
                if let Some(p) = pt.open(ino.0, &u.vm, *n as usize, &reply) {
                    let id = p.backing.clone();
                    let fh = self.new_handle(Handle::Passed(u, p));
                    return Ok((fh, FopenFlags::empty(), Some(id)));
                }
            }
            Ok(match node {
                Node::Status(_) => {
                    let name = &self.vms[v as usize].entry.name;
                    let bytes = status::render(name, &self.ctx.source.describe(), &u.vm);
                    // Rendered per open: its size may change as errors are met.
                    (
                        self.new_handle(Handle::Bytes {
                            data: bytes,
                            _hold: u,
                        }),
                        FopenFlags::FOPEN_DIRECT_IO,
                    )
                }
                Node::SinceJson(_, id, i) => {
                    let data = super::tree::changes_of(&u.vm, &id, i)?.json.clone();
                    (
                        self.new_handle(Handle::Bytes { data, _hold: u }),
                        FopenFlags::FOPEN_DIRECT_IO,
                    )
                }
                // Read extent by extent by an incremental copier: extents fetched ahead
                // are stored in the page cache, so its reads of them are answered by the
                // kernel (`-o direct_io` reads past it). A read that misses makes the
                // kernel read ahead too; that read fetches the queued batches it reaches
                // whole (vm::ahead), so batching holds on a loaded machine.
                Node::SinceFlat(_, id, i) => {
                    let changes = super::tree::changes_of(&u.vm, &id, i)?;
                    let cached = self.tree.direct_io == DirectIo::Off;
                    let flags = if cached {
                        self.cache_flags(ino.0, u.vm.freeze_id)
                    } else {
                        FopenFlags::FOPEN_DIRECT_IO
                    };
                    let fh = self.changes_handle(ino.0, u, changes, i as usize, cached);
                    (fh, flags)
                }
                // Image-level readers stream whole disks in big reads: straight into
                // their buffers, with no page-cache copy to make and later evict.
                Node::Flat(..) if self.tree.direct_io != DirectIo::Off => {
                    (self.node_handle(u), FopenFlags::FOPEN_DIRECT_IO)
                }
                // File-level readers that read each file once, in big reads: the
                // guest's bytes go straight into their buffers, and the backup host's
                // page cache keeps what it held (no second copy of every file read).
                Node::Guest(..) | Node::Stream(..) if self.tree.direct_io == DirectIo::All => {
                    (self.node_handle(u), FopenFlags::FOPEN_DIRECT_IO)
                }
                _ => {
                    let flags = self.cache_flags(ino.0, u.vm.freeze_id);
                    (self.node_handle(u), flags)
                }
            })
            .map(|(fh, flags)| (fh, flags, None))
        })();
        match r {
            // Its close checks the file still holds the disk (passthrough.rs).
            Ok((fh, flags, Some(id))) => reply.opened_passthrough(fh, flags, &id),
            // Nothing to check at close: the kernel need not ask.
            Ok((fh, flags, None)) => reply.opened(fh, flags | FopenFlags::FOPEN_NOFLUSH),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        // One buffer per FUSE thread, kept: a fresh zeroed megabyte per read costs more
        // than the read itself on a fast path.
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let (node, h) = match self.node(ino).and_then(|n| Ok((n, self.handle(fh)?))) {
            Ok(found) => found,
            Err(e) => return reply.error(e),
        };
        // A streamed disk image's bytes go to the kernel from the buffer they arrived in.
        match self.lend_node(&node, &h, offset, size) {
            Some(Ok(l)) => return reply.data(l.bytes()),
            Some(Err(e)) => return reply.error(e),
            None => {}
        }
        if let (Some(sp), true) = (&self.splice, size >= splice::MIN_SPLICE) {
            thread_local! {
                static PLACES: std::cell::RefCell<Places> = std::cell::RefCell::new(Places::new());
            }
            let sent = PLACES.with_borrow_mut(|p| {
                p.clear();
                // An empty reply (at or past the end) is one small write.
                self.place_node(&node, &h, offset, size, p)
                    .is_some_and(|n| n > 0)
                    && sp
                        .reply(req.unique().0, p)
                        .inspect_err(|e| tracing::debug!("read reply written, not spliced: {e}"))
                        .is_ok()
            });
            if sent {
                // Answered on the device already; dropping the reply would answer again
                // (EIO). It holds only a reference to the session's device.
                std::mem::forget(reply);
                return;
            }
        }
        BUF.with_borrow_mut(|buf| {
            if buf.len() < size as usize {
                buf.resize(size as usize, 0);
            }
            let buf = &mut buf[..size as usize];
            match self.read_node(&node, &h, offset, buf) {
                Ok(n) => reply.data(&buf[..n]),
                Err(e) => reply.error(e),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        match self.handle(fh).map(|h| match &*h {
            Handle::Passed(u, p) => p.check(&u.vm).map_err(Errno::from),
            _ => Ok(()),
        }) {
            Ok(Ok(())) => reply.ok(),
            Ok(Err(e)) | Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.drop_handle(fh);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = (|| {
            let node = self.node(ino)?;
            let (entries, u) = self.list(&node)?;
            let mut out = Vec::with_capacity(entries.len() + 2);
            out.push((ino.0, FileType::Directory, ".".into(), node.clone()));
            out.push((ino.0, FileType::Directory, "..".into(), node.clone()));
            // Names that are bytes on the guest go to the kernel as those bytes.
            let bytes = match (&node, &u) {
                (Node::Guest(_, vol, _), Some(u)) => {
                    u.vm.guest_fs(*vol as usize).is_ok_and(|fs| fs.byte_names())
                }
                _ => false,
            };
            if let (Node::Guest(v, vol, id), Some(u)) = (&node, &u) {
                let subdirs = entries
                    .iter()
                    .filter_map(|(n, kind, _)| match n {
                        Node::Guest(_, _, c) if *kind == FileType::Directory => Some(*c),
                        _ => None,
                    })
                    .collect();
                if let Ok(fs) = u.vm.guest_fs(*vol as usize) {
                    let hold = || self.frozen(*v).ok();
                    self.walk.listed((*v, *vol, *id), subdirs, fs, hold);
                }
            }
            for (n, kind, name) in entries {
                out.push((
                    self.inodes.ino(n.clone()),
                    kind,
                    kernel_name(name, bytes),
                    n,
                ));
            }
            Ok(self.new_handle(Handle::Dir {
                entries: out,
                hold: u,
            }))
        })();
        match r {
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let Handle::Dir { entries, .. } = &*h else {
            return reply.error(Errno::ENOTDIR);
        };
        for (i, (ino, kind, name, _)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    /// Listing with attributes: `find`/`ls -l`/rsync over big trees skip one LOOKUP
    /// round trip per file.
    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let Handle::Dir { entries, hold } = &*h else {
            return reply.error(Errno::ENOTDIR);
        };
        for (i, (ino, _, name, node)) in entries.iter().enumerate().skip(offset as usize) {
            // The listing's own freeze serves every entry; an entry whose attributes
            // cannot be read is left to a later LOOKUP, which reports the error.
            let attr = match hold {
                Some(u) => self.getattr_in(*ino, node, &u.vm),
                None => self.getattr_node(*ino, node),
            };
            let Ok((attr, ttl)) = attr else {
                continue;
            };
            if reply.add(
                INodeNo(*ino),
                i as u64 + 1,
                name,
                &ttl,
                &attr,
                Generation(0),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.drop_handle(fh);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        // Inside a volume: the guest's size and free space; elsewhere the frozen disks.
        // Never any space available to write: the mount is read-only.
        let (mut total, mut free, mut files) = (0u64, 0u64, 0u64);
        match self.node(ino) {
            Ok(Node::Guest(v, vol, _)) | Ok(Node::Stream(v, vol, _, _)) => {
                if let Ok(u) = self.frozen(v) {
                    if let Some(info) = u.vm.volumes.get(vol as usize).and_then(|x| x.info()) {
                        total = info.total_bytes;
                        free = info.free_bytes;
                    }
                }
            }
            _ => {
                for slot in self.vms.iter().filter(|s| s.is_frozen()) {
                    if let Ok(u) = slot.use_frozen(&self.ctx) {
                        total += u.vm.disks.iter().map(|d| d.size()).sum::<u64>();
                        files += 4 + 2 * u.vm.disks.len() as u64;
                    }
                }
            }
        }
        reply.statfs(total / 4096, free / 4096, 0, files, 0, 4096, 255, 4096);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let r = self
            .node(ino)
            .and_then(|n| self.xattr(&n, name.to_str().ok_or(Errno::NO_XATTR)?));
        match r {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
            Ok(v) => reply.data(&v),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let r = self.node(ino).and_then(|n| self.xattr_names(&n));
        match r {
            Ok(names) => {
                let mut buf = Vec::new();
                for n in names {
                    buf.extend_from_slice(n.as_bytes());
                    buf.push(0);
                }
                if size == 0 {
                    reply.size(buf.len() as u32)
                } else if buf.len() > size as usize {
                    reply.error(Errno::ERANGE)
                } else {
                    reply.data(&buf)
                }
            }
            Err(e) => reply.error(e),
        }
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let r = (|| {
            if whence != libc::SEEK_DATA && whence != libc::SEEK_HOLE {
                return Err(Errno::EINVAL);
            }
            let node = self.node(ino)?;
            let h = self.handle(fh)?;
            let (size, ranges) = self.data_ranges(&node, &h)?;
            let off = u64::try_from(offset).map_err(|_| Errno::ENXIO)?;
            let pos = if whence == libc::SEEK_DATA {
                seek::data(ranges, size, off)
            } else {
                seek::hole(ranges, size, off)
            };
            // A copier that reads from the page cache tells us where it is only here.
            if let (
                Some(p),
                true,
                Handle::Changes {
                    hold,
                    changes,
                    disk,
                    sink: Some(sink),
                },
            ) = (pos, whence == libc::SEEK_DATA, &*h)
            {
                hold.vm.seek_changes(*disk, changes, p, sink);
            }
            pos.map(|p| p as i64).ok_or(Errno::ENXIO)
        })();
        match r {
            Ok(p) => reply.offset(p),
            Err(e) => reply.error(e),
        }
    }

    // Everything that would modify the tree: the view is read-only by contract.

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: fuser::ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: fuser::ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }
}
