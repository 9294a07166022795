use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmsnapfs_io::{FileSource, ReadAt};

/// Opens chain files (descriptors and extents) by the name a descriptor gives them, so the
/// same reader works on local files now and on remote byte ranges later.
pub trait Resolver: Send + Sync {
    /// Opens a chain file named as a descriptor names it (relative to the referencing
    /// descriptor's folder, or absolute like ESXi's /vmfs/volumes/... hints: fall back to the
    /// basename in the same folder).
    fn open(&self, name: &str) -> io::Result<Arc<dyn ReadAt>>;
}

/// Resolves names against one local folder.
#[derive(Debug, Clone)]
pub struct LocalResolver {
    dir: PathBuf,
}

impl LocalResolver {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

/// The last component of a name that may use either separator: Windows-made descriptors
/// carry hints like `C:\VMs\base.vmdk`.
pub(crate) fn basename(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

pub(crate) fn is_absolute(name: &str) -> bool {
    let b = name.as_bytes();
    name.starts_with('/')
        || name.starts_with('\\')
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && matches!(b[2], b'\\' | b'/'))
}

impl Resolver for LocalResolver {
    fn open(&self, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        let direct: PathBuf = if name.starts_with('/') {
            PathBuf::from(name)
        } else if is_absolute(name) {
            // A Windows path means nothing here: only its basename can be found.
            self.dir.join(basename(name))
        } else {
            self.dir.join(name.replace('\\', "/"))
        };
        match FileSource::open(&direct) {
            Ok(f) => Ok(Arc::new(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && is_absolute(name) => {
                // The datastore path of the host that wrote the hint is rarely where a
                // backup reads the files from: look next to the referencing descriptor.
                let fallback = self.dir.join(basename(name));
                Ok(Arc::new(FileSource::open(&fallback)?))
            }
            Err(e) => Err(e),
        }
    }
}

/// Joins a name found in a descriptor to the folder of that descriptor's own name, so a
/// resolver rooted at the head's folder also finds files of parents kept elsewhere.
pub(crate) fn join_name(referrer: &str, name: &str) -> String {
    if is_absolute(name) {
        return name.to_string();
    }
    let name = name.replace('\\', "/");
    match Path::new(referrer).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => format!("{}/{}", dir.display(), name),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_relative_to_referrer() {
        assert_eq!(join_name("a.vmdk", "b.vmdk"), "b.vmdk");
        assert_eq!(join_name("sub/a.vmdk", "b.vmdk"), "sub/b.vmdk");
        assert_eq!(join_name("sub/a.vmdk", "/vmfs/x/b.vmdk"), "/vmfs/x/b.vmdk");
        assert_eq!(join_name("a.vmdk", "..\\base\\b.vmdk"), "../base/b.vmdk");
        assert_eq!(basename("C:\\VMs\\b.vmdk"), "b.vmdk");
        assert!(is_absolute("C:\\VMs\\b.vmdk"));
    }
}
