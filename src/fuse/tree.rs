//! The tree itself: what each node is, lists, holds and reads (see README "The tree").

use std::ffi::OsStr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fuser::{Errno, FileAttr, FileType};

use super::inodes::Node;
use super::DirectIo;
use super::{
    name_str, tree_name, Handle, Listing, VmFs, PASSTHROUGH_XATTR, PID_XATTR, R, SPLICED_XATTR,
    STORED_XATTR, TTL_GUEST, TTL_TOP,
};
use crate::guestfs;
use crate::source::merge_ranges;
use crate::vm::{self, status, FrozenVm, Use};
use vmsnapfs_io::fill;

impl VmFs {
    pub(super) fn getattr_node(&self, ino: u64, node: &Node) -> R<(FileAttr, Duration)> {
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
    pub(super) fn getattr_in(
        &self,
        ino: u64,
        node: &Node,
        vm: &FrozenVm,
    ) -> R<(FileAttr, Duration)> {
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
                    Node::Disks(_) | Node::Volumes(_) | Node::Since(_) | Node::SinceId(..) => {
                        self.attr(ino, dir, 0, t)
                    }
                    Node::SinceJson(_, id, i) => {
                        let c = changes_of(vm, id, *i)?;
                        self.attr(ino, reg, c.json.len() as u64, t)
                    }
                    Node::SinceFlat(_, id, i) => {
                        let c = changes_of(vm, id, *i)?;
                        let mut a = self.attr(ino, reg, vm.disk(*i as usize)?.size(), t);
                        a.blocks = c.changed_bytes().div_ceil(512);
                        a.blksize = self.read_size;
                        a
                    }
                    Node::Descriptor(_, n) => {
                        let d = vm.disk(*n as usize)?;
                        self.attr(ino, reg, d.descriptor.len() as u64, t)
                    }
                    Node::Flat(_, n) => {
                        let d = vm.disk(*n as usize)?;
                        let mut a = self.attr(ino, reg, d.size(), t);
                        let used: u64 = d.data_ranges().iter().map(|r| r.end - r.start).sum();
                        a.blocks = used.div_ceil(512);
                        a.blksize = self.read_size;
                        a
                    }
                    Node::Guest(_, vol, id) => {
                        let fs = vm.guest_fs(*vol as usize)?;
                        let mut st = vm.guest(*vol as usize, "stat", fs.stat(*id))?;
                        // FAT and exFAT roots carry no times: show the freeze time rather
                        // than 1970 on the volume's folder.
                        if *id == fs.root() && st.mtime == std::time::UNIX_EPOCH {
                            (st.atime, st.mtime, st.ctime, st.crtime) = (t, t, t, t);
                        }
                        return Ok((self.guest_attr(ino, &st), TTL_GUEST));
                    }
                    Node::Stream(_, vol, id, name) => {
                        let fs = vm.guest_fs(*vol as usize)?;
                        let st = vm.guest(*vol as usize, "stat", fs.stat(*id))?;
                        let streams = vm.guest(*vol as usize, "streams", fs.streams(*id))?;
                        let (_, size) = streams
                            .iter()
                            .find(|(n, _)| **n == **name)
                            .ok_or(Errno::ENOENT)?;
                        let mut a = self.guest_attr(ino, &st);
                        a.kind = reg;
                        a.perm = self.tree.file_mode();
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

    pub(super) fn guest_attr(&self, ino: u64, st: &guestfs::Stat) -> FileAttr {
        let kind = Self::guest_kind(st.kind);
        let mut a = self.attr(ino, kind, st.size, st.mtime);
        a.rdev = st.rdev();
        self.tree.owners.apply(&mut a, &st.owner);
        a.atime = st.atime;
        a.ctime = st.ctime;
        a.crtime = st.crtime;
        a.blocks = st.allocated.div_ceil(512);
        a.nlink = st.nlink.max(1);
        // Readers size their reads by st_blksize (cp, cat): without the page cache
        // each read is a request of its own, so ask for the biggest one request holds.
        if kind == FileType::RegularFile && self.tree.direct_io == DirectIo::All {
            a.blksize = self.read_size;
        }
        a
    }

    pub(super) fn guest_kind(k: guestfs::Kind) -> FileType {
        match k {
            guestfs::Kind::Dir => FileType::Directory,
            guestfs::Kind::File => FileType::RegularFile,
            guestfs::Kind::Symlink => FileType::Symlink,
            guestfs::Kind::Fifo => FileType::NamedPipe,
            guestfs::Kind::CharDevice => FileType::CharDevice,
            guestfs::Kind::BlockDevice => FileType::BlockDevice,
            guestfs::Kind::Socket => FileType::Socket,
        }
    }

    /// The entries of a directory node, as (node, type, name).
    pub(super) fn list(&self, node: &Node) -> R<(Listing, Option<Use>)> {
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
                // Node numbers are places in `disks`; names are the VM's disk numbers,
                // which keep a gap where a disk could not be served.
                for (i, d) in vm.disks.iter().enumerate() {
                    let (i, n) = (i as u32, d.number);
                    out.push((Node::Descriptor(v, i), reg, format!("disk{n}.vmdk")));
                    out.push((Node::Flat(v, i), reg, format!("disk{n}-flat.vmdk")));
                }
            }
            // Lookup-only: any id can be asked for, none is listed.
            Node::Since(_) => {}
            Node::SinceId(_, id) => {
                let since = vm.since(id)?;
                for (i, c) in since.disks.iter().enumerate() {
                    if c.is_some() {
                        let (i, n) = (i as u32, vm.disks[i].number);
                        let name = format!("disk{n}.changes.json");
                        out.push((Node::SinceJson(v, id.clone(), i), reg, name));
                        let name = format!("disk{n}-flat.vmdk");
                        out.push((Node::SinceFlat(v, id.clone(), i), reg, name));
                    }
                }
            }
            Node::Volumes(_) => {
                for (i, vol) in vm.mounted_volumes() {
                    let root = vol.fs.as_ref().map(|f| f.root()).unwrap_or(0);
                    out.push((Node::Guest(v, i as u32, root), dir, vol.name.clone()));
                }
            }
            Node::Guest(_, vol, id) => {
                let fs = vm.guest_fs(*vol as usize)?;
                let entries = vm.guest(*vol as usize, "read_dir", fs.read_dir(*id))?;
                for e in entries {
                    let kind = Self::guest_kind(e.kind);
                    out.push((Node::Guest(v, *vol, e.id), kind, e.name));
                }
            }
            _ => return Err(Errno::ENOTDIR),
        }
        Ok((out, Some(u)))
    }

    /// `name` as the kernel gives it: guest file systems whose names are bytes take any
    /// bytes, every other folder only UTF-8.
    pub(super) fn lookup_node(&self, parent: &Node, name: &OsStr) -> R<Node> {
        if let Node::Guest(v, vol, id) = parent {
            return self.lookup_guest(*v, *vol, *id, name);
        }
        let name = name_str(name)?;
        match parent {
            Node::Disks(v) if name == "since" => {
                self.frozen(*v)?;
                Ok(Node::Since(*v))
            }
            Node::Since(v) => {
                let id = vm::changes::id_of(name);
                self.frozen(*v)?.vm.since(&id)?;
                Ok(Node::SinceId(*v, id.into()))
            }
            Node::SinceId(v, id) => {
                let u = self.frozen(*v)?;
                let since = u.vm.since(id)?;
                let (n, json) = match name.strip_suffix(".changes.json") {
                    Some(n) => (n, true),
                    None => (name.strip_suffix("-flat.vmdk").ok_or(Errno::ENOENT)?, false),
                };
                let number: usize = n
                    .strip_prefix("disk")
                    .and_then(|n| n.parse().ok())
                    .ok_or(Errno::ENOENT)?;
                let i =
                    u.vm.disks
                        .iter()
                        .position(|d| d.number == number)
                        .ok_or(Errno::ENOENT)?;
                // A disk that cannot count from this id: the reason is logged and in
                // status.json (full_backup_needed); its files are not there.
                since.disks[i].as_ref().ok_or(Errno::ENOENT)?;
                let i = i as u32;
                Ok(if json {
                    Node::SinceJson(*v, id.clone(), i)
                } else {
                    Node::SinceFlat(*v, id.clone(), i)
                })
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

    fn lookup_guest(&self, v: u32, vol: u32, id: u64, name: &OsStr) -> R<Node> {
        let u = self.frozen(v)?;
        let fs = u.vm.guest_fs(vol as usize)?;
        let name = tree_name(name, fs.byte_names())?;
        let ci = self.tree.case_insensitive;
        match fs.lookup(id, &name, ci) {
            Ok(Some(e)) => return Ok(Node::Guest(v, vol, e.id)),
            Ok(None) => {}
            Err(e) => return Err(u.vm.guest(vol as usize, "lookup", Err(e))?),
        }
        if self.tree.streams_windows {
            if let Some((file, stream)) = name.split_once(':') {
                if let Ok(Some(e)) = fs.lookup(id, file, ci) {
                    let streams = fs.streams(e.id).unwrap_or_default();
                    if streams.iter().any(|(n, _)| n == stream) {
                        return Ok(Node::Stream(v, vol, e.id, stream.into()));
                    }
                }
            }
        }
        Err(Errno::ENOENT)
    }

    /// A disk image's bytes lent by the source (a read-ahead chunk), for a reply with
    /// no copy of ours; None when the source holds no buffer that covers them.
    pub(super) fn lend_node(
        &self,
        node: &Node,
        h: &Handle,
        offset: u64,
        size: u32,
    ) -> Option<R<vmsnapfs_io::Lent>> {
        let (Node::Flat(_, n), Handle::Node(u, _)) = (node, h) else {
            return None;
        };
        let vm = &u.vm;
        let d = vm.disks.get(*n as usize)?;
        let len = d.data.size().checked_sub(offset)?.min(size as u64) as usize;
        Some(
            d.data
                .lend(offset, len)?
                .map_err(|e| Errno::from(vm.disk_error(d, offset, e))),
        )
    }

    /// Where a disk image's or guest file's `size` bytes at `offset` lie in local
    /// files, for a spliced reply: their count (short at the end), or None when they
    /// must be read.
    pub(super) fn place_node(
        &self,
        node: &Node,
        h: &Handle,
        offset: u64,
        size: u32,
        out: &mut vmsnapfs_io::Places,
    ) -> Option<u64> {
        let Handle::Node(u, _) = h else {
            return None;
        };
        match node {
            Node::Flat(_, n) => {
                let d = u.vm.disks.get(*n as usize)?;
                let len = d.data.size().saturating_sub(offset).min(size as u64);
                d.data.place(offset, len, out).then_some(len)
            }
            Node::Guest(_, vol, id) => {
                let fs = u.vm.guest_fs(*vol as usize).ok()?;
                fs.place(*id, offset, size as u64, out)
            }
            _ => None,
        }
    }

    /// Fills `buf` from `offset`; returns how many bytes there were (short at the end).
    pub(super) fn read_node(
        &self,
        node: &Node,
        h: &Handle,
        offset: u64,
        buf: &mut [u8],
    ) -> R<usize> {
        let slice = |b: &[u8], buf: &mut [u8]| {
            let start = (offset as usize).min(b.len());
            let n = (b.len() - start).min(buf.len());
            buf[..n].copy_from_slice(&b[start..start + n]);
            n
        };
        let vm = match h {
            Handle::Bytes { data, .. } => return Ok(slice(data, buf)),
            Handle::Node(u, _) | Handle::Passed(u, _) => &u.vm,
            Handle::Changes {
                hold,
                changes,
                disk,
                sink,
            } => {
                let sink = sink.as_ref();
                return Ok(hold.vm.read_changes(*disk, changes, offset, buf, sink)?);
            }
            Handle::Dir { .. } => return Err(Errno::EISDIR),
        };
        // Guest files and streams come in pieces (extents, runs) until the end.
        match node {
            Node::Vmx(_) => Ok(slice(&vm.vmx, buf)),
            Node::Descriptor(_, n) => Ok(slice(&vm.disk(*n as usize)?.descriptor, buf)),
            Node::Flat(_, n) => Ok(vm.read_disk(*n as usize, offset, buf)?),
            Node::Guest(_, vol, id) => {
                let fs = vm.guest_fs(*vol as usize)?;
                let read = |at: usize, b: &mut [u8]| fs.read(*id, offset + at as u64, b);
                Ok(vm.guest(*vol as usize, "read", fill(buf, read))?)
            }
            Node::Stream(_, vol, id, name) => {
                let fs = vm.guest_fs(*vol as usize)?;
                let read =
                    |at: usize, b: &mut [u8]| fs.read_stream(*id, name, offset + at as u64, b);
                Ok(vm.guest(*vol as usize, "read stream", fill(buf, read))?)
            }
            _ => Err(Errno::EISDIR),
        }
    }

    pub(super) fn xattr_names(&self, node: &Node) -> R<Vec<String>> {
        let Node::Guest(v, vol, id) = node else {
            return Ok(Vec::new());
        };
        let u = self.frozen(*v)?;
        let fs = u.vm.guest_fs(*vol as usize)?;
        let mut names: Vec<String> =
            u.vm.guest(*vol as usize, "streams", fs.streams(*id))?
                .into_iter()
                .map(|(n, _)| format!("user.{n}"))
                .collect();
        names.extend(fs.system_xattr_names(*id));
        Ok(names)
    }

    /// The hidden xattrs of the mount root (tests, benches, `vmsnapfs umount`): the
    /// serving process and its counters. Other nodes do not have them.
    fn root_xattr(&self, name: &str) -> Option<u64> {
        match name {
            PID_XATTR => Some(std::process::id().into()),
            SPLICED_XATTR => Some(self.splice.as_ref().map_or(0, |s| s.spliced())),
            PASSTHROUGH_XATTR => Some(self.passthrough.as_ref().map_or(0, |p| p.opened())),
            STORED_XATTR => Some(self.stored.load(Ordering::Relaxed)),
            _ => None,
        }
    }

    pub(super) fn xattr(&self, node: &Node, name: &str) -> R<Vec<u8>> {
        if let Some(n) = self.root_xattr(name) {
            if self.inodes.ino(node.clone()) == 1 {
                return Ok(n.to_string().into_bytes());
            }
        }
        let Node::Guest(v, vol, id) = node else {
            return Err(Errno::NO_XATTR);
        };
        let u = self.frozen(*v)?;
        let vm = &u.vm;
        let fs = vm.guest_fs(*vol as usize)?;
        // NTFS's named streams are `user.*`; Linux volumes keep `user.*` as xattrs.
        let stream = match name.strip_prefix("user.") {
            Some(stream) => vm
                .guest(*vol as usize, "streams", fs.streams(*id))?
                .into_iter()
                .find(|(n, _)| n == stream)
                .map(|(_, size)| (stream, size)),
            None => None,
        };
        if let Some((stream, size)) = stream {
            if size > 64 * 1024 {
                return Err(Errno::E2BIG);
            }
            let mut buf = vec![0u8; size as usize];
            let read = |at: usize, b: &mut [u8]| fs.read_stream(*id, stream, at as u64, b);
            let got = vm.guest(*vol as usize, "read stream", fill(&mut buf, read))?;
            buf.truncate(got);
            return Ok(buf);
        }
        vm.guest(*vol as usize, "xattr", fs.system_xattr(*id, name))?
            .ok_or(Errno::NO_XATTR)
    }

    /// A file's size and data ranges, sorted and merged (what `seek` searches).
    pub(super) fn data_ranges<'h>(
        &self,
        node: &Node,
        h: &'h Handle,
    ) -> R<(u64, &'h [std::ops::Range<u64>])> {
        if let Handle::Changes {
            hold,
            changes,
            disk,
            ..
        } = h
        {
            return Ok((hold.vm.disk(*disk)?.size(), &changes.ranges));
        }
        let (u, cached) = match h {
            Handle::Node(u, cached) => (u, Some(cached)),
            Handle::Passed(u, _) => (u, None),
            _ => return Err(Errno::EINVAL),
        };
        match (node, cached) {
            (Node::Flat(_, n), _) => {
                let d = u.vm.disk(*n as usize)?;
                Ok((d.size(), d.data_ranges()))
            }
            (Node::Guest(_, vol, id), Some(cached)) => {
                let (size, ranges) = match cached.get() {
                    Some(known) => known,
                    None => {
                        let fs = u.vm.guest_fs(*vol as usize)?;
                        let size = u.vm.guest(*vol as usize, "stat", fs.stat(*id))?.size;
                        let ranges =
                            u.vm.guest(*vol as usize, "data ranges", fs.data_ranges(*id))?
                                .map(merge_ranges)
                                .unwrap_or_else(|| std::iter::once(0..size).collect());
                        cached.get_or_init(|| (size, ranges))
                    }
                };
                Ok((*size, ranges))
            }
            _ => Err(Errno::EINVAL),
        }
    }
}

/// Disk `i`'s changes since `id`, for a node made by a lookup of this freeze.
pub(super) fn changes_of(
    vm: &FrozenVm,
    id: &str,
    i: u32,
) -> R<std::sync::Arc<vm::changes::DiskChanges>> {
    let since = vm.since(id)?;
    since
        .disks
        .get(i as usize)
        .cloned()
        .flatten()
        .ok_or(Errno::ESTALE)
}
