//! FAT12/16/32 and exFAT through `vmsnapfs_fat`.

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vmsnapfs_fat::{FatType, FileId, FileKind, Timestamp, Volume};
use vmsnapfs_io::{Places, ReadAt};

use super::api::{DirEntry, GuestFs, Kind, Stat, VolumeInfo};
use super::names;

pub struct Fat {
    vol: Volume,
    info: VolumeInfo,
}

fn err(e: vmsnapfs_fat::Error) -> io::Error {
    io::Error::from(e)
}

fn time(t: Option<Timestamp>) -> SystemTime {
    match t {
        Some(t) if t.secs >= 0 => UNIX_EPOCH + Duration::new(t.secs as u64, t.nanos),
        Some(t) => UNIX_EPOCH - Duration::from_secs(t.secs.unsigned_abs()),
        None => UNIX_EPOCH,
    }
}

fn kind(k: FileKind) -> Kind {
    match k {
        FileKind::Directory => Kind::Dir,
        FileKind::File => Kind::File,
    }
}

impl Fat {
    pub fn open(reader: Arc<dyn ReadAt>) -> io::Result<Self> {
        let vol = Volume::open(reader).map_err(err)?;
        let i = vol.info();
        let cs = u64::from(i.cluster_size);
        let info = VolumeInfo {
            fs: match i.fat_type {
                FatType::Fat12 => "fat12",
                FatType::Fat16 => "fat16",
                FatType::Fat32 => "fat32",
                FatType::ExFat => "exfat",
            }
            .into(),
            label: i.label.clone(),
            dirty: i.dirty.unwrap_or(false),
            hibernated: false,
            total_bytes: u64::from(i.total_clusters) * cs,
            free_bytes: u64::from(i.free_clusters.unwrap_or(0)) * cs,
            cluster_size: i.cluster_size,
            ..Default::default()
        };
        Ok(Self { vol, info })
    }
}

impl GuestFs for Fat {
    fn info(&self) -> VolumeInfo {
        self.info.clone()
    }

    fn root(&self) -> u64 {
        FileId::ROOT.as_u64()
    }

    fn stat(&self, id: u64) -> io::Result<Stat> {
        let m = self.vol.stat(FileId::from_u64(id)).map_err(err)?;
        let modified = time(m.modified);
        Ok(Stat {
            kind: kind(m.kind),
            size: m.size,
            allocated: m
                .size
                .next_multiple_of(u64::from(self.info.cluster_size.max(1))),
            nlink: 1,
            atime: m.accessed.map(|_| time(m.accessed)).unwrap_or(modified),
            mtime: modified,
            ctime: modified,
            crtime: m.created.map(|_| time(m.created)).unwrap_or(modified),
            owner: Default::default(),
            device: None,
        })
    }

    fn read_dir(&self, dir: u64) -> io::Result<Vec<DirEntry>> {
        // The shared listing is the volume's cached one: no copy of a 65 536-entry
        // directory per readdir.
        Ok(self
            .vol
            .read_dir_shared(FileId::from_u64(dir))
            .map_err(err)?
            .iter()
            .filter(|e| e.name != "." && e.name != "..")
            .map(|e| DirEntry {
                name: names::escape(&e.name).into_owned(),
                id: e.id.as_u64(),
                kind: kind(e.kind),
            })
            .collect())
    }

    fn lookup(&self, dir: u64, name: &str, _ci: bool) -> io::Result<Option<DirEntry>> {
        // FAT and exFAT name lookup is case-insensitive by definition (as vfat's is).
        if name == "." || name == ".." {
            return Ok(None);
        }
        let Some(id) = self
            .vol
            .lookup(FileId::from_u64(dir), &names::unescape(name))
            .map_err(err)?
        else {
            return Ok(None);
        };
        let m = self.vol.stat(id).map_err(err)?;
        Ok(Some(DirEntry {
            name: name.to_owned(),
            id: id.as_u64(),
            kind: kind(m.kind),
        }))
    }

    fn read(&self, id: u64, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.vol
            .read(FileId::from_u64(id), offset, buf)
            .map_err(err)
    }

    fn place(&self, id: u64, offset: u64, len: u64, out: &mut Places) -> Option<u64> {
        self.vol.place(FileId::from_u64(id), offset, len, out)
    }
}
