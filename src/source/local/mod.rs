//! The local source: VM folders on a local or network file system (an NFS-mounted
//! datastore, a copied VM). Files at rest are already frozen, so freeze only opens the
//! chains and thaw closes them; nothing is ever opened for writing.

use std::io;
use std::path::{Path, PathBuf};

use crate::vmx::Vmx;

use super::api::{Frozen, FrozenDisk, SnapshotInfo, Source, SourceKeys, UnservedDisk, VmEntry};
use super::disk;

mod discover;

pub use discover::{discover, Discovery, DiscoveryKind, LocalDisk, LocalError, LocalVm};

pub struct LocalSource {
    root: PathBuf,
    kind: DiscoveryKind,
    vms: Vec<LocalVm>,
}

impl LocalSource {
    /// The local source reads no `-o` keys: one given is a mistake worth stopping for
    /// (a vSphere option on a folder means the wrong SOURCE).
    pub fn open(path: &Path, keys: &SourceKeys) -> io::Result<Self> {
        if let Some((k, _)) = keys.first() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("option {k} only applies to vCenter/ESXi sources"),
            ));
        }
        let found = discover(path).map_err(io::Error::from)?;
        Ok(Self {
            root: std::fs::canonicalize(path)?,
            kind: found.kind,
            vms: found.vms,
        })
    }

    fn vm(&self, entry: &VmEntry) -> io::Result<&LocalVm> {
        entry
            .id
            .parse::<usize>()
            .ok()
            .and_then(|i| self.vms.get(i))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such VM"))
    }
}

impl Source for LocalSource {
    fn describe(&self) -> String {
        format!("local:{}", self.root.display())
    }

    fn single_vm(&self) -> bool {
        self.kind != DiscoveryKind::Folder
    }

    fn list(&self) -> io::Result<Vec<VmEntry>> {
        Ok(self
            .vms
            .iter()
            .enumerate()
            .map(|(i, vm)| VmEntry {
                name: vm.name.clone(),
                id: i.to_string(),
                location: vm.dir.display().to_string(),
            })
            .collect())
    }

    fn freeze(&self, entry: &VmEntry) -> io::Result<Frozen> {
        let vm = self.vm(entry)?;
        // The .vmx as it is now decides the disks: it may have changed since the mount.
        let (config, heads) = match &vm.vmx {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let heads = discover::vmx_disks(&Vmx::parse(&text));
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| format!("{}.vmx", vm.name));
                (Some((name, text)), heads)
            }
            None => (None, vm.disks.clone()),
        };
        let mut disks = Vec::new();
        let mut unserved = Vec::new();
        for (index, head) in heads.into_iter().enumerate() {
            let path = vm.dir.join(&head.file);
            match disk::open(&path) {
                Ok(c) => disks.push(FrozenDisk {
                    index,
                    key: head.key,
                    file: head.file,
                    chain: c.chain,
                    image: c.image,
                    notes: head.note.into_iter().collect(),
                    change_id: c.change_id,
                    cbt: c.cbt,
                    changes: Some(c.changes),
                }),
                Err(e) => unserved.push(UnservedDisk {
                    index,
                    key: head.key,
                    file: head.file,
                    why: format!("{}: {e}", path.display()),
                }),
            }
        }
        Ok(Frozen {
            config,
            disks,
            unserved,
            snapshot: SnapshotInfo::default(),
            quiesced: false,
            consistency: "files at rest: consistent only if the VM is powered off or \
                          the files are a snapshot's frozen chain"
                .into(),
            fallbacks: Vec::new(),
            token: String::new(),
        })
    }

    fn thaw(&self, _entry: &VmEntry, _frozen: &Frozen) -> io::Result<()> {
        Ok(())
    }
}
