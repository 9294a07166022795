//! XFS through `vmsnapfs_xfs`: owners, modes and xattrs as stored (POSIX ACLs as
//! `system.posix_acl_*`). The log is not replayed: a dirty log is reported
//! (`log_dirty` in status.json) and files are served as they are on disk.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use vmsnapfs_io::{Places, ReadAt};
use vmsnapfs_xfs::{Error, FileKind, Volume};

use super::api::{DirEntry, GuestFs, Kind, Stat, VolumeInfo};
use super::unix;

pub struct Xfs {
    vol: Volume,
}

fn kind(k: FileKind) -> Kind {
    match k {
        FileKind::File => Kind::File,
        FileKind::Dir => Kind::Dir,
        FileKind::Symlink => Kind::Symlink,
        FileKind::Fifo => Kind::Fifo,
        FileKind::CharDev => Kind::CharDevice,
        FileKind::BlockDev => Kind::BlockDevice,
        FileKind::Socket => Kind::Socket,
    }
}

impl Xfs {
    pub fn open(reader: Arc<dyn ReadAt>) -> io::Result<Self> {
        let vol = Volume::open(reader)?;
        let i = vol.info();
        if i.log_dirty {
            tracing::warn!(
                "xfs {:?}: the log holds transactions not yet written home; files are \
                 served as they are on disk (the log is not replayed)",
                i.label
            );
        }
        Ok(Self { vol })
    }
}

impl GuestFs for Xfs {
    fn info(&self) -> VolumeInfo {
        let i = self.vol.info();
        let bs = u64::from(i.block_size);
        VolumeInfo {
            fs: "xfs".into(),
            label: Some(i.label).filter(|l| !l.is_empty()),
            dirty: i.log_dirty,
            hibernated: false,
            total_bytes: i.total_blocks.saturating_mul(bs),
            free_bytes: i.free_blocks.saturating_mul(bs),
            cluster_size: i.block_size,
            journal_replayed: None,
            log_dirty: Some(i.log_dirty),
        }
    }

    fn root(&self) -> u64 {
        self.vol.root()
    }

    fn stat(&self, id: u64) -> io::Result<Stat> {
        let m = self.vol.stat(id)?;
        let k = kind(m.kind);
        let t = |(s, n): vmsnapfs_xfs::Timestamp| unix::time(s, n);
        Ok(Stat {
            kind: k,
            size: m.size,
            allocated: m.allocated,
            nlink: m.nlink,
            atime: t(m.atime),
            mtime: t(m.mtime),
            ctime: t(m.ctime),
            crtime: t(m.crtime.unwrap_or(m.ctime)),
            owner: unix::owner(m.uid, m.gid, m.mode),
            device: matches!(k, Kind::CharDevice | Kind::BlockDevice).then(|| unix::device(m.rdev)),
        })
    }

    fn read_dir(&self, dir: u64) -> io::Result<Vec<DirEntry>> {
        Ok(self
            .vol
            .read_dir(dir)?
            .into_iter()
            .map(|e| unix::entry(&e.name, e.ino, kind(e.kind)))
            .collect())
    }

    fn lookup(&self, dir: u64, name: &str, case_insensitive: bool) -> io::Result<Option<DirEntry>> {
        if let Some(raw) = unix::guest_name(name) {
            match self.vol.lookup(dir, &raw) {
                Ok(e) => return Ok(Some(unix::entry(&e.name, e.ino, kind(e.kind)))),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !case_insensitive {
            return Ok(None);
        }
        Ok(unix::find_folded(self.read_dir(dir)?, name))
    }

    fn read(&self, id: u64, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.vol.read(id, offset, buf)?)
    }

    fn place(&self, id: u64, offset: u64, len: u64, out: &mut Places) -> Option<u64> {
        self.vol.place(id, offset, len, out)
    }

    fn read_link(&self, id: u64) -> io::Result<Vec<u8>> {
        Ok(self.vol.read_link(id)?)
    }

    fn data_ranges(&self, id: u64) -> io::Result<Option<Vec<Range<u64>>>> {
        Ok(Some(
            self.vol
                .data_ranges(id)?
                .into_iter()
                .map(|(off, len)| off..off.saturating_add(len))
                .collect(),
        ))
    }

    fn byte_names(&self) -> bool {
        true
    }

    fn system_xattr_names(&self, id: u64) -> Vec<String> {
        unix::xattr_names("xfs", id, self.vol.xattrs(id))
    }

    fn system_xattr(&self, id: u64, name: &str) -> io::Result<Option<Vec<u8>>> {
        unix::xattr(self.vol.xattrs(id).map_err(io::Error::from), name)
    }
}
