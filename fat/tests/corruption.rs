//! Damaged volumes: each kind of damage is an error for the files it touches, never a
//! panic or a hang, and the rest of the volume stays readable.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use vmsnapfs_fat::{probe, Error, FatType, FileId, Volume};

struct Img {
    _dir: tempfile::TempDir,
    path: PathBuf,
    files: Vec<(String, Vec<u8>)>,
}

/// A small volume with a few multi-cluster files, a long name and a subdirectory.
fn fat_image(bits: u32) -> Img {
    for t in ["mkfs.vfat", "mcopy", "mmd"] {
        require(t);
    }
    let dir = tempdir();
    let path = dir.path().join("v.img");
    let mib = if bits == 32 { 36 } else { 8 };
    fs::File::create(&path).unwrap().set_len(mib << 20).unwrap();
    run(tool("mkfs.vfat")
        .args(["-F", &bits.to_string(), "-s", "1"])
        .arg(&path));
    let stage = dir.path().join("stage");
    let mut rng = Rng::new(u64::from(bits));
    let files: Vec<(String, Vec<u8>)> = [
        "A.BIN",
        "B.BIN",
        "C.BIN",
        "Long File Name.txt",
        "SUB/INNER.BIN",
    ]
    .iter()
    .map(|n| (n.to_string(), rng.bytes(1500)))
    .collect();
    for (n, d) in &files {
        write(&stage.join(n), d);
    }
    let args: Vec<PathBuf> = ["A.BIN", "B.BIN", "C.BIN", "Long File Name.txt", "SUB"]
        .iter()
        .map(|n| stage.join(n))
        .collect();
    run(tool("mcopy")
        .arg("-s")
        .arg("-i")
        .arg(&path)
        .args(&args)
        .arg("::/"));
    Img {
        _dir: dir,
        path,
        files,
    }
}

fn id_of(vol: &Volume, path: &str) -> FileId {
    let mut cur = vol.root();
    for c in path.split('/') {
        cur = vol.lookup(cur, c).unwrap().unwrap();
    }
    cur
}

fn read_file(vol: &Volume, path: &str) -> vmsnapfs_fat::Result<Vec<u8>> {
    let id = id_of(vol, path);
    let size = vol.stat(id)?.size;
    let mut buf = vec![0u8; size as usize + 10];
    let n = vol.read(id, 0, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let mut data = fs::read(path).unwrap();
    data[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
    fs::write(path, data).unwrap();
}

/// FAT geometry read straight from the BPB, independently of the reader under test.
struct Geo {
    fat_offsets: Vec<u64>,
    data: u64,
    cs: u64,
    bits: u32,
}

fn geo(path: &Path, bits: u32) -> Geo {
    let b = fs::read(path).unwrap();
    let bps = u64::from(u16::from_le_bytes([b[11], b[12]]));
    let spc = u64::from(b[13]);
    let rsvd = u64::from(u16::from_le_bytes([b[14], b[15]]));
    let nfats = u64::from(b[16]);
    let root_entries = u64::from(u16::from_le_bytes([b[17], b[18]]));
    let fatsz = match u16::from_le_bytes([b[22], b[23]]) {
        0 => u64::from(u32::from_le_bytes([b[36], b[37], b[38], b[39]])),
        n => u64::from(n),
    };
    let fat_offsets = (0..nfats).map(|i| (rsvd + i * fatsz) * bps).collect();
    let data = (rsvd + nfats * fatsz) * bps + (root_entries * 32).div_ceil(bps) * bps;
    Geo {
        fat_offsets,
        data,
        cs: bps * spc,
        bits,
    }
}

impl Geo {
    fn cluster_of(&self, volume_offset: u64) -> u32 {
        ((volume_offset - self.data) / self.cs + 2) as u32
    }
    /// Writes FAT entry `n` in every FAT copy.
    fn set(&self, path: &Path, n: u32, value: u32) {
        for &f in &self.fat_offsets {
            match self.bits {
                16 => patch(path, f + 2 * u64::from(n), &(value as u16).to_le_bytes()),
                32 => patch(path, f + 4 * u64::from(n), &value.to_le_bytes()),
                _ => unreachable!(),
            }
        }
    }
}

fn others_readable(vol: &Volume, img: &Img, broken: &[&str]) {
    for (name, data) in &img.files {
        if !broken.contains(&name.as_str()) {
            assert_eq!(&read_file(vol, name).unwrap(), data, "{name}");
        }
    }
}

fn open_path(path: &Path) -> Volume {
    open(path)
}

#[test]
fn cyclic_chains_are_errors() {
    for bits in [16, 32] {
        let img = fat_image(bits);
        let g = geo(&img.path, bits);
        let vol = open_path(&img.path);
        // A.BIN: last cluster points back to the first.
        let a = vol.extents(id_of(&vol, "A.BIN")).unwrap();
        let first = g.cluster_of(a[0].0);
        let last = first + 2;
        assert_eq!(a.len(), 1, "1500 bytes in 512-byte clusters, contiguous");
        // B.BIN: second cluster points to itself.
        let b = vol.extents(id_of(&vol, "B.BIN")).unwrap();
        let b1 = g.cluster_of(b[0].0) + 1;
        // SUB: the directory's one cluster points to itself.
        let sub = vol.stat(id_of(&vol, "SUB")).unwrap().first_cluster;
        drop(vol);
        g.set(&img.path, last, first);
        g.set(&img.path, b1, b1);
        g.set(&img.path, sub, sub);
        let vol = open_path(&img.path);
        assert!(matches!(
            read_file(&vol, "A.BIN"),
            Err(Error::ChainLoop { .. })
        ));
        assert!(matches!(
            read_file(&vol, "B.BIN"),
            Err(Error::ChainLoop { .. })
        ));
        let sub_id = id_of(&vol, "SUB");
        let err = vol.read_dir(sub_id).unwrap_err();
        assert!(matches!(err, Error::ChainTooLong { .. }), "{err}");
        assert!(err.is_corruption());
        others_readable(&vol, &img, &["A.BIN", "B.BIN", "SUB/INNER.BIN"]);
    }
}

#[test]
fn chains_past_the_end_are_errors() {
    let img = fat_image(16);
    let g = geo(&img.path, 16);
    let vol = open_path(&img.path);
    let max = vol.info().total_clusters + 1;
    let a = g.cluster_of(vol.extents(id_of(&vol, "A.BIN")).unwrap()[0].0);
    let b = g.cluster_of(vol.extents(id_of(&vol, "B.BIN")).unwrap()[0].0);
    let c = g.cluster_of(vol.extents(id_of(&vol, "C.BIN")).unwrap()[0].0);
    let c_entry = id_of(&vol, "C.BIN").as_u64();
    drop(vol);
    // A.BIN links out of the volume; B.BIN ends one cluster early; C.BIN's entry
    // names a first cluster past the end.
    g.set(&img.path, a, max + 7);
    g.set(&img.path, b + 1, 0xFFFF);
    patch(&img.path, c_entry + 26, &(max as u16 + 1).to_le_bytes());
    let vol = open_path(&img.path);
    assert!(matches!(
        read_file(&vol, "A.BIN"),
        Err(Error::ClusterOutOfRange { .. })
    ));
    assert!(matches!(
        read_file(&vol, "B.BIN"),
        Err(Error::ChainBroken { .. })
    ));
    assert!(matches!(
        read_file(&vol, "C.BIN"),
        Err(Error::ClusterOutOfRange { .. })
    ));
    let _ = c;
    others_readable(&vol, &img, &["A.BIN", "B.BIN", "C.BIN"]);
}

#[test]
fn bad_lfn_checksum_falls_back_to_the_short_name() {
    let img = fat_image(16);
    let vol = open_path(&img.path);
    let id = id_of(&vol, "Long File Name.txt");
    let alias = vol
        .read_dir(vol.root())
        .unwrap()
        .into_iter()
        .find(|e| e.id == id)
        .unwrap()
        .short_name
        .unwrap();
    drop(vol);
    // The LFN slots directly precede the short entry; break the checksum of the
    // slot next to it, which orphans the whole sequence.
    let slot = id.as_u64() - 32;
    let data = fs::read(&img.path).unwrap();
    assert_eq!(data[slot as usize + 11], 0x0F, "an LFN slot");
    let sum = data[slot as usize + 13];
    patch(&img.path, slot + 13, &[sum ^ 0x55]);
    let vol = open_path(&img.path);
    let names: Vec<String> = vol
        .read_dir(vol.root())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(!names.contains(&"Long File Name.txt".to_string()));
    assert!(names.contains(&alias), "{names:?} lacks {alias}");
    assert_eq!(
        read_file(&vol, &alias).unwrap(),
        img.files[3].1,
        "still readable by its 8.3 name"
    );
    others_readable(&vol, &img, &["Long File Name.txt"]);
}

#[test]
fn orphaned_lfn_entries_are_ignored() {
    let img = fat_image(32);
    let vol = open_path(&img.path);
    let id = id_of(&vol, "Long File Name.txt");
    drop(vol);
    // Deleting only the short entry leaves its LFN slots orphaned.
    patch(&img.path, id.as_u64(), &[0xE5]);
    let vol = open_path(&img.path);
    let entries = vol.read_dir(vol.root()).unwrap();
    assert_eq!(entries.len(), 4, "{entries:?}");
    others_readable(&vol, &img, &["Long File Name.txt"]);
}

#[test]
fn backup_boot_sector_and_active_fat() {
    let img = fat_image(32);
    let g = geo(&img.path, 32);
    // Mirroring off, FAT #1 active; then wreck FAT #0's entries for the files.
    let mut bs = fs::read(&img.path).unwrap()[..512].to_vec();
    bs[40] = 0x81;
    patch(&img.path, 0, &bs);
    patch(&img.path, 6 * 512, &bs);
    let fat0 = g.fat_offsets[0];
    patch(&img.path, fat0 + 8, &[0xAB; 64]);
    let vol = open_path(&img.path);
    assert_eq!(vol.info().active_fat, 1);
    others_readable(&vol, &img, &[]);
    drop(vol);
    // Primary boot sector gone: the backup at sector 6 takes over.
    patch(&img.path, 0, &[0u8; 512]);
    let vol = open_path(&img.path);
    assert!(vol.info().used_backup_boot_sector);
    assert_eq!(vol.fat_type(), FatType::Fat32);
    others_readable(&vol, &img, &[]);
}

#[test]
fn exfat_bad_set_checksum_and_boot_region() {
    require("mkfs.exfat");
    let dir = tempdir();
    let path = dir.path().join("x.img");
    fs::File::create(&path).unwrap().set_len(8 << 20).unwrap();
    run(tool("mkfs.exfat").arg(&path));
    let mut rng = Rng::new(99);
    let mut files = Vec::new();
    {
        let mut m = Mounted::new(&path, &dir.path().join("mnt"));
        for i in 0..6 {
            let data = rng.bytes(10_000 + i);
            fs::write(m.mnt.join(format!("file number {i}.bin")), &data).unwrap();
            files.push((format!("file number {i}.bin"), data));
        }
        m.unmount();
    }
    let vol = open(&path);
    let victim = id_of(&vol, "file number 3.bin");
    drop(vol);
    // Flip one character of the name: the stored SetChecksum no longer matches.
    patch(&path, victim.as_u64() + 64 + 2, b"X");
    let vol = open(&path);
    let entries = vol.read_dir(vol.root()).unwrap();
    assert_eq!(entries.len(), 6);
    let damaged = entries.iter().find(|e| e.id == victim).unwrap();
    assert!(damaged.metadata.is_none());
    assert!(matches!(vol.stat(victim), Err(Error::SetChecksum { .. })));
    assert!(matches!(
        vol.read(victim, 0, &mut [0u8; 16]),
        Err(Error::SetChecksum { .. })
    ));
    for (name, data) in files.iter().filter(|(n, _)| n != "file number 3.bin") {
        assert_eq!(&read_file(&vol, name).unwrap(), data);
    }
    drop(vol);

    // Main boot region checksum broken: the backup region is used.
    let mut sector = fs::read(&path).unwrap()[..512].to_vec();
    sector[100] ^= 0xFF; // VolumeSerialNumber is covered by the checksum
    patch(&path, 0, &sector);
    let vol = open(&path);
    assert!(vol.info().used_backup_boot_sector);
    assert_eq!(read_file(&vol, "file number 0.bin").unwrap(), files[0].1);
    drop(vol);
    // Both broken: the open fails with the checksum error, not a panic.
    patch(&path, 12 * 512 + 100, &[sector[100]]);
    let err = Volume::open(Arc::new(vmsnapfs_io::FileSource::open(&path).unwrap())).unwrap_err();
    assert!(matches!(err, Error::BootChecksum { .. }), "{err}");
}

#[test]
fn probe_detects_each_variant_and_not_ntfs() {
    for bits in [16, 32] {
        let img = fat_image(bits);
        let bs = fs::read(&img.path).unwrap()[..512].to_vec();
        let want = if bits == 16 {
            FatType::Fat16
        } else {
            FatType::Fat32
        };
        assert_eq!(probe(&bs), Some(want));
    }
    let dir = tempdir();
    let f12 = dir.path().join("f12.img");
    fs::File::create(&f12)
        .unwrap()
        .set_len(1440 * 1024)
        .unwrap();
    run(tool("mkfs.vfat").args(["-F", "12"]).arg(&f12));
    assert_eq!(probe(&fs::read(&f12).unwrap()[..512]), Some(FatType::Fat12));
    let ex = dir.path().join("ex.img");
    fs::File::create(&ex).unwrap().set_len(4 << 20).unwrap();
    run(tool("mkfs.exfat").arg(&ex));
    assert_eq!(probe(&fs::read(&ex).unwrap()[..512]), Some(FatType::ExFat));

    require("mkntfs");
    let nt = dir.path().join("nt.img");
    fs::File::create(&nt).unwrap().set_len(8 << 20).unwrap();
    run(tool("mkntfs").args(["-F", "-f", "-q"]).arg(&nt));
    let ntbs = fs::read(&nt).unwrap()[..512].to_vec();
    assert_eq!(probe(&ntbs), None);
    assert!(Volume::open(Arc::new(ntbs)).is_err());
    assert_eq!(probe(&[0u8; 512]), None);
    assert_eq!(probe(&[0u8; 10]), None);
}

#[test]
fn volume_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Volume>();
    let img = fat_image(16);
    let vol = Arc::new(open(&img.path));
    let files = Arc::new(img.files.clone());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let vol = vol.clone();
            let files = files.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let (name, data) = &files[(i + t) % files.len()];
                    assert_eq!(&read_file(&vol, name).unwrap(), data);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
