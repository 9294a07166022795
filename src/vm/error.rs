//! What can go wrong serving a frozen VM, typed so the FUSE layer answers the errno it
//! means (corruption is EIO with the reason in status.json and the log; a name that is
//! not there is ENOENT; a node from an older freeze is ESTALE) without guessing from text.

use std::io;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The source could not make or open the frozen view.
    #[error("{vm}: freeze failed: {source}")]
    Freeze {
        vm: String,
        #[source]
        source: io::Error,
    },
    /// An admin's hook script failed; the freeze was not attempted (pre_backup).
    #[error("{vm}: {phase} hook failed: {source}")]
    Hook {
        vm: String,
        phase: &'static str,
        #[source]
        source: super::hooks::HookError,
    },
    /// A recent freeze failed; it is retried once the back-off has passed.
    #[error("{vm}: {why} (retried after a pause)")]
    Failed { vm: String, why: String },
    /// Reading a frozen disk image failed.
    #[error("disk{disk}: read at {offset}: {source}")]
    Disk {
        disk: usize,
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// A guest file system call failed; `source` keeps its kind (NotFound, InvalidData
    /// for damage on the volume, or the underlying I/O error's).
    #[error("{volume}: {op}: {source}")]
    Guest {
        volume: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// No disk of the VM can count changes from this id: a full backup is needed.
    #[error("change id {id:?}: {why}")]
    UnknownChangeId { id: String, why: String },
    /// A node that belonged to an earlier freeze or a volume that is gone.
    #[error("stale node")]
    Stale,
    #[error("no such entry")]
    NotFound,
}

impl Error {
    /// The errno a file-system caller should see.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Freeze { .. } | Error::Hook { .. } | Error::Failed { .. } => libc::EIO,
            Error::Disk { .. } => libc::EIO,
            Error::Guest { source, .. } => io_errno(source),
            Error::Stale => libc::ESTALE,
            Error::NotFound | Error::UnknownChangeId { .. } => libc::ENOENT,
        }
    }

    /// Damage or failure worth a line in status.json, as opposed to an ordinary answer
    /// such as "no such file" or "no such stream".
    pub fn is_noteworthy(&self) -> bool {
        match self {
            Error::Guest { source, .. } => {
                source.raw_os_error().is_none() && source.kind() != io::ErrorKind::NotFound
            }
            Error::Stale | Error::NotFound => false,
            _ => true,
        }
    }
}

/// An io::Error's errno: its own when it has one, else by kind; anything else (damage
/// on the volume, an unsupported feature) is EIO.
pub fn io_errno(e: &io::Error) -> i32 {
    if let Some(n) = e.raw_os_error() {
        return n;
    }
    match e.kind() {
        io::ErrorKind::NotFound => libc::ENOENT,
        io::ErrorKind::NotADirectory => libc::ENOTDIR,
        io::ErrorKind::IsADirectory => libc::EISDIR,
        io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        _ => libc::EIO,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_keep_their_meaning() {
        let guest = |source| Error::Guest {
            volume: "disk0p1".into(),
            op: "read",
            source,
        };
        let corrupt = guest(io::Error::new(io::ErrorKind::InvalidData, "bad record"));
        assert_eq!(corrupt.errno(), libc::EIO);
        assert!(corrupt.is_noteworthy());
        let missing = guest(io::Error::new(io::ErrorKind::NotFound, "no such stream"));
        assert_eq!(missing.errno(), libc::ENOENT);
        assert!(!missing.is_noteworthy());
        let os = guest(io::Error::from_raw_os_error(libc::ENODATA));
        assert_eq!(os.errno(), libc::ENODATA);
        assert!(!os.is_noteworthy());
        assert_eq!(Error::Stale.errno(), libc::ESTALE);
        let freeze = Error::Freeze {
            vm: "db".into(),
            source: io::Error::other("no such snapshot"),
        };
        assert_eq!(freeze.errno(), libc::EIO);
        assert_eq!(freeze.to_string(), "db: freeze failed: no such snapshot");
    }
}
