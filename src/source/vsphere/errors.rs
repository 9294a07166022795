//! One error type for the vSphere source. Each variant renders as one line a user can act
//! on (what failed, where, and what to do), because these end up in stderr at mount time
//! or in status.json for a VM directory.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum VsError {
    #[error("{server}: login refused (wrong user name or password); check the credentials file or GOVC_USERNAME/GOVC_PASSWORD")]
    InvalidLogin { server: String },
    #[error("{server}: unreachable: {detail}")]
    Unreachable { server: String, detail: String },
    #[error("{server}: TLS certificate not trusted ({detail}); if this is the right host, pin it with -o thumbprint={thumbprint}")]
    TlsUntrusted {
        server: String,
        detail: String,
        thumbprint: String,
    },
    #[error("{server}: certificate thumbprint is {got}, not the pinned {expected}; if the host's certificate was replaced on purpose, pin -o thumbprint={got}")]
    ThumbprintMismatch {
        server: String,
        expected: String,
        got: String,
    },
    #[error("{0}")]
    Config(String),
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("{what} not found on {server}")]
    NotFound { server: String, what: String },
    #[error("{method}: {kind}: {message}")]
    Fault {
        method: String,
        kind: String,
        message: String,
    },
    #[error("{what}: task failed: {kind}: {message}")]
    Task {
        what: String,
        kind: String,
        message: String,
    },
    #[error("{0}: snapshot limit reached for this VM; remove old snapshots first (vmsnapfs snapshots list)")]
    SnapshotLimit(String),
    #[error("{vm}: quiescing failed ({reason}); mount with -o quiesce=preferred to accept a crash-consistent snapshot")]
    QuiesceFailed { vm: String, reason: String },
    #[error("{0}: VMware Tools are not running, so the guest cannot be quiesced; start Tools or mount with -o quiesce=preferred")]
    ToolsNotRunning(String),
    #[error("{file}: datastore file is locked by another host or process (HTTP {status}); read it through the host that runs the VM or with -o datastore_map")]
    FileLocked { file: String, status: u16 },
    #[error("{url}: HTTP {status}{detail}")]
    Http {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{server}: unexpected answer to {what}: {detail}")]
    Protocol {
        server: String,
        what: String,
        detail: String,
    },
    #[error("journal {path}: {detail}")]
    Journal { path: String, detail: String },
}

impl VsError {
    /// The fault's type name when this is a SOAP or task fault.
    pub fn fault_kind(&self) -> Option<&str> {
        match self {
            VsError::Fault { kind, .. } | VsError::Task { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

impl From<VsError> for io::Error {
    fn from(e: VsError) -> io::Error {
        let kind = match &e {
            VsError::NotFound { .. } => io::ErrorKind::NotFound,
            VsError::InvalidLogin { .. } | VsError::Credentials(_) => {
                io::ErrorKind::PermissionDenied
            }
            VsError::Config(_) => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e.to_string())
    }
}

pub type Result<T, E = VsError> = std::result::Result<T, E>;
