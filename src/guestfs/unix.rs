//! What the Linux file systems (ext2/3/4, XFS) share on the way to the neutral view:
//! times as (seconds, nanoseconds), glibc device numbers, owners and modes as stored,
//! and names that are bytes.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::api::{DirEntry, GuestOwner, Kind};
use super::names;

/// Seconds may be negative (before 1970) and, with ext4's epoch bits or XFS bigtime,
/// run to 2446 and beyond; both fit SystemTime on Linux.
pub fn time(secs: i64, nanos: u32) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(nanos.min(999_999_999)));
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + nanos
    }
}

/// (major, minor) of a glibc `makedev` number, as both readers decode `rdev`.
pub fn device(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

pub fn owner(uid: u32, gid: u32, mode: u32) -> GuestOwner {
    GuestOwner {
        uid: Some(uid),
        gid: Some(gid),
        mode: Some((mode & 0o7777) as u16),
    }
}

pub fn entry(name: &[u8], id: u64, kind: Kind) -> DirEntry {
    DirEntry {
        name: names::from_bytes(name).into_owned(),
        id,
        kind,
    }
}

/// The guest bytes a name in our tree stands for; None for `.`/`..` (the FUSE layer
/// resolves those) and for spellings `names::from_bytes` never gives.
pub fn guest_name(name: &str) -> Option<Vec<u8>> {
    if name == "." || name == ".." {
        return None;
    }
    names::to_bytes(name)
}

/// `-o case_insensitive` on a file system whose names are exact: a scan of the listing.
pub fn find_folded(entries: Vec<DirEntry>, name: &str) -> Option<DirEntry> {
    let folded = names::fold(name);
    entries.into_iter().find(|e| names::fold(&e.name) == folded)
}

/// The names of a node's xattrs. listxattr must not fail over one unreadable xattr
/// block: getxattr of a name reports it.
pub fn xattr_names(
    fs: &str,
    id: u64,
    all: Result<Vec<(String, Vec<u8>)>, impl std::fmt::Display>,
) -> Vec<String> {
    match all {
        Ok(all) => all.into_iter().map(|(n, _)| n).collect(),
        Err(e) => {
            tracing::debug!("{fs}: xattrs of inode {id}: {e}");
            Vec::new()
        }
    }
}

/// The value of `name` among a node's xattrs (full Linux names).
pub fn xattr(all: io::Result<Vec<(String, Vec<u8>)>>, name: &str) -> io::Result<Option<Vec<u8>>> {
    Ok(all?.into_iter().find(|(n, _)| n == name).map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn devices_and_times() {
        assert_eq!(super::device(libc::makedev(8, 1)), (8, 1));
        assert_eq!(super::device(libc::makedev(259, 70000)), (259, 70000));
        assert_eq!(
            super::time(-1, 500_000_000),
            std::time::UNIX_EPOCH - std::time::Duration::from_millis(500)
        );
    }
}
