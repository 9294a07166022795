//! Finding VMs in a local path: a folder of VM folders (a datastore mounted over NFS), one
//! VM folder, or a single `.vmdk`.

use std::collections::HashSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use vmsnapfs_vmdk::sparse_extent_header::{self, SparseExtentHeader};
use vmsnapfs_vmdk::Descriptor;

use crate::vmx::{Vmx, VmxDisk};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryKind {
    /// A folder whose subfolders are VMs.
    Folder,
    /// One VM's folder.
    SingleVm,
    /// One disk file, shown as a VM named after the file.
    SingleDisk,
}

#[derive(Debug, Clone)]
pub struct LocalVm {
    pub name: String,
    pub dir: PathBuf,
    pub vmx: Option<PathBuf>,
    /// Chain heads as the .vmx (or the folder) names them, in disk-index order.
    pub disks: Vec<LocalDisk>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDisk {
    /// The controller slot ("scsi0:0"); None for disks found without a .vmx.
    pub key: Option<String>,
    /// Relative to the VM's folder or absolute.
    pub file: String,
    pub note: Option<String>,
}

impl LocalDisk {
    fn bare(file: String) -> LocalDisk {
        LocalDisk {
            key: None,
            file,
            note: None,
        }
    }
}

/// The disks a .vmx attaches, in VMware's order.
pub fn vmx_disks(vmx: &Vmx) -> Vec<LocalDisk> {
    vmx.disks()
        .into_iter()
        .map(
            |VmxDisk {
                 key,
                 file_name,
                 note,
             }| LocalDisk {
                key: Some(key),
                file: file_name,
                note,
            },
        )
        .collect()
}

#[derive(Debug)]
pub struct Discovery {
    pub kind: DiscoveryKind,
    pub vms: Vec<LocalVm>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: no .vmx or .vmdk files here or in its subfolders")]
    NothingFound(PathBuf),
    #[error("{0}: not a .vmdk file or a folder")]
    NotADiskOrFolder(PathBuf),
}

/// The kind survives for callers that speak `std::io` (the mount's one-line error).
impl From<LocalError> for std::io::Error {
    fn from(e: LocalError) -> std::io::Error {
        let kind = match &e {
            LocalError::Io { source, .. } => source.kind(),
            LocalError::NothingFound(_) => std::io::ErrorKind::NotFound,
            LocalError::NotADiskOrFolder(_) => std::io::ErrorKind::InvalidInput,
        };
        std::io::Error::new(kind, e)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LocalError + '_ {
    move |source| LocalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn discover(path: &Path) -> Result<Discovery, LocalError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if meta.is_file() {
        if !has_ext(path, "vmdk") {
            return Err(LocalError::NotADiskOrFolder(path.to_path_buf()));
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file = file_name(path);
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.clone());
        return Ok(Discovery {
            kind: DiscoveryKind::SingleDisk,
            vms: vec![LocalVm {
                name,
                dir: dir.to_path_buf(),
                vmx: None,
                disks: vec![LocalDisk::bare(file)],
            }],
        });
    }
    if let Some(vm) = vm_in(path)? {
        return Ok(Discovery {
            kind: DiscoveryKind::SingleVm,
            vms: vec![vm],
        });
    }
    let mut vms = Vec::new();
    for sub in sorted_entries(path)? {
        if sub.is_dir() {
            if let Some(vm) = vm_in(&sub)? {
                vms.push(vm);
            }
        }
    }
    if vms.is_empty() {
        return Err(LocalError::NothingFound(path.to_path_buf()));
    }
    Ok(Discovery {
        kind: DiscoveryKind::Folder,
        vms,
    })
}

/// The VM in `dir`, if it holds a .vmx or any .vmdk.
fn vm_in(dir: &Path) -> Result<Option<LocalVm>, LocalError> {
    let entries = sorted_entries(dir)?;
    let name = file_name(dir);
    let vmxs: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.is_file() && has_ext(p, "vmx"))
        .collect();
    if let Some(vmx_path) = vmxs.first() {
        if vmxs.len() > 1 {
            tracing::warn!(
                folder = %dir.display(),
                "several .vmx files; using {}",
                vmx_path.display()
            );
        }
        let text = std::fs::read(vmx_path).map_err(io_err(vmx_path))?;
        let vmx = Vmx::parse(&String::from_utf8_lossy(&text));
        return Ok(Some(LocalVm {
            name,
            dir: dir.to_path_buf(),
            vmx: Some((*vmx_path).clone()),
            disks: vmx_disks(&vmx),
        }));
    }
    let vmdks: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.is_file() && has_ext(p, "vmdk"))
        .collect();
    if vmdks.is_empty() {
        return Ok(None);
    }
    Ok(Some(LocalVm {
        name,
        dir: dir.to_path_buf(),
        vmx: None,
        disks: chain_heads(&vmdks)
            .into_iter()
            .map(LocalDisk::bare)
            .collect(),
    }))
}

/// The .vmdk files that no other file in the folder names as an extent or a parent:
/// the tops of the folder's disk chains.
fn chain_heads(vmdks: &[&PathBuf]) -> Vec<String> {
    let mut referenced = HashSet::new();
    for path in vmdks {
        let Some(desc) = descriptor(path) else {
            continue;
        };
        // A monolithic sparse file's embedded descriptor names the file itself as its
        // extent; only references to other files demote a file from being a head.
        let own = file_name(path);
        let named = desc
            .extents
            .iter()
            .filter_map(|e| e.file.as_deref())
            .chain(desc.parent_file_name_hint.as_deref())
            .map(base_name)
            .filter(|name| *name != own);
        referenced.extend(named);
    }
    vmdks
        .iter()
        .map(|p| file_name(p))
        .filter(|name| !referenced.contains(name))
        .collect()
}

/// The descriptor of a .vmdk, parsed by the vmdk crate: the whole file when it is a small
/// text descriptor, or the embedded descriptor of a hosted sparse extent. Anything else
/// (a flat or split extent, an unreadable file) has none.
fn descriptor(path: &Path) -> Option<Descriptor> {
    const MAX_DESCRIPTOR: u64 = 1 << 20;
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut head = [0u8; sparse_extent_header::SIZE];
    let n = file.read_at(&mut head, 0).ok()?;
    let text = if n == head.len() && head.starts_with(b"KDMV") {
        let header = SparseExtentHeader::parse(&head).ok()?;
        let size = header.descriptor_size.checked_mul(512)?;
        if header.descriptor_offset == 0 || size == 0 || size > MAX_DESCRIPTOR {
            return None;
        }
        let mut buf = vec![0u8; size as usize];
        file.read_exact_at(&mut buf, header.descriptor_offset.checked_mul(512)?)
            .ok()?;
        buf
    } else {
        if len > MAX_DESCRIPTOR || head[..n].contains(&0) {
            return None;
        }
        std::fs::read(path).ok()?
    };
    Descriptor::parse(&String::from_utf8_lossy(&text))
        .ok()
        .filter(Descriptor::is_plausible)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, LocalError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        out.push(entry.map_err(io_err(dir))?.path());
    }
    out.sort();
    Ok(out)
}

fn has_ext(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// ESXi writes parent hints as absolute `/vmfs/volumes/...` paths; within one folder only
/// the last component matters.
fn base_name(name: &str) -> String {
    name.rsplit(['/', '\\']).next().unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn heads_exclude_extents_and_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            d,
            "base.vmdk",
            "# Disk DescriptorFile\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 4096 VMFS \"base-flat.vmdk\"\n",
        );
        write(d, "base-flat.vmdk", "\0\0\0\0");
        write(
            d,
            "base-000001.vmdk",
            "# Disk DescriptorFile\nCID=2\nparentCID=1\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"/vmfs/volumes/ds1/vm/base.vmdk\"\nRW 4096 VMFSSPARSE \"base-000001-delta.vmdk\"\n",
        );
        write(
            d,
            "data.vmdk",
            "# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\r\nRW 8 FLAT \"data-flat.vmdk\" 0\r\n",
        );
        write(d, "data-flat.vmdk", "\0\0\0\0");
        // An embedded descriptor names its own file as the extent: still a head.
        write(
            d,
            "self.vmdk",
            "# Disk DescriptorFile\ncreateType=\"monolithicSparse\"\nRW 8 SPARSE \"self.vmdk\"\n",
        );
        let found = discover(d).unwrap();
        assert_eq!(found.kind, DiscoveryKind::SingleVm);
        let files: Vec<_> = found.vms[0].disks.iter().map(|d| d.file.as_str()).collect();
        assert_eq!(files, ["base-000001.vmdk", "data.vmdk", "self.vmdk"]);
    }

    #[test]
    fn folder_of_vms_single_disk_and_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for vm in ["b-vm", "a-vm"] {
            std::fs::create_dir(root.join(vm)).unwrap();
            write(
                &root.join(vm),
                &format!("{vm}.vmx"),
                "scsi0.present = \"TRUE\"\nscsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"d.vmdk\"\n",
            );
        }
        std::fs::create_dir(root.join("empty")).unwrap();
        let found = discover(root).unwrap();
        assert_eq!(found.kind, DiscoveryKind::Folder);
        let names: Vec<_> = found.vms.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["a-vm", "b-vm"]);
        assert_eq!(found.vms[0].disks[0].file, "d.vmdk");
        assert_eq!(found.vms[0].disks[0].key.as_deref(), Some("scsi0:0"));

        let single = discover(&root.join("a-vm")).unwrap();
        assert_eq!(single.kind, DiscoveryKind::SingleVm);

        write(root, "x.vmdk", "");
        let disk = discover(&root.join("x.vmdk")).unwrap();
        assert_eq!(disk.kind, DiscoveryKind::SingleDisk);
        assert_eq!(disk.vms[0].name, "x");

        assert!(matches!(
            discover(&root.join("empty")),
            Err(LocalError::NothingFound(_))
        ));
        assert!(discover(&root.join("missing")).is_err());
        write(root, "notes.txt", "");
        assert!(matches!(
            discover(&root.join("notes.txt")),
            Err(LocalError::NotADiskOrFolder(_))
        ));
    }
}
