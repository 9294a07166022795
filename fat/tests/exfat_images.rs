//! exFAT images built by mkfs.exfat (exfatprogs) and populated through exfat-fuse: our
//! reader must see exactly the staging tree, and exactly what Sleuth Kit sees.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use vmsnapfs_fat::FatType;

fn copy_tree(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            fs::create_dir(&dst).unwrap();
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn avail_bytes(mnt: &Path) -> u64 {
    let out = run(tool("df").args(["-B1", "--output=avail"]).arg(mnt));
    out.lines().nth(1).unwrap().trim().parse().unwrap()
}

const VALID: usize = 100;

fn set_checksum(set: &[u8]) -> u16 {
    let mut sum = 0u16;
    for (i, &b) in set.iter().enumerate() {
        if i != 2 && i != 3 {
            sum = (if sum & 1 != 0 { 0x8000u16 } else { 0 })
                .wrapping_add(sum >> 1)
                .wrapping_add(u16::from(b));
        }
    }
    sum
}

/// Finds the entry set named `name` by scanning the raw image (independently of the
/// reader under test), lets `edit` change it, and fixes the SetChecksum.
fn patch_set(img: &Path, name: &str, edit: impl FnOnce(&mut [u8])) {
    let mut bytes = fs::read(img).unwrap();
    let units: Vec<u16> = name.encode_utf16().collect();
    let mut found = None;
    for off in (0..bytes.len() - 96).step_by(32) {
        if bytes[off] != 0x85 || bytes[off + 32] != 0xC0 || bytes[off + 64] != 0xC1 {
            continue;
        }
        if usize::from(bytes[off + 35]) != units.len() {
            continue;
        }
        let stored: Vec<u16> = (0..units.len().min(15))
            .map(|i| u16::from_le_bytes([bytes[off + 66 + 2 * i], bytes[off + 67 + 2 * i]]))
            .collect();
        if stored == units[..units.len().min(15)] {
            assert!(found.is_none(), "two entry sets named {name}");
            found = Some(off);
        }
    }
    let off = found.unwrap_or_else(|| panic!("entry set {name} not found in one piece"));
    let count = usize::from(bytes[off + 1]);
    let set = &mut bytes[off..off + 32 * (1 + count)];
    edit(set);
    let sum = set_checksum(set);
    set[2..4].copy_from_slice(&sum.to_le_bytes());
    fs::write(img, bytes).unwrap();
}

/// How many in-use Stream Extension entries have NoFatChain set, and how many not.
fn no_fat_chain_census(img: &Path) -> (usize, usize) {
    let bytes = fs::read(img).unwrap();
    let (mut contiguous, mut chained) = (0, 0);
    for off in (0..bytes.len() - 64).step_by(32) {
        if bytes[off] == 0x85 && bytes[off + 32] == 0xC0 && bytes[off + 56] != 0 {
            if bytes[off + 33] & 2 != 0 {
                contiguous += 1;
            } else {
                chained += 1;
            }
        }
    }
    (contiguous, chained)
}

fn check(name: &str, mib: u64, cluster: u64, shape: Shape) {
    require("mkfs.exfat");
    let dir = tempdir();
    let dir = dir.path();
    let img = dir.join(format!("{name}.img"));
    let stage = dir.join("stage");
    fs::File::create(&img)
        .unwrap()
        .set_len(mib * 1024 * 1024)
        .unwrap();
    run(tool("mkfs.exfat")
        .args(["-L", "ExLabel", "-c"])
        .arg(cluster.to_string())
        .arg(&img));
    build_stage(&stage, &shape, cluster ^ mib);
    let mut rng = Rng::new(cluster + 7);
    let mut m = Mounted::new(&img, &dir.join("mnt"));
    // exfat-fuse 1.3 always writes ValidDataLength = DataLength, so a short one is
    // made below (first in the root, so that its set lies in one cluster) by patching the entry set, with fsck.exfat as the judge.
    let grown = rng.bytes((3 * cluster + 11) as usize);
    fs::write(m.mnt.join("grown.bin"), &grown).unwrap();
    let mut grown_expected = grown[..VALID].to_vec();
    grown_expected.resize(grown.len(), 0);
    copy_tree(&stage, &m.mnt);
    // A name outside the BMP (a UTF-16 surrogate pair); mtools cannot write these to
    // FAT, exfat-fuse can.
    let emoji = "smile \u{1F600} face.txt";
    fs::write(m.mnt.join(emoji), b"non-BMP name").unwrap();
    write(&stage.join(emoji), b"non-BMP name");
    // Staged only after the copy, so the image keeps the stale bytes past VALID.
    write(&stage.join("grown.bin"), &grown_expected);
    // Fragmentation: small files, every other deleted, then a file that only fits by
    // filling the holes.
    fs::create_dir(m.mnt.join("frag")).unwrap();
    for i in 0..40 {
        let data = rng.bytes((2 * cluster - 5) as usize);
        write(&stage.join("frag").join(format!("small{i:02}.bin")), &data);
        fs::write(m.mnt.join("frag").join(format!("small{i:02}.bin")), &data).unwrap();
    }
    for i in (1..40).step_by(2) {
        let n = format!("small{i:02}.bin");
        fs::remove_file(stage.join("frag").join(&n)).unwrap();
        fs::remove_file(m.mnt.join("frag").join(&n)).unwrap();
    }
    // More than the 20 two-cluster holes hold, so that it spans holes and the tail.
    let big_len = (40 + 8) * cluster + 99;
    assert!(avail_bytes(&m.mnt) > big_len + 4 * cluster);
    let big = rng.bytes(big_len as usize);
    fs::write(m.mnt.join("frag").join("big.bin"), &big).unwrap();
    write(&stage.join("frag").join("big.bin"), &big);
    let free_after = avail_bytes(&m.mnt);
    m.unmount();

    patch_set(&img, "grown.bin", |set| {
        set[40..48].copy_from_slice(&(VALID as u64).to_le_bytes())
    });
    // Local times: modified at UTC+02:00, created at UTC-05:00, accessed unknown zone.
    patch_set(&img, "grown.bin", |set| {
        set[22] = 0x80 | 0x6C;
        set[23] = 0x80 | 8;
        set[24] = 0;
    });
    require("fsck.exfat");
    run(tool("fsck.exfat").arg("-n").arg(&img));

    let staged = walk_fs(&stage);
    let vol = open(&img);
    assert_eq!(vol.fat_type(), FatType::ExFat);
    let info = vol.info();
    assert_eq!(info.label.as_deref(), Some("ExLabel"));
    assert_eq!(u64::from(info.cluster_size), cluster);
    assert_eq!(info.dirty, Some(false));
    // Free space from the allocation bitmap equals what exfat-fuse reported.
    assert_eq!(u64::from(info.free_clusters.unwrap()) * cluster, free_after);
    let (ours, ids) = walk_volume(&vol);
    diff("staging", &staged, "vmsnapfs", &ours);
    check_placed(&vol, &ids, &staged);
    let mut tsk = tsk_tree(&img, dir);
    // Sleuth Kit ignores ValidDataLength and returns the stale bytes beyond it.
    tsk.insert("/grown.bin".into(), ours["/grown.bin"].clone());
    diff("sleuthkit", &tsk, "vmsnapfs", &ours);
    check_lookups(&vol, &ids);
    check_ids_fresh(&img, &vol, &ids);
    let tsk_t = tsk_times(&img);
    let mut our_t = our_times(&vol, &ids);
    // Sleuth Kit ignores the UTC offset fields; we apply them.
    let (theirs, ours) = (tsk_t["/grown.bin"], our_t["/grown.bin"]);
    let even = |t: Option<i64>| t.map(|t| t - t.rem_euclid(2));
    assert_eq!(even(ours.modified), theirs.modified.map(|t| t - 2 * 3600));
    assert_eq!(even(ours.created), theirs.created.map(|t| t + 5 * 3600));
    our_t.insert("/grown.bin".into(), theirs);
    compare_times(&tsk_t, &our_t, true);
    let (contiguous, chained) = no_fat_chain_census(&img);
    assert!(
        contiguous > 0 && chained > 0,
        "both NoFatChain ({contiguous}) and FAT-chained ({chained}) files were read"
    );
    let extents = vol.extents(ids["/frag/big.bin"]).unwrap();
    assert!(extents.len() >= 4, "big.bin is not fragmented: {extents:?}");
    let grown_meta = vol.stat(ids["/grown.bin"]).unwrap();
    assert_eq!(grown_meta.valid_data_length, VALID as u64);
    assert_eq!(grown_meta.size, 3 * cluster + 11);
    // exFAT lookups fold with the volume's up-case table.
    let d = vol
        .lookup(vol.root(), "UNICODE DIR ΩΜΈΓΑ")
        .unwrap()
        .unwrap();
    assert_eq!(d, ids["/unicode dir Ωμέγα"]);
}

#[test]
fn exfat_4k_clusters() {
    let shape = Shape {
        many: 1500,
        depth: 30,
        max_file: 200_000,
    };
    check("exfat4k", 24, 4096, shape);
}

#[test]
fn exfat_512b_clusters() {
    let shape = Shape {
        many: 300,
        depth: 30,
        max_file: 50_000,
    };
    check("exfat512", 8, 512, shape);
}

#[test]
fn exfat_32k_clusters() {
    let shape = Shape {
        many: 1500,
        depth: 30,
        max_file: 300_000,
    };
    check("exfat32k", 96, 32768, shape);
}
