//! ext2/ext3/ext4 through `vmsnapfs_ext4`: owners, modes and every xattr as stored
//! (`user.*`, `security.*`, `trusted.*`, POSIX ACLs as `system.posix_acl_*`), so
//! `rsync -aHAX` of our tree reproduces the guest's; a dirty journal is replayed in
//! memory at open.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use vmsnapfs_ext4::{FileKind, Volume};
use vmsnapfs_io::{Places, ReadAt};

use super::api::{DirEntry, GuestFs, Kind, Stat, VolumeInfo};
use super::unix;

pub struct Ext4 {
    vol: Volume,
    fs: &'static str,
}

fn kind(k: FileKind) -> Kind {
    match k {
        FileKind::Dir => Kind::Dir,
        FileKind::Symlink => Kind::Symlink,
        FileKind::Fifo => Kind::Fifo,
        FileKind::CharDev => Kind::CharDevice,
        FileKind::BlockDev => Kind::BlockDevice,
        FileKind::Socket => Kind::Socket,
        // A mode naming no type: its bytes are still the file's data.
        FileKind::File | FileKind::Unknown => Kind::File,
    }
}

/// An id the FUSE layer was given is an inode number we handed out.
fn ino(id: u64) -> io::Result<u32> {
    u32::try_from(id).map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))
}

impl Ext4 {
    /// `fs` is the name detection gave (ext2, ext3 or ext4), shown in status.json.
    pub fn open(reader: Arc<dyn ReadAt>, fs: &'static str) -> io::Result<Self> {
        let vol = Volume::open(reader)?;
        let i = vol.info();
        if i.journal_replayed {
            tracing::info!(
                "{fs}: replayed {} journal transaction(s) ({} blocks) in memory",
                i.journal_transactions,
                i.journal_blocks
            );
        }
        Ok(Self { vol, fs })
    }
}

impl GuestFs for Ext4 {
    fn info(&self) -> VolumeInfo {
        let i = self.vol.info();
        let bs = u64::from(i.block_size);
        VolumeInfo {
            fs: self.fs.into(),
            label: Some(i.label).filter(|l| !l.is_empty()),
            // Not cleanly unmounted (the normal state of a running guest's snapshot).
            dirty: i.needs_recovery || i.not_clean,
            hibernated: false,
            total_bytes: i.blocks_count.saturating_mul(bs),
            free_bytes: i.free_blocks.saturating_mul(bs),
            cluster_size: i.block_size,
            journal_replayed: Some(i.journal_replayed),
            log_dirty: None,
        }
    }

    fn root(&self) -> u64 {
        u64::from(self.vol.root())
    }

    fn stat(&self, id: u64) -> io::Result<Stat> {
        let m = self.vol.stat(ino(id)?)?;
        let k = kind(m.kind);
        let t = |t: vmsnapfs_ext4::Time| unix::time(t.secs, t.nanos);
        Ok(Stat {
            kind: k,
            size: m.size,
            allocated: m.allocated,
            nlink: m.nlink,
            atime: t(m.atime),
            mtime: t(m.mtime),
            ctime: t(m.ctime),
            crtime: t(m.crtime.unwrap_or(m.ctime)),
            owner: unix::owner(m.uid, m.gid, u32::from(m.mode)),
            device: matches!(k, Kind::CharDevice | Kind::BlockDevice).then(|| unix::device(m.rdev)),
        })
    }

    fn read_dir(&self, dir: u64) -> io::Result<Vec<DirEntry>> {
        Ok(self
            .vol
            .read_dir(ino(dir)?)?
            .into_iter()
            .map(|e| unix::entry(&e.name, u64::from(e.ino), kind(e.kind)))
            .collect())
    }

    fn lookup(&self, dir: u64, name: &str, case_insensitive: bool) -> io::Result<Option<DirEntry>> {
        if let Some(raw) = unix::guest_name(name) {
            if let Some(e) = self.vol.lookup(ino(dir)?, &raw)? {
                return Ok(Some(unix::entry(&e.name, u64::from(e.ino), kind(e.kind))));
            }
        }
        if !case_insensitive {
            return Ok(None);
        }
        Ok(unix::find_folded(self.read_dir(dir)?, name))
    }

    fn read(&self, id: u64, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.vol.read(ino(id)?, offset, buf)?)
    }

    fn place(&self, id: u64, offset: u64, len: u64, out: &mut Places) -> Option<u64> {
        self.vol.place(ino(id).ok()?, offset, len, out)
    }

    fn read_link(&self, id: u64) -> io::Result<Vec<u8>> {
        Ok(self.vol.read_link(ino(id)?)?)
    }

    fn data_ranges(&self, id: u64) -> io::Result<Option<Vec<Range<u64>>>> {
        Ok(Some(self.vol.data_ranges(ino(id)?)?))
    }

    fn byte_names(&self) -> bool {
        true
    }

    fn system_xattr_names(&self, id: u64) -> Vec<String> {
        let Ok(i) = ino(id) else { return Vec::new() };
        unix::xattr_names(self.fs, id, self.vol.xattrs(i))
    }

    fn system_xattr(&self, id: u64, name: &str) -> io::Result<Option<Vec<u8>>> {
        unix::xattr(self.vol.xattrs(ino(id)?).map_err(io::Error::from), name)
    }
}
