//! Mounting as root with mount(2) directly, as libfuse does, so the kernel records the
//! type as `fuse.vmsnapfs` (what `mount -t`, fstab, findmnt and `vmsnapfs umount` match
//! on). fuser's own root mount says plain `fuse`; without root, fuser goes through
//! fusermount3, which sets the subtype itself.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::MsFlags;

pub const FS_TYPE: &str = "fuse.vmsnapfs";

/// Opens /dev/fuse and mounts it read-only at `mountpoint`; the descriptor then feeds
/// `fuser::Session::from_fd`.
pub fn mount(
    source: &str,
    mountpoint: &Path,
    allow_other: bool,
    max_read: u32,
) -> std::io::Result<OwnedFd> {
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    let root_mode = std::fs::metadata(mountpoint)?.mode() & libc::S_IFMT;
    let mut data = format!(
        "fd={},rootmode={:o},user_id={},group_id={},default_permissions,max_read={max_read}",
        dev.as_raw_fd(),
        root_mode,
        nix::unistd::getuid(),
        nix::unistd::getgid(),
    );
    if allow_other {
        data.push_str(",allow_other");
    }
    nix::mount::mount(
        Some(source),
        mountpoint,
        Some(FS_TYPE),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(data.as_str()),
    )?;
    Ok(dev.into())
}

/// Unmounts; a busy mount (a backup still has files open) is detached instead, so no
/// new access can start.
pub fn unmount(mountpoint: &Path) -> std::io::Result<()> {
    match nix::mount::umount2(mountpoint, nix::mount::MntFlags::empty()) {
        Err(nix::errno::Errno::EBUSY) => {
            tracing::warn!("{} is busy; detaching it", mountpoint.display());
            nix::mount::umount2(mountpoint, nix::mount::MntFlags::MNT_DETACH)?;
            Ok(())
        }
        r => Ok(r?),
    }
}
