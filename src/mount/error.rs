//! Why a mount did not come up (or ended), each with what it was about: the CLI prints
//! one line of it.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{what} {}: {source}", path.display())]
    Path {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}: {1}")]
    System(&'static str, #[source] io::Error),
    #[error("{0}")]
    Source(#[source] io::Error),
    #[error("listing VMs: {0}")]
    List(#[source] io::Error),
    #[error("{0}: no VMs found")]
    NoVms(String),
    #[error("mount {}: {source}", mountpoint.display())]
    Mount {
        mountpoint: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("FUSE session: {0}")]
    Session(#[source] io::Error),
    /// The background server's own error, passed back over the start-up pipe.
    #[error("{0}")]
    FromServer(String),
    #[error("the mount process exited before the mount was live")]
    ServerGone,
    #[error("{0}")]
    Options(#[from] crate::options::OptionError),
    #[error(transparent)]
    Umount(#[from] super::umount::UmountError),
}
