//! NTFS through `vmsnapfs_ntfs`, presented the way ntfs-3g presents it (metafiles hidden,
//! named streams as `user.*` xattrs, `system.ntfs_*` xattrs, links relative to the volume),
//! so backups of our view and of an ntfs-3g mount agree.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use vmsnapfs_io::{Places, ReadAt};
use vmsnapfs_ntfs::{attr, FileId, FileKind, Volume};

use super::api::{DirEntry, GuestFs, GuestOwner, Kind, Stat, VolumeInfo};
use super::names;
use crate::sync::Relock;

pub struct Ntfs {
    vol: Volume,
    /// Without free space, which is counted on first use (see `info`).
    info: VolumeInfo,
    free: std::sync::OnceLock<u64>,
    /// Child → parent as seen in listings and lookups: turns volume-rooted link targets
    /// into relative ones.
    parents: Mutex<HashMap<u64, u64>>,
}

fn err(e: vmsnapfs_ntfs::Error) -> io::Error {
    io::Error::from(e)
}

fn kind(k: FileKind, attributes: u32) -> Kind {
    match k {
        FileKind::Directory => Kind::Dir,
        FileKind::Symlink => Kind::Symlink,
        FileKind::File => Kind::File,
        FileKind::OtherReparse if attributes & attr::DIRECTORY != 0 => Kind::Dir,
        FileKind::OtherReparse => Kind::File,
        FileKind::Fifo => Kind::Fifo,
        FileKind::CharDevice => Kind::CharDevice,
        FileKind::BlockDevice => Kind::BlockDevice,
    }
}

impl Ntfs {
    pub fn open(reader: Arc<dyn ReadAt>) -> io::Result<Self> {
        let vol = Volume::open(reader).map_err(err)?;
        let i = vol.info();
        let total = i.total_clusters * u64::from(i.cluster_size);
        let info = VolumeInfo {
            fs: "ntfs".into(),
            label: Some(i.label.clone()).filter(|l| !l.is_empty()),
            dirty: i.dirty,
            hibernated: i.hibernated,
            total_bytes: total,
            free_bytes: 0,
            cluster_size: i.cluster_size,
            ..Default::default()
        };
        Ok(Self {
            vol,
            info,
            free: std::sync::OnceLock::new(),
            parents: Mutex::new(HashMap::new()),
        })
    }

    fn note_parent(&self, child: u64, dir: u64) {
        if child != dir {
            self.parents.lock().relock().insert(child, dir);
        }
    }

    /// WSL's owner and mode; EAs that cannot be read leave the mount's (stat must not
    /// fail over metadata that is only shown on request).
    fn owner(&self, id: u64) -> GuestOwner {
        let lx = self.vol.lx_metadata(FileId(id)).unwrap_or_default();
        GuestOwner {
            uid: lx.uid,
            gid: lx.gid,
            mode: lx.mode.map(|m| (m & 0o7777) as u16),
        }
    }

    fn depth(&self, mut id: u64) -> usize {
        let parents = self.parents.lock().relock();
        let mut depth = 0;
        while id != FileId::ROOT.0 && depth < 4096 {
            match parents.get(&id) {
                Some(&p) => {
                    id = p;
                    depth += 1;
                }
                None => break,
            }
        }
        depth
    }
}

/// Normalizes a relative target so its `..` never climb above the volume root (a link
/// `depth` folders down may climb at most `depth` levels).
fn clamp_relative(target: &str, depth: usize) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut climbs = 0;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if climbs < depth => {
                    climbs += 1;
                    out.push("..");
                }
                _ => {}
            },
            c => out.push(c),
        }
    }
    if out.is_empty() {
        ".".into()
    } else {
        out.join("/")
    }
}

fn hidden(dir: u64, name: &str, id: u64) -> bool {
    // ntfs-3g hides the metafiles ($MFT, $Bitmap, …) in the root by default.
    dir == FileId::ROOT.0 && id < 24 && name.starts_with('$')
}

impl GuestFs for Ntfs {
    fn info(&self) -> VolumeInfo {
        // Counting free clusters reads all of $Bitmap (64 MiB for 2 TiB): once, lazily.
        let free = *self.free.get_or_init(|| {
            let cs = u64::from(self.info.cluster_size);
            self.vol.free_clusters().map(|c| c * cs).unwrap_or(0)
        });
        VolumeInfo {
            free_bytes: free,
            ..self.info.clone()
        }
    }

    fn root(&self) -> u64 {
        FileId::ROOT.0
    }

    fn stat(&self, id: u64) -> io::Result<Stat> {
        let m = self.vol.stat(FileId(id)).map_err(err)?;
        let k = kind(m.kind, m.attributes);
        let size = match k {
            Kind::Symlink => self.read_link(id).map(|t| t.len() as u64).unwrap_or(0),
            _ => m.size,
        };
        Ok(Stat {
            kind: k,
            size,
            allocated: m.allocated_size,
            nlink: m.link_count.max(1),
            atime: m.accessed.to_system_time(),
            mtime: m.modified.to_system_time(),
            ctime: m.mft_modified.to_system_time(),
            crtime: m.created.to_system_time(),
            owner: self.owner(id),
            device: m.device,
        })
    }

    fn read_dir(&self, dir: u64) -> io::Result<Vec<DirEntry>> {
        let entries = self.vol.read_dir(FileId(dir)).map_err(err)?;
        let mut out = Vec::with_capacity(entries.len());
        let mut parents = self.parents.lock().relock();
        for e in entries {
            if hidden(dir, &e.name, e.id.0) {
                continue;
            }
            if e.id.0 != dir {
                parents.insert(e.id.0, dir);
            }
            out.push(DirEntry {
                name: names::escape(&e.name).into_owned(),
                id: e.id.0,
                kind: kind(e.kind_hint, 0),
            });
        }
        Ok(out)
    }

    fn lookup(&self, dir: u64, name: &str, case_insensitive: bool) -> io::Result<Option<DirEntry>> {
        let real = names::unescape(name);
        let found = self.vol.lookup(FileId(dir), &real).map_err(err)?;
        let found = match found {
            Some(id) => Some(id),
            // The volume's own $UpCase decides what matches, as on Windows, and the index
            // is descended rather than scanned.
            None if case_insensitive => self
                .vol
                .lookup_ignore_case(FileId(dir), &real)
                .map_err(err)?,
            None => None,
        };
        let Some(id) = found else { return Ok(None) };
        if hidden(dir, &real, id.0) {
            return Ok(None);
        }
        self.note_parent(id.0, dir);
        let m = self.vol.stat(id).map_err(err)?;
        Ok(Some(DirEntry {
            name: name.to_owned(),
            id: id.0,
            kind: kind(m.kind, m.attributes),
        }))
    }

    fn read(&self, id: u64, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.vol.read(FileId(id), None, offset, buf).map_err(err)
    }

    fn place(&self, id: u64, offset: u64, len: u64, out: &mut Places) -> Option<u64> {
        self.vol.place(FileId(id), None, offset, len, out)
    }

    fn read_link(&self, id: u64) -> io::Result<Vec<u8>> {
        let t = self.vol.read_link(FileId(id)).map_err(err)?;
        // Depth of the link's directory below the volume root.
        let depth = self.depth(id).saturating_sub(1);
        Ok(if t.relative {
            clamp_relative(&t.target, depth).into_bytes()
        } else {
            // Volume-rooted: climb from the link's directory to the volume root, so the
            // target resolves inside this volume wherever the mount is.
            let rel = clamp_relative(t.target.trim_start_matches('/'), 0);
            let out = format!("{}{rel}", "../".repeat(depth));
            out.trim_end_matches("/.").as_bytes().to_vec()
        })
    }

    fn data_ranges(&self, id: u64) -> io::Result<Option<Vec<Range<u64>>>> {
        self.vol
            .allocated_ranges(FileId(id), None)
            .map(Some)
            .map_err(err)
    }

    fn streams(&self, id: u64) -> io::Result<Vec<(String, u64)>> {
        Ok(self
            .vol
            .streams(FileId(id))
            .map_err(err)?
            .into_iter()
            .map(|s| (s.name, s.size))
            .collect())
    }

    fn read_stream(&self, id: u64, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.vol
            .read(FileId(id), Some(name), offset, buf)
            .map_err(err)
    }

    fn system_xattr(&self, id: u64, name: &str) -> io::Result<Option<Vec<u8>>> {
        let m = || self.vol.stat(FileId(id)).map_err(err);
        let times = |be: bool| -> io::Result<Vec<u8>> {
            let m = m()?;
            let t = [m.created.0, m.modified.0, m.accessed.0, m.mft_modified.0];
            Ok(t.iter()
                .flat_map(|v| if be { v.to_be_bytes() } else { v.to_le_bytes() })
                .collect())
        };
        // Windows reports FILE_ATTRIBUTE_DIRECTORY, which $STANDARD_INFORMATION omits.
        let attrib = || -> io::Result<u32> {
            let m = m()?;
            let dir = kind(m.kind, m.attributes) == Kind::Dir;
            Ok(m.attributes | if dir { attr::DIRECTORY } else { 0 })
        };
        Ok(Some(match name {
            "system.ntfs_attrib" => attrib()?.to_le_bytes().to_vec(),
            "system.ntfs_attrib_be" => attrib()?.to_be_bytes().to_vec(),
            "system.ntfs_times" => times(false)?,
            "system.ntfs_times_be" => times(true)?,
            "system.ntfs_crtime" => m()?.created.0.to_le_bytes().to_vec(),
            "system.ntfs_crtime_be" => m()?.created.0.to_be_bytes().to_vec(),
            "system.ntfs_ea" => match self.vol.ea_data(FileId(id)).map_err(err)? {
                Some(ea) => ea,
                None => return Ok(None),
            },
            "system.ntfs_acl" => match self.vol.security_descriptor(FileId(id)).map_err(err)? {
                Some(sd) => sd,
                None => return Ok(None),
            },
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn relative_targets_stay_inside_the_volume() {
        use super::clamp_relative as c;
        assert_eq!(c("../../Windows/x", 2), "../../Windows/x");
        assert_eq!(c("../../../../etc/passwd", 1), "../etc/passwd");
        assert_eq!(c("a/../../b", 0), "b");
        assert_eq!(c("./a//b/", 3), "a/b");
        assert_eq!(c("..", 0), ".");
    }
}
