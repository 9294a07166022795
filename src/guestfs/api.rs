//! The file-system-neutral calls every guest file system answers.

use std::io;
use std::ops::Range;
use std::time::SystemTime;

use vmsnapfs_io::Places;

use super::names;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

/// A POSIX owner and mode the guest file system itself records (NTFS: WSL's $LXUID,
/// $LXGID and $LXMOD EAs); shown instead of the mount's with `-o owners=guest`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuestOwner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Permission bits (07777).
    pub mode: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Stat {
    pub kind: Kind,
    pub size: u64,
    /// Bytes actually allocated on the volume (sparse/compressed files hold fewer).
    pub allocated: u64,
    pub nlink: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub crtime: SystemTime,
    pub owner: GuestOwner,
    /// (major, minor) of a character or block device.
    pub device: Option<(u64, u64)>,
}

impl Stat {
    /// The device number as FUSE carries it (the kernel's `new_encode_dev`); 0 when the
    /// numbers do not fit (major above 4095, minor above 2^20 - 1).
    pub fn rdev(&self) -> u32 {
        match self.device {
            Some((major, minor)) if major < 1 << 12 && minor < 1 << 20 => {
                let (major, minor) = (major as u32, minor as u32);
                (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
            }
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DirEntry {
    /// Already escaped into a valid, `/`-free UTF-8 name (see `names`).
    pub name: String,
    pub id: u64,
    pub kind: Kind,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VolumeInfo {
    pub fs: String,
    pub label: Option<String>,
    pub dirty: bool,
    pub hibernated: bool,
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub cluster_size: u32,
    /// ext3/4: a dirty journal was replayed in memory, so files read as after recovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_replayed: Option<bool>,
    /// XFS: the log holds transactions not yet written home; files are as on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_dirty: Option<bool>,
}

pub trait GuestFs: Send + Sync {
    fn info(&self) -> VolumeInfo;
    fn root(&self) -> u64;
    fn stat(&self, id: u64) -> io::Result<Stat>;
    fn read_dir(&self, dir: u64) -> io::Result<Vec<DirEntry>>;

    /// Finds `name` in `dir`. The default scans the listing; file systems with an
    /// on-disk index override it.
    fn lookup(&self, dir: u64, name: &str, case_insensitive: bool) -> io::Result<Option<DirEntry>> {
        let entries = self.read_dir(dir)?;
        if let Some(e) = entries.iter().find(|e| e.name == name) {
            return Ok(Some(e.clone()));
        }
        if case_insensitive {
            let folded = names::fold(name);
            return Ok(entries.into_iter().find(|e| names::fold(&e.name) == folded));
        }
        Ok(None)
    }

    /// Reads the unnamed data; returns the bytes read (short only at end of file).
    fn read(&self, id: u64, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// Where `read` would find `len` bytes at `offset` of the unnamed data, appended to
    /// `out` (see `ReadAt::place`): their count, short only at end of file, or None
    /// when they must be read (the default).
    fn place(&self, _id: u64, _offset: u64, _len: u64, _out: &mut Places) -> Option<u64> {
        None
    }

    /// The target as stored (Linux targets are bytes, not always UTF-8).
    fn read_link(&self, _id: u64) -> io::Result<Vec<u8>> {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }

    /// Ranges holding data, for SEEK_DATA/SEEK_HOLE; None = all data.
    fn data_ranges(&self, _id: u64) -> io::Result<Option<Vec<Range<u64>>>> {
        Ok(None)
    }

    /// Named data streams (NTFS ADS): (name, size).
    fn streams(&self, _id: u64) -> io::Result<Vec<(String, u64)>> {
        Ok(Vec::new())
    }

    fn read_stream(
        &self,
        _id: u64,
        _name: &str,
        _offset: u64,
        _buf: &mut [u8],
    ) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::ENODATA))
    }

    /// Whether names are bytes on disk (Linux file systems): our names are then
    /// `names::from_bytes` spellings, and the FUSE layer hands the kernel the bytes.
    fn byte_names(&self) -> bool {
        false
    }

    /// Names of file-system specific xattrs (`system.ntfs_attrib`, …) this node has.
    fn system_xattr_names(&self, _id: u64) -> Vec<String> {
        Vec::new()
    }

    fn system_xattr(&self, _id: u64, _name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rdev_is_the_kernels_encoding() {
        let mut st = super::Stat {
            kind: super::Kind::CharDevice,
            size: 0,
            allocated: 0,
            nlink: 1,
            atime: std::time::UNIX_EPOCH,
            mtime: std::time::UNIX_EPOCH,
            ctime: std::time::UNIX_EPOCH,
            crtime: std::time::UNIX_EPOCH,
            owner: Default::default(),
            device: Some((8, 1)),
        };
        assert_eq!(st.rdev(), 0x801);
        st.device = Some((259, 0x12345));
        assert_eq!(st.rdev(), libc::makedev(259, 0x12345) as u32);
        st.device = Some((1 << 12, 0));
        assert_eq!(st.rdev(), 0);
    }
}
