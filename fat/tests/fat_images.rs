//! FAT12/16/32 images built by mkfs.vfat and populated by mtools: our reader must see
//! exactly the staging tree, and exactly what Sleuth Kit sees.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use vmsnapfs_fat::{Attributes, FatType, FileKind};

const CLUSTER_MARGIN: u64 = 4;

fn free_bytes(img: &Path) -> u64 {
    let out = run(tool("mdir").arg("-i").arg(img).arg("::/"));
    let line = out
        .lines()
        .find(|l| l.contains("bytes free"))
        .expect("mdir prints free bytes");
    line.replace("bytes free", "")
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
}

/// Builds an image and returns the staging tree it should contain.
/// How mkfs.vfat lays out one test volume.
#[derive(Clone, Copy)]
struct Layout {
    bits: u32,
    mib: u64,
    sector: u32,
    spc: u32,
}

fn build(
    dir: &Path,
    name: &str,
    layout: &Layout,
    shape: &Shape,
    seed: u64,
) -> (std::path::PathBuf, Tree, u64) {
    let Layout {
        bits,
        mib,
        sector,
        spc,
    } = *layout;
    for t in ["mkfs.vfat", "mcopy", "mdel", "mmd", "mdir", "mattrib"] {
        require(t);
    }
    let img = dir.join(format!("{name}.img"));
    let stage = dir.join(format!("{name}.stage"));
    fs::File::create(&img)
        .unwrap()
        .set_len(mib * 1024 * 1024)
        .unwrap();
    run(tool("mkfs.vfat")
        .arg("-F")
        .arg(bits.to_string())
        .arg("-S")
        .arg(sector.to_string())
        .arg("-s")
        .arg(spc.to_string())
        .args(["-n", "TESTVOL", "-i", "12345678"])
        .arg(&img));
    build_stage(&stage, shape, seed);
    let cluster = u64::from(sector * spc);
    // Fragmentation: small files, every other one deleted, then one file large enough
    // that it can only fit by filling the holes.
    let mut rng = Rng::new(seed ^ 0xf4a6);
    let frag = stage.join("frag");
    for i in 0..40 {
        write(
            &frag.join(format!("small{i:02}.bin")),
            &rng.bytes((2 * cluster - 3) as usize),
        );
    }
    let mut args: Vec<_> = fs::read_dir(&stage)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    args.sort();
    run(tool("mcopy")
        .arg("-s")
        .arg("-i")
        .arg(&img)
        .args(&args)
        .arg("::/"));
    run(tool("mattrib")
        .arg("-i")
        .arg(&img)
        .args(["+r", "+h", "::/hello.txt"]));
    run(tool("mattrib")
        .arg("-i")
        .arg(&img)
        .args(["+s", "-a", "::/UPPER.TXT"]));
    for i in (1..40).step_by(2) {
        let name = format!("small{i:02}.bin");
        run(tool("mdel")
            .arg("-i")
            .arg(&img)
            .arg(format!("::/frag/{name}")));
        fs::remove_file(frag.join(name)).unwrap();
    }
    // More than the 20 two-cluster holes hold, so that it spans holes and the tail.
    let big = (40 + 8) * cluster + 123;
    assert!(free_bytes(&img) > big + CLUSTER_MARGIN * cluster);
    if bits == 32 {
        // mtools allocates from the FSInfo next-free hint, past the holes; the spec
        // lets a hint be "unknown" (0xFFFFFFFF), which sends it to the start.
        let mut b = fs::read(&img).unwrap();
        let fsinfo = usize::from(u16::from_le_bytes([b[48], b[49]])) * sector as usize;
        b[fsinfo + 492..fsinfo + 496].copy_from_slice(&u32::MAX.to_le_bytes());
        fs::write(&img, b).unwrap();
    }
    let big_path = dir.join(format!("{name}.big"));
    fs::write(&big_path, rng.bytes(big as usize)).unwrap();
    run(tool("mcopy")
        .arg("-i")
        .arg(&img)
        .arg(&big_path)
        .arg("::/frag/big.bin"));
    fs::rename(&big_path, frag.join("big.bin")).unwrap();
    let free = free_bytes(&img);
    (img, walk_fs(&stage), free)
}

fn check(name: &str, bits: u32, mib: u64, spc: u32, shape: Shape, expect: FatType) {
    check_sectors(name, bits, mib, 512, spc, shape, expect)
}

fn check_sectors(
    name: &str,
    bits: u32,
    mib: u64,
    sector: u32,
    spc: u32,
    shape: Shape,
    expect: FatType,
) {
    let dir = tempdir();
    let (img, staged, free) = build(
        dir.path(),
        name,
        &Layout {
            bits,
            mib,
            sector,
            spc,
        },
        &shape,
        u64::from(bits * 1000 + spc),
    );
    let vol = open(&img);
    assert_eq!(vol.fat_type(), expect);
    let info = vol.info();
    assert_eq!(info.label.as_deref(), Some("TESTVOL"));
    assert_eq!(info.serial, Some(0x1234_5678));
    assert_eq!(info.cluster_size, sector * spc);
    assert_eq!(info.bytes_per_sector, sector);
    // Counted from the FAT (FAT12/16) or taken from FSInfo (FAT32): as mtools says.
    assert_eq!(
        u64::from(info.free_clusters.unwrap()) * u64::from(info.cluster_size),
        free
    );
    assert_eq!(info.dirty, if bits == 12 { None } else { Some(false) });
    let (ours, ids) = walk_volume(&vol);
    diff("staging", &staged, "vmsnapfs", &ours);
    check_placed(&vol, &ids, &staged);
    let tsk = tsk_tree(&img, dir.path());
    diff("sleuthkit", &tsk, "vmsnapfs", &as_tsk_sees_fat(&ours));
    check_lookups(&vol, &ids);
    check_ids_fresh(&img, &vol, &ids);
    let tsk_ids = ids
        .iter()
        .map(|(p, id)| {
            (
                p.split('/')
                    .map(|c| c.chars().take(208).collect::<String>())
                    .collect::<Vec<_>>()
                    .join("/"),
                *id,
            )
        })
        .collect();
    compare_times(&tsk_times(&img), &our_times(&vol, &tsk_ids), false);

    // The big file had to fill the holes left by the deleted small files.
    let big = ids["/frag/big.bin"];
    let extents = vol.extents(big).unwrap();
    assert!(extents.len() >= 4, "big.bin is not fragmented: {extents:?}");
    let total: u64 = extents.iter().map(|e| e.1).sum();
    assert_eq!(total, vol.stat(big).unwrap().size);
    // The 8.3 alias also resolves, and NT lower-case flags show in the name.
    let root = vol.read_dir(vol.root()).unwrap();
    let lower = root.iter().find(|e| e.name == "lower.txt").unwrap();
    assert_eq!(lower.short_name.as_deref(), Some("LOWER.TXT"));
    let many = ids["/many"];
    let entries = vol.read_dir(many).unwrap();
    assert_eq!(entries.len(), shape.many);
    let long = entries
        .iter()
        .find(|e| e.name == "00001 entry with a long name.dat")
        .unwrap();
    let alias = long.short_name.clone().unwrap();
    assert_eq!(
        vol.lookup(many, &alias.to_lowercase()).unwrap(),
        Some(long.id)
    );
    // Times are present and plausible (written within the last day).
    let meta = vol.stat(ids["/hello.txt"]).unwrap();
    let m = meta.modified.unwrap().secs;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - 2 * 86_400..now + 2 * 86_400).contains(&m),
        "mtime {m}"
    );
    assert_eq!(vol.stat(ids["/nest"]).unwrap().kind, FileKind::Directory);
    // Attributes as mattrib set them.
    let a = meta.attributes;
    assert!(
        a.contains(Attributes::READ_ONLY) && a.contains(Attributes::HIDDEN),
        "{a:?}"
    );
    assert!(!a.contains(Attributes::SYSTEM));
    let a = vol.stat(ids["/UPPER.TXT"]).unwrap().attributes;
    assert!(
        a.contains(Attributes::SYSTEM) && !a.contains(Attributes::ARCHIVE),
        "{a:?}"
    );
    assert!(!a.contains(Attributes::READ_ONLY));
    let a = vol.stat(ids["/nest"]).unwrap().attributes;
    assert!(a.contains(Attributes::DIRECTORY), "{a:?}");
    // A directory cannot be read as a file, nor a file listed as a directory.
    assert!(vol.read(ids["/nest"], 0, &mut [0u8; 4]).is_err());
    assert!(vol.read_dir(ids["/hello.txt"]).is_err());
}

fn full() -> Shape {
    Shape {
        many: 1500,
        depth: 30,
        max_file: 200_000,
    }
}

#[test]
fn fat12_floppy_512b_clusters() {
    let shape = Shape {
        many: 100,
        depth: 30,
        max_file: 20_000,
    };
    check("fat12a", 12, 2, 1, shape, FatType::Fat12);
}

#[test]
fn fat12_4k_clusters() {
    check("fat12b", 12, 12, 8, full(), FatType::Fat12);
}

#[test]
fn fat16_2k_clusters() {
    check("fat16a", 16, 24, 4, full(), FatType::Fat16);
}

#[test]
fn fat16_8k_clusters() {
    check("fat16b", 16, 40, 16, full(), FatType::Fat16);
}

#[test]
fn fat32_512b_clusters() {
    check("fat32a", 32, 36, 1, full(), FatType::Fat32);
}

#[test]
fn fat32_1k_clusters() {
    check("fat32b", 32, 68, 2, full(), FatType::Fat32);
}

#[test]
fn fat16_4k_sectors() {
    let shape = Shape {
        many: 300,
        depth: 30,
        max_file: 100_000,
    };
    check_sectors("fat16s", 16, 32, 4096, 1, shape, FatType::Fat16);
}
