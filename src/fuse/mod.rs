//! The FUSE file system: the tree of frozen VMs (see README "The tree"). Read-only; every
//! operation is positional and `&self`, so fuser's worker threads serve VMs in parallel.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};

use crate::guestfs::{self, GuestFs};
use crate::mount::lifecycle::{Ctx, Use, VmSlot};

pub mod inodes;
mod seek;
pub mod status;
pub mod view;

use inodes::{Inodes, Node};
use view::FrozenVm;

/// Synthetic entries can change across re-freeze; guest entries are frozen data.
const TTL_TOP: Duration = Duration::from_secs(1);
const TTL_GUEST: Duration = Duration::from_secs(60);
const MIB: u32 = 1 << 20;
/// Hidden xattr on the mount root: lets `vmsnapfs umount` find the serving process.
pub const PID_XATTR: &str = "user.vmsnapfs.pid";

enum Handle {
    /// The listing taken at opendir; the hold keeps the VM frozen while it is open.
    Dir {
        entries: Vec<(u64, FileType, String, Node)>,
        hold: Option<Use>,
    },
    /// Content fixed at open (status.json is rendered per open).
    Bytes {
        data: Vec<u8>,
        _hold: Use,
    },
    Node(Use),
}

pub struct VmFs {
    ctx: Arc<Ctx>,
    vms: Vec<Arc<VmSlot>>,
    inodes: Inodes,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    mounted_at: SystemTime,
    /// Inode → the freeze it was last opened in.
    opened_in: Mutex<HashMap<u64, u64>>,
}

type R<T> = Result<T, Errno>;
type Listing = Vec<(Node, FileType, String)>;

fn io_errno(e: &io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

fn eio(why: String) -> Errno {
    tracing::warn!("{why}");
    Errno::EIO
}

impl VmFs {
    pub fn new(ctx: Arc<Ctx>, vms: Vec<Arc<VmSlot>>) -> Self {
        let root = if ctx.source.single_vm() {
            Node::Vm(0)
        } else {
            Node::Root
        };
        Self {
            ctx,
            vms,
            inodes: Inodes::new(root),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            mounted_at: SystemTime::now(),
            opened_in: Mutex::new(HashMap::new()),
        }
    }

    fn node(&self, ino: INodeNo) -> R<Node> {
        self.inodes.node(ino.0).ok_or(Errno::ESTALE)
    }

    fn slot(&self, vm: u32) -> R<&Arc<VmSlot>> {
        self.vms.get(vm as usize).ok_or(Errno::ENOENT)
    }

    fn frozen(&self, vm: u32) -> R<Use> {
        let slot = self.slot(vm)?;
        slot.use_frozen(&self.ctx)
            .map_err(|why| eio(format!("{}: {why}", slot.entry.name)))
    }

    fn attr(&self, ino: u64, kind: FileType, size: u64, time: SystemTime) -> FileAttr {
        let perm = match kind {
            FileType::Directory => self.ctx.opts.dir_mode(),
            FileType::Symlink => 0o777,
            _ => self.ctx.opts.file_mode(),
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
            uid: self.ctx.opts.uid,
            gid: self.ctx.opts.gid,
            rdev: 0,
            blksize: 64 * 1024,
            flags: 0,
        }
    }

    fn guest_fs(vm: &FrozenVm, vol: u32) -> R<&Arc<dyn GuestFs>> {
        vm.volumes
            .get(vol as usize)
            .and_then(|v| v.fs.as_ref())
            .ok_or(Errno::ESTALE)
    }

    fn guest_err(vm: &FrozenVm, vol: u32, what: &str, e: io::Error) -> Errno {
        if let Some(v) = vm.volumes.get(vol as usize) {
            if e.kind() != io::ErrorKind::NotFound && e.raw_os_error().is_none() {
                v.note_error(format!("{what}: {e}"));
            }
            tracing::warn!("{}: {what}: {e}", v.name);
        }
        if e.raw_os_error().is_some() {
            io_errno(&e)
        } else if e.kind() == io::ErrorKind::NotFound {
            Errno::ENOENT
        } else {
            Errno::EIO
        }
    }

    /// Attributes of a node; nodes inside a VM freeze it (they are "inside" access).
    fn getattr_node(&self, ino: u64, node: &Node) -> R<(FileAttr, Duration)> {
        let dir = FileType::Directory;
        match node {
            Node::Root | Node::Vm(_) => Ok((self.attr(ino, dir, 0, self.mounted_at), TTL_TOP)),
            _ => {
                let vm_idx = node.vm().ok_or(Errno::ENOENT)?;
                let u = self.frozen(vm_idx)?;
                self.getattr_in(ino, node, &u.vm)
            }
        }
    }

    /// Attributes of a node inside the frozen VM `vm`.
    fn getattr_in(&self, ino: u64, node: &Node, vm: &FrozenVm) -> R<(FileAttr, Duration)> {
        let dir = FileType::Directory;
        let reg = FileType::RegularFile;
        match node {
            Node::Root | Node::Vm(_) => Ok((self.attr(ino, dir, 0, self.mounted_at), TTL_TOP)),
            _ => {
                let vm_idx = node.vm().ok_or(Errno::ENOENT)?;
                let t = vm.frozen_at;
                let a = match node {
                    Node::Vmx(_) => self.attr(ino, reg, vm.vmx.len() as u64, t),
                    Node::Status(_) => {
                        let name = &self.vms[vm_idx as usize].entry.name;
                        let len = status::render(name, &self.ctx.source.describe(), vm).len();
                        self.attr(ino, reg, len as u64, t)
                    }
                    Node::Disks(_) | Node::Volumes(_) => self.attr(ino, dir, 0, t),
                    Node::Descriptor(_, n) => {
                        let d = vm.disks.get(*n as usize).ok_or(Errno::ESTALE)?;
                        self.attr(ino, reg, d.descriptor.len() as u64, t)
                    }
                    Node::Flat(_, n) => {
                        let d = vm.disks.get(*n as usize).ok_or(Errno::ESTALE)?;
                        let mut a = self.attr(ino, reg, d.size(), t);
                        let used: u64 = d.data_ranges().iter().map(|r| r.end - r.start).sum();
                        a.blocks = used.div_ceil(512);
                        a.blksize = MIB;
                        a
                    }
                    Node::Guest(_, vol, id) => {
                        let fs = Self::guest_fs(vm, *vol)?;
                        let st = fs
                            .stat(*id)
                            .map_err(|e| Self::guest_err(vm, *vol, "stat", e))?;
                        return Ok((self.guest_attr(ino, &st), TTL_GUEST));
                    }
                    Node::Stream(_, vol, id, name) => {
                        let fs = Self::guest_fs(vm, *vol)?;
                        let st = fs
                            .stat(*id)
                            .map_err(|e| Self::guest_err(vm, *vol, "stat", e))?;
                        let streams = fs
                            .streams(*id)
                            .map_err(|e| Self::guest_err(vm, *vol, "streams", e))?;
                        let (_, size) = streams
                            .iter()
                            .find(|(n, _)| **n == **name)
                            .ok_or(Errno::ENOENT)?;
                        let mut a = self.guest_attr(ino, &st);
                        a.kind = reg;
                        a.perm = self.ctx.opts.file_mode();
                        a.size = *size;
                        a.blocks = size.div_ceil(512);
                        a.nlink = 1;
                        return Ok((a, TTL_GUEST));
                    }
                    Node::Root | Node::Vm(_) => unreachable!(),
                };
                Ok((a, TTL_TOP))
            }
        }
    }

    fn guest_attr(&self, ino: u64, st: &guestfs::Stat) -> FileAttr {
        let kind = match st.kind {
            guestfs::Kind::Dir => FileType::Directory,
            guestfs::Kind::File => FileType::RegularFile,
            guestfs::Kind::Symlink => FileType::Symlink,
        };
        let mut a = self.attr(ino, kind, st.size, st.mtime);
        a.atime = st.atime;
        a.ctime = st.ctime;
        a.crtime = st.crtime;
        a.blocks = st.allocated.div_ceil(512);
        a.nlink = st.nlink.max(1);
        a
    }

    fn guest_kind(k: guestfs::Kind) -> FileType {
        match k {
            guestfs::Kind::Dir => FileType::Directory,
            guestfs::Kind::File => FileType::RegularFile,
            guestfs::Kind::Symlink => FileType::Symlink,
        }
    }

    /// The entries of a directory node, as (node, type, name).
    fn list(&self, node: &Node) -> R<(Listing, Option<Use>)> {
        let dir = FileType::Directory;
        let reg = FileType::RegularFile;
        if let Node::Root = node {
            let out = (0..self.vms.len() as u32)
                .map(|i| (Node::Vm(i), dir, self.vms[i as usize].entry.name.clone()))
                .collect();
            return Ok((out, None));
        }
        let v = node.vm().ok_or(Errno::ENOTDIR)?;
        let u = self.frozen(v)?;
        let vm = &u.vm;
        let mut out = Vec::new();
        match node {
            Node::Vm(_) => {
                if let Some(name) = &vm.vmx_name {
                    out.push((Node::Vmx(v), reg, name.clone()));
                }
                out.push((Node::Disks(v), dir, "disks".into()));
                out.push((Node::Volumes(v), dir, "volumes".into()));
                out.push((Node::Status(v), reg, "status.json".into()));
            }
            Node::Disks(_) => {
                for n in 0..vm.disks.len() as u32 {
                    out.push((Node::Descriptor(v, n), reg, format!("disk{n}.vmdk")));
                    out.push((Node::Flat(v, n), reg, format!("disk{n}-flat.vmdk")));
                }
            }
            Node::Volumes(_) => {
                for (i, vol) in vm.mounted_volumes() {
                    let root = vol.fs.as_ref().map(|f| f.root()).unwrap_or(0);
                    out.push((Node::Guest(v, i as u32, root), dir, vol.name.clone()));
                }
            }
            Node::Guest(_, vol, id) => {
                let fs = Self::guest_fs(vm, *vol)?;
                let entries = fs
                    .read_dir(*id)
                    .map_err(|e| Self::guest_err(vm, *vol, "read_dir", e))?;
                for e in entries {
                    let kind = Self::guest_kind(e.kind);
                    out.push((Node::Guest(v, *vol, e.id), kind, e.name));
                }
            }
            _ => return Err(Errno::ENOTDIR),
        }
        Ok((out, Some(u)))
    }

    fn lookup_node(&self, parent: &Node, name: &str) -> R<Node> {
        match parent {
            Node::Guest(v, vol, id) => {
                let u = self.frozen(*v)?;
                let fs = Self::guest_fs(&u.vm, *vol)?;
                let ci = self.ctx.opts.case_insensitive;
                match fs.lookup(*id, name, ci) {
                    Ok(Some(e)) => return Ok(Node::Guest(*v, *vol, e.id)),
                    Ok(None) => {}
                    Err(e) => return Err(Self::guest_err(&u.vm, *vol, "lookup", e)),
                }
                if self.ctx.opts.streams_windows {
                    if let Some((file, stream)) = name.split_once(':') {
                        if let Ok(Some(e)) = fs.lookup(*id, file, ci) {
                            let streams = fs.streams(e.id).unwrap_or_default();
                            if streams.iter().any(|(n, _)| n == stream) {
                                return Ok(Node::Stream(*v, *vol, e.id, stream.into()));
                            }
                        }
                    }
                }
                Err(Errno::ENOENT)
            }
            _ => {
                let (entries, _use) = self.list(parent)?;
                entries
                    .into_iter()
                    .find(|(_, _, n)| n == name)
                    .map(|(node, _, _)| node)
                    .ok_or(Errno::ENOENT)
            }
        }
    }

    fn new_handle(&self, h: Handle) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fh, Arc::new(h));
        FileHandle(fh)
    }

    fn handle(&self, fh: FileHandle) -> R<Arc<Handle>> {
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fh.0)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    fn drop_handle(&self, fh: FileHandle) {
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh.0);
    }

    fn read_node(&self, node: &Node, h: &Handle, offset: u64, size: u32) -> R<Vec<u8>> {
        let (vm, bytes) = match h {
            Handle::Bytes { data: b, .. } => {
                let start = (offset as usize).min(b.len());
                let end = (start + size as usize).min(b.len());
                return Ok(b[start..end].to_vec());
            }
            Handle::Node(u) => (&u.vm, None::<&[u8]>),
            Handle::Dir { .. } => return Err(Errno::EISDIR),
        };
        let _ = bytes;
        let slice = |b: &[u8]| {
            let start = (offset as usize).min(b.len());
            let end = (start + size as usize).min(b.len());
            b[start..end].to_vec()
        };
        match node {
            Node::Vmx(_) => Ok(slice(&vm.vmx)),
            Node::Descriptor(_, n) => Ok(slice(
                &vm.disks.get(*n as usize).ok_or(Errno::ESTALE)?.descriptor,
            )),
            Node::Flat(_, n) => {
                let d = vm.disks.get(*n as usize).ok_or(Errno::ESTALE)?;
                let mut buf = vec![0u8; size as usize];
                let got = view::read_clamped(d.data.as_ref(), offset, &mut buf).map_err(|e| {
                    let what = format!("disk{n}: read at {offset}: {e}");
                    vm.note_error(what.clone());
                    eio(what)
                })?;
                buf.truncate(got);
                Ok(buf)
            }
            Node::Guest(_, vol, id) => {
                let fs = Self::guest_fs(vm, *vol)?;
                let mut buf = vec![0u8; size as usize];
                let mut got = 0;
                while got < buf.len() {
                    let n = fs
                        .read(*id, offset + got as u64, &mut buf[got..])
                        .map_err(|e| Self::guest_err(vm, *vol, "read", e))?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                buf.truncate(got);
                Ok(buf)
            }
            Node::Stream(_, vol, id, name) => {
                let fs = Self::guest_fs(vm, *vol)?;
                let mut buf = vec![0u8; size as usize];
                let mut got = 0;
                while got < buf.len() {
                    let n = fs
                        .read_stream(*id, name, offset + got as u64, &mut buf[got..])
                        .map_err(|e| Self::guest_err(vm, *vol, "read stream", e))?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                buf.truncate(got);
                Ok(buf)
            }
            _ => Err(Errno::EISDIR),
        }
    }

    fn xattr_names(&self, node: &Node) -> R<Vec<String>> {
        let Node::Guest(v, vol, id) = node else {
            return Ok(Vec::new());
        };
        let u = self.frozen(*v)?;
        let fs = Self::guest_fs(&u.vm, *vol)?;
        let mut names: Vec<String> = fs
            .streams(*id)
            .map_err(|e| Self::guest_err(&u.vm, *vol, "streams", e))?
            .into_iter()
            .map(|(n, _)| format!("user.{n}"))
            .collect();
        names.extend(fs.system_xattr_names(*id));
        Ok(names)
    }

    fn xattr(&self, node: &Node, name: &str) -> R<Vec<u8>> {
        if name == PID_XATTR && self.inodes.ino(node.clone()) == 1 {
            return Ok(std::process::id().to_string().into_bytes());
        }
        let Node::Guest(v, vol, id) = node else {
            return Err(Errno::NO_XATTR);
        };
        let u = self.frozen(*v)?;
        let vm = &u.vm;
        let fs = Self::guest_fs(vm, *vol)?;
        if let Some(stream) = name.strip_prefix("user.") {
            let streams = fs
                .streams(*id)
                .map_err(|e| Self::guest_err(vm, *vol, "streams", e))?;
            let (_, size) = streams
                .iter()
                .find(|(n, _)| n == stream)
                .ok_or(Errno::NO_XATTR)?;
            if *size > 64 * 1024 {
                return Err(Errno::E2BIG);
            }
            let mut buf = vec![0u8; *size as usize];
            let mut got = 0;
            while got < buf.len() {
                let n = fs
                    .read_stream(*id, stream, got as u64, &mut buf[got..])
                    .map_err(|e| Self::guest_err(vm, *vol, "read stream", e))?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            buf.truncate(got);
            return Ok(buf);
        }
        fs.system_xattr(*id, name)
            .map_err(|e| Self::guest_err(vm, *vol, "xattr", e))?
            .ok_or(Errno::NO_XATTR)
    }

    fn data_ranges(&self, node: &Node, h: &Handle) -> R<(u64, Vec<std::ops::Range<u64>>)> {
        let Handle::Node(u) = h else {
            return Err(Errno::EINVAL);
        };
        match node {
            Node::Flat(_, n) => {
                let d = u.vm.disks.get(*n as usize).ok_or(Errno::ESTALE)?;
                Ok((d.size(), d.data_ranges().to_vec()))
            }
            Node::Guest(_, vol, id) => {
                let fs = Self::guest_fs(&u.vm, *vol)?;
                let size = fs
                    .stat(*id)
                    .map_err(|e| Self::guest_err(&u.vm, *vol, "stat", e))?
                    .size;
                let ranges = fs
                    .data_ranges(*id)
                    .map_err(|e| Self::guest_err(&u.vm, *vol, "data ranges", e))?
                    .unwrap_or_else(|| std::iter::once(0..size).collect());
                Ok((size, ranges))
            }
            _ => Err(Errno::EINVAL),
        }
    }
}

fn name_str(name: &OsStr) -> R<&str> {
    name.to_str().ok_or(Errno::ENOENT)
}

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
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = (|| {
            let parent = self.node(parent)?;
            let node = self.lookup_node(&parent, name_str(name)?)?;
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
            let fs = Self::guest_fs(&u.vm, vol)?;
            fs.read_link(id)
                .map_err(|e| Self::guest_err(&u.vm, vol, "readlink", e))
        })();
        match r {
            Ok(target) => reply.data(target.as_bytes()),
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
                _ => {
                    // Keep the page cache across opens of the same freeze only: after
                    // idle release a re-freeze may show newer data under the same inode.
                    let seen = self
                        .opened_in
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(ino.0, u.vm.freeze_id);
                    let flags = if seen == Some(u.vm.freeze_id) {
                        FopenFlags::FOPEN_KEEP_CACHE
                    } else {
                        FopenFlags::empty()
                    };
                    (self.new_handle(Handle::Node(u)), flags)
                }
            })
        })();
        match r {
            Ok((fh, flags)) => reply.opened(fh, flags),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let r = (|| {
            let node = self.node(ino)?;
            let h = self.handle(fh)?;
            self.read_node(&node, &h, offset, size)
        })();
        match r {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
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
            out.push((ino.0, FileType::Directory, ".".to_owned(), node.clone()));
            out.push((ino.0, FileType::Directory, "..".to_owned(), node.clone()));
            for (n, kind, name) in entries {
                out.push((self.inodes.ino(n.clone()), kind, name, n));
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
                seek::data(&ranges, size, off)
            } else {
                seek::hole(&ranges, size, off)
            };
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
