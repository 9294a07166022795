//! Chain-file names to readable files: a datastore file over HTTP (read ahead), or one
//! under a local mount of its datastore.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use vmsnapfs_io::{FileSource, ReadAt};
use vmsnapfs_vmdk::Resolver;

use super::super::client::Client;
use super::file::HttpFile;
use super::host_route::HostRoute;
use super::remote::Remote;

/// `[datastore] folder/file.vmdk` split into its parts.
pub fn parse_ds_path(s: &str) -> Option<(String, String)> {
    let rest = s.trim().strip_prefix('[')?;
    let (ds, path) = rest.split_once(']')?;
    Some((ds.to_owned(), path.trim_start().to_owned()))
}

/// Removes `.` and `..` so the server sees a canonical path.
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.join("/")
}
/// Resolves chain-file names to datastore files. Names arrive as `[ds] path` (the head,
/// and parents joined to it by the VMDK reader), or as absolute ESXi hints
/// (`/vmfs/volumes/<ds>/…`), which are mapped by datastore name or, failing that, by the
/// file's name among the snapshot's known backing files.
pub struct DsResolver {
    pub client: Arc<Client>,
    /// Datastore name → datacenter name (the dcPath query parameter).
    pub dc_of: HashMap<String, String>,
    /// Datastore name → local folder where it is mounted (datastore_map).
    pub local: HashMap<String, PathBuf>,
    /// File name → `[ds] path`, from the snapshot's backing chain.
    pub known: HashMap<String, String>,
    /// The head's `[ds] folder`, for names that are neither.
    pub home: (String, String),
    /// Read from the VM's host directly (`-o direct_host` through a vCenter).
    pub route: Option<Arc<HostRoute>>,
}

impl DsResolver {
    fn locate(&self, name: &str) -> (String, String) {
        if let Some((ds, path)) = parse_ds_path(name) {
            // Parent hints joined by the reader keep the `[ds] ` prefix of the head.
            return (ds, normalize(&path));
        }
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        if let Some(rest) = name.strip_prefix("/vmfs/volumes/") {
            if let Some((ds, path)) = rest.split_once('/') {
                if self.dc_of.contains_key(ds) || self.local.contains_key(ds) {
                    return (ds.to_owned(), normalize(path));
                }
            }
        }
        if let Some((ds, path)) = self.known.get(base).and_then(|p| parse_ds_path(p)) {
            return (ds, normalize(&path));
        }
        let (ds, dir) = &self.home;
        (ds.clone(), normalize(&format!("{dir}/{base}")))
    }
}

impl Resolver for DsResolver {
    fn open(&self, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        let (ds, path) = self.locate(name);
        if let Some(root) = self.local.get(&ds) {
            return Ok(Arc::new(FileSource::open(&root.join(&path))?));
        }
        let dc = self.dc_of.get(&ds).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name}: datastore {ds} is not in any datacenter the server lists"),
            )
        })?;
        Ok(Arc::new(HttpFile::new(Remote::open(
            self.client.clone(),
            dc,
            &ds,
            &path,
            self.route.clone(),
        )?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datastore_paths() {
        assert_eq!(
            parse_ds_path("[LocalDS_0] vm/disk.vmdk"),
            Some(("LocalDS_0".into(), "vm/disk.vmdk".into()))
        );
        assert_eq!(parse_ds_path("disk.vmdk"), None);
        assert_eq!(normalize("a/./b/../c.vmdk"), "a/c.vmdk");
    }
}
