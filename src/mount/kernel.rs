//! Mounting as root with mount(2) directly, as libfuse does, so the kernel records the
//! type as `fuse.vmsnapfs` (what `mount -t`, fstab, findmnt and `vmsnapfs umount` match
//! on). fuser's own root mount says plain `fuse`; without root, fuser goes through
//! fusermount3, which sets the subtype itself.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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

/// The kernel reads ahead of a FUSE file at most the backing device's `read_ahead_kb`,
/// which the answer to INIT leaves at 128 KiB whatever `max_readahead` the server
/// offers, so sequential reads arrive as 128 KiB requests: a round trip through the
/// server per 128 KiB. Raising it (root only, through sysfs) lets reads of disks and big
/// files come as 1 MiB requests with several in flight. Called from the INIT handler,
/// just before its answer goes out: the setting is made shortly after, and once more a
/// little later in case the answer was slow to go.
pub fn raise_readahead_soon(mountpoint: PathBuf, kib: u32) {
    let _ = std::thread::Builder::new()
        .name("readahead".into())
        .spawn(move || {
            for wait in [50, 1000] {
                std::thread::sleep(std::time::Duration::from_millis(wait));
                if let Err(e) = raise_readahead(&mountpoint, kib) {
                    tracing::warn!("read-ahead stays at the kernel's default: {e}");
                    return;
                }
            }
        });
}

fn raise_readahead(mountpoint: &Path, kib: u32) -> std::io::Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let dev = device_of(&info, mountpoint).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} not in /proc/self/mountinfo", mountpoint.display()),
        )
    })?;
    std::fs::write(
        format!("/sys/class/bdi/{dev}/read_ahead_kb"),
        kib.to_string(),
    )
}

/// The newest mount at `mountpoint` in a mountinfo text: (`major:minor`, type).
pub fn newest_mount(mountinfo: &str, mountpoint: &Path) -> Option<(String, String)> {
    let want = mountpoint.to_str()?;
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        let fs_type = f.get(sep + 1)?;
        (unescape(f.get(4)?) == want).then(|| (f[2].to_owned(), fs_type.to_string()))
    })
}

/// `major:minor` of the newest mount at `mountpoint`, if it is ours.
fn device_of(mountinfo: &str, mountpoint: &Path) -> Option<String> {
    newest_mount(mountinfo, mountpoint)
        .filter(|(_, t)| t == FS_TYPE)
        .map(|(dev, _)| dev)
}

/// Mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (b[i], oct) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_of_the_newest_vmsnapfs_mount_at_a_path() {
        let info = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
90 22 0:50 / /backup/my\\040vms ro - fuse.vmsnapfs /srv/vms ro,user_id=0
91 90 0:51 / /backup/my\\040vms ro - fuse.vmsnapfs /srv/vms ro,user_id=0
92 22 0:52 / /backup/other ro - fuse.sshfs host: ro
";
        assert_eq!(
            device_of(info, Path::new("/backup/my vms")).as_deref(),
            Some("0:51")
        );
        assert_eq!(device_of(info, Path::new("/backup/other")), None);
        assert_eq!(device_of(info, Path::new("/proc")), None);
    }
}
