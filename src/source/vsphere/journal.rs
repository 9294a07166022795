//! The snapshot journal: before asking for a snapshot we durably record (server, VM,
//! snapshot name, pid, mountpoint). A process that dies (kill -9, power loss) leaves its
//! entries behind; the next start and `vmsnapfs snapshots cleanup` remove exactly the
//! snapshots named there whose process is gone, so no snapshot is ever orphaned and no
//! snapshot we did not create is ever touched.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::errors::{Result, VsError};
use super::soap::Moref;

pub const DEFAULT_DIR: &str = "/var/lib/vmsnapfs";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub server: String,
    /// The vCenter's instance UUID: the same server reached under another name or
    /// address is still recognized.
    #[serde(default)]
    pub instance: String,
    pub vm: Moref,
    pub vm_name: String,
    pub snapshot_name: String,
    /// Known once the create task has finished.
    pub snapshot: Option<Moref>,
    pub pid: u32,
    /// The process's start time (clock ticks since boot) so a reused pid is not taken
    /// for the live owner.
    pub pid_start: Option<u64>,
    /// The machine and boot the process ran on: a pid means nothing on another host
    /// (a state_dir on shared storage), and nothing from before a reboot.
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub boot_id: String,
    pub mountpoint: String,
    pub created: String,
    /// Why the last removal failed, for `snapshots list`.
    pub remove_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn open(dir: &Path) -> Result<Journal> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| VsError::Journal {
                path: dir.display().to_string(),
                detail: format!("{e}; choose another folder with -o state_dir=DIR"),
            })?;
        Ok(Journal {
            dir: dir.to_path_buf(),
        })
    }

    fn err(&self, path: &Path, e: impl std::fmt::Display) -> VsError {
        VsError::Journal {
            path: path.display().to_string(),
            detail: e.to_string(),
        }
    }

    /// Writes (or rewrites) an entry durably: temp file, fsync, rename, fsync folder.
    pub fn write(&self, e: &Entry) -> Result<PathBuf> {
        let path = self.dir.join(file_name(e));
        let tmp = path.with_extension("tmp");
        let data = serde_json::to_vec_pretty(e).map_err(|x| self.err(&path, x))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|x| self.err(&tmp, x))?;
        f.write_all(&data).map_err(|x| self.err(&tmp, x))?;
        f.sync_all().map_err(|x| self.err(&tmp, x))?;
        std::fs::rename(&tmp, &path).map_err(|x| self.err(&path, x))?;
        self.sync_dir()?;
        Ok(path)
    }

    pub fn remove(&self, e: &Entry) -> Result<()> {
        let path = self.dir.join(file_name(e));
        match std::fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(x) if x.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(x) => Err(self.err(&path, x)),
        }
    }

    fn sync_dir(&self) -> Result<()> {
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|x| self.err(&self.dir, x))
    }

    /// Every entry for the server `server` (host:port) with instance UUID `instance`.
    pub fn entries(&self, server: &str, instance: &str) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.dir).map_err(|x| self.err(&self.dir, x))?;
        for d in rd.flatten() {
            let p = d.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let parsed = std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok());
            match parsed {
                Some(e)
                    if (!instance.is_empty() && e.instance == instance)
                        || ((e.instance.is_empty() || instance.is_empty())
                            && e.server == server) =>
                {
                    out.push(e)
                }
                Some(_) => {}
                None => tracing::warn!("{}: unreadable journal entry, left alone", p.display()),
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(out)
    }
}

fn file_name(e: &Entry) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!(
        "{}-{}-{}.json",
        safe(if e.instance.is_empty() {
            &e.server
        } else {
            &e.instance
        }),
        safe(&e.vm.value),
        safe(&e.snapshot_name)
    )
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This machine's host name.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// This boot's id: changes at every reboot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Whether the entry was written on another machine, where only that machine can tell
/// whether its process still runs.
pub fn foreign_host(e: &Entry) -> bool {
    !e.host.is_empty() && e.host != this_host()
}

/// Whether the process that wrote `e` is still running (always assumed for another
/// machine's entry). A zombie has finished (its parent, often a container's init, just
/// has not reaped it); a process from an earlier boot is gone.
pub fn owner_alive(e: &Entry) -> bool {
    if foreign_host(e) {
        return true;
    }
    if !e.boot_id.is_empty() && e.boot_id != boot_id() {
        return false;
    }
    let zombie = std::fs::read_to_string(format!("/proc/{}/stat", e.pid))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        })
        .unwrap_or(false);
    if zombie {
        return false;
    }
    match process_start(e.pid) {
        None => false,
        Some(start) => e.pid_start.is_none_or(|want| want == start),
    }
}

/// `YYYYMMDDTHHMMSSZ` (for snapshot names) and RFC 3339 of now, in UTC.
pub fn utc_now() -> (String, String) {
    let now = crate::time::Utc::now();
    (now.compact(), now.iso8601())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let e = Entry {
            server: "127.0.0.1:443".into(),
            instance: String::new(),
            vm: Moref::new("VirtualMachine", "vm-1"),
            vm_name: "db".into(),
            snapshot_name: "vmsnapfs-h-20260101T000000Z".into(),
            snapshot: None,
            pid: std::process::id(),
            pid_start: process_start(std::process::id()),
            host: this_host(),
            boot_id: boot_id(),
            mountpoint: "/mnt".into(),
            created: utc_now().1,
            remove_error: None,
        };
        j.write(&e).unwrap();
        assert_eq!(j.entries("127.0.0.1:443", "").unwrap().len(), 1);
        assert!(j.entries("other:443", "").unwrap().is_empty());
        assert!(owner_alive(&e));
        let dead = Entry {
            pid_start: e.pid_start.map(|s| s + 1),
            ..e.clone()
        };
        assert!(!owner_alive(&dead));
        let rebooted = Entry {
            boot_id: "another-boot".into(),
            ..e.clone()
        };
        assert!(!owner_alive(&rebooted));
        let elsewhere = Entry {
            host: "another-host".into(),
            ..dead.clone()
        };
        assert!(
            owner_alive(&elsewhere),
            "another machine's entry is not ours to judge"
        );
        j.remove(&e).unwrap();
        assert!(j.entries("127.0.0.1:443", "").unwrap().is_empty());
    }

    #[test]
    fn utc_format() {
        let (a, b) = utc_now();
        assert_eq!(a.len(), 16);
        assert!(b.ends_with('Z') && b.len() == 20);
    }
}
