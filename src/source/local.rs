//! The local source: VM folders on a local or network file system (an NFS-mounted
//! datastore, a copied VM). Files at rest are already frozen, so freeze only opens the
//! chains and thaw closes them; nothing is ever opened for writing.

use std::io;
use std::path::{Path, PathBuf};

use crate::local::{self, DiscoveryKind, LocalVm};
use crate::mount::options::MountOptions;
use crate::vmx::Vmx;

use super::{disk, Frozen, FrozenDisk, SnapshotInfo, Source, VmEntry};

pub struct LocalSource {
    root: PathBuf,
    kind: DiscoveryKind,
    vms: Vec<LocalVm>,
}

impl LocalSource {
    pub fn open(path: &Path, opts: &MountOptions) -> io::Result<Self> {
        if let Some((k, _)) = opts.source_opts.first() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("option {k} only applies to vCenter/ESXi sources"),
            ));
        }
        let found = local::discover(path).map_err(|e| io::Error::other(e.to_string()))?;
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
            })
            .collect())
    }

    fn freeze(&self, entry: &VmEntry) -> io::Result<Frozen> {
        let vm = self.vm(entry)?;
        let (config, keys) = match &vm.vmx {
            Some(path) => {
                let text = String::from_utf8_lossy(&std::fs::read(path)?).into_owned();
                let keys: Vec<String> = Vmx::parse(&text)
                    .disks()
                    .into_iter()
                    .map(|d| d.key)
                    .collect();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| format!("{}.vmx", vm.name));
                (Some((name, text)), keys)
            }
            None => (None, Vec::new()),
        };
        let mut disks = Vec::new();
        for (i, head) in vm.disks.iter().enumerate() {
            let path = vm.dir.join(head);
            let (image, chain) = disk::open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            disks.push(FrozenDisk {
                key: keys.get(i).cloned(),
                chain,
                image,
            });
        }
        Ok(Frozen {
            config,
            disks,
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
