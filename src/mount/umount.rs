//! `vmsnapfs umount MOUNTPOINT`: unmount, then wait until the serving process has
//! thawed every VM and exited, so a backup script's next step runs on a released VM.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fuse::PID_XATTR;

#[derive(Debug, thiserror::Error)]
pub enum UmountError {
    #[error("{}: {source}", path.display())]
    Path {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is a {fs_type} mount, not vmsnapfs", path.display())]
    NotOurs { path: PathBuf, fs_type: String },
    #[error("{} is not a mountpoint", .0.display())]
    NotMounted(PathBuf),
    #[error("fusermount3: {0}")]
    Helper(#[source] std::io::Error),
    #[error("fusermount3 -u {} failed", .0.display())]
    HelperFailed(PathBuf),
    #[error("umount {}: {source}", path.display())]
    Umount {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("unmounted, but process {pid} is still thawing after {timeout:?}")]
    StillThawing { pid: i32, timeout: Duration },
}

pub fn run(mountpoint: &Path, lazy: bool, timeout: Duration) -> Result<(), UmountError> {
    let mountpoint = &std::fs::canonicalize(mountpoint).map_err(|source| UmountError::Path {
        path: mountpoint.to_path_buf(),
        source,
    })?;
    match fs_type(mountpoint) {
        Some(t) if t == super::kernel::FS_TYPE => {}
        Some(fs_type) => {
            return Err(UmountError::NotOurs {
                path: mountpoint.clone(),
                fs_type,
            })
        }
        None => return Err(UmountError::NotMounted(mountpoint.clone())),
    }
    let pid = serving_pid(mountpoint);
    let flags = if lazy {
        nix::mount::MntFlags::MNT_DETACH
    } else {
        nix::mount::MntFlags::empty()
    };
    match nix::mount::umount2(mountpoint, flags) {
        Ok(()) => {}
        Err(nix::errno::Errno::EPERM) => {
            // Not root: the setuid helper may unmount mounts this user owns.
            let mut cmd = Command::new("fusermount3");
            cmd.arg("-u");
            if lazy {
                cmd.arg("-z");
            }
            let st = cmd.arg(mountpoint).status().map_err(UmountError::Helper)?;
            if !st.success() {
                return Err(UmountError::HelperFailed(mountpoint.clone()));
            }
        }
        Err(source) => {
            return Err(UmountError::Umount {
                path: mountpoint.clone(),
                source,
            })
        }
    }
    let Some(pid) = pid else { return Ok(()) };
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() > deadline {
            return Err(UmountError::StillThawing { pid, timeout });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The type of the file system mounted exactly at `mountpoint` (the topmost one).
fn fs_type(mountpoint: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    super::kernel::newest_mount(&info, mountpoint).map(|(_, t)| t)
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has finished its work; its parent just has not reaped it yet.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The pid our file system publishes on its root (absent for other file systems).
fn serving_pid(mountpoint: &Path) -> Option<i32> {
    let path = CString::new(mountpoint.as_os_str().as_bytes()).ok()?;
    let name = CString::new(PID_XATTR).ok()?;
    let mut buf = [0u8; 32];
    // SAFETY: both strings are NUL-terminated and buf's length is passed.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return None;
    }
    std::str::from_utf8(&buf[..n as usize])
        .ok()?
        .trim()
        .parse()
        .ok()
}
