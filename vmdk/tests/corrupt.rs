//! Damaged inputs must give an error, never a panic, a hang or a huge allocation.

mod common;

use std::path::Path;

use common::gen::{self, SeOpts, G};
use common::*;
use vmsnapfs_vmdk::fuzzing::open_and_read;
use vmsnapfs_vmdk::{Disk, Error};

const LIMIT: u64 = 4 << 20;

fn qemu_image(dir: &Path, sub: &str, name: &str) -> Vec<u8> {
    run(
        dir,
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vmdk",
            "-o",
            &format!("subformat={sub}"),
            "tmp.vmdk",
            "2M",
        ],
    );
    qemu_io(
        dir,
        "vmdk",
        "tmp.vmdk",
        &["write -P 0x5a 1000 300000", "write -P 0x11 1500000 1000"],
    );
    if sub == "streamOptimized" {
        // qemu-io cannot rewrite streamOptimized grains in place; convert instead.
        run(
            dir,
            "qemu-img",
            &["convert", "-O", "raw", "tmp.vmdk", "tmp.raw"],
        );
    }
    let _ = name;
    std::fs::read(dir.join("tmp.vmdk")).unwrap()
}

fn stream_image(dir: &Path) -> Vec<u8> {
    run(
        dir,
        "qemu-img",
        &["create", "-q", "-f", "raw", "s.raw", "2M"],
    );
    qemu_io(
        dir,
        "raw",
        "s.raw",
        &["write -P 0x5a 1000 300000", "write -P 0x11 1500000 1000"],
    );
    qemu_img(
        dir,
        "convert -O vmdk -o subformat=streamOptimized s.raw s.vmdk",
    );
    std::fs::read(dir.join("s.vmdk")).unwrap()
}

fn set_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn truncated_files_fail_cleanly() {
    let t = tempfile::tempdir().unwrap();
    let sparse = qemu_image(t.path(), "monolithicSparse", "m");
    let stream = stream_image(t.path());
    for (img, tail_needed) in [(&sparse, true), (&stream, false)] {
        assert!(
            open_and_read(&[("x.vmdk", img.clone())], LIMIT),
            "intact image must read"
        );
        for cut in [
            0usize,
            3,
            4,
            100,
            511,
            512,
            1023,
            1536,
            4096,
            65536,
            img.len() / 2,
            img.len() - 1024,
            img.len() - 1,
        ] {
            let cut = cut.min(img.len() - 1);
            let ok = open_and_read(&[("x.vmdk", img[..cut].to_vec())], LIMIT);
            // qemu's streamOptimized header also names the grain directory, so losing the
            // footer and end-of-stream marker loses nothing we need; anything else must be seen.
            if tail_needed || cut < img.len() - 1536 {
                assert!(!ok, "truncated to {cut} of {} read fine", img.len());
            }
        }
    }
}

#[test]
fn bad_header_fields_are_errors() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let img = qemu_image(dir, "monolithicSparse", "m");
    let open = |b: &[u8]| -> Result<Disk, Error> {
        std::fs::write(dir.join("bad.vmdk"), b).unwrap();
        Disk::open_path(&dir.join("bad.vmdk"))
    };
    for grain in [0u64, 1 << 40, 65537] {
        let mut b = img.clone();
        set_u64(&mut b, 20, grain);
        let e = open(&b).unwrap_err();
        assert!(e.to_string().contains("grain size"), "{e}");
    }
    // Lying capacity: 2^50 sectors, and one needing a GD larger than the file.
    let mut b = img.clone();
    set_u64(&mut b, 12, 1 << 50);
    assert!(open(&b).is_err());
    let mut b = img.clone();
    set_u64(&mut b, 12, 1 << 36);
    let e = open(&b).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    // Grain directory past EOF.
    let mut b = img.clone();
    set_u64(&mut b, 56, 1 << 40);
    set_u64(&mut b, 48, 1 << 40);
    assert!(open(&b).is_err());
    // A grain table pointing past EOF: fails on read, naming the file and offset.
    let gd = u64::from_le_bytes(img[56..64].try_into().unwrap()) as usize * 512;
    let mut b = img.clone();
    b[gd..gd + 4].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let disk = open(&b).unwrap();
    let e = disk.read(0, &mut [0u8; 512]).unwrap_err();
    assert!(
        e.to_string().starts_with("bad.vmdk: corrupt at offset"),
        "{e}"
    );
    // A grain pointing past EOF.
    let gt = u32::from_le_bytes(img[gd..gd + 4].try_into().unwrap()) as usize * 512;
    let mut b = img.clone();
    b[gt..gt + 4].copy_from_slice(&0x0fff_fff0u32.to_le_bytes());
    let disk = open(&b).unwrap();
    assert!(disk.read(0, &mut [0u8; 512]).is_err());
    // The whole-disk ReadAt path reports it as an io::Error too.
    use vmsnapfs_io::ReadAt;
    assert!(disk.read_at(0, &mut [0u8; 512]).is_err());
    assert!(disk.read_at(disk.capacity() - 1, &mut [0u8; 2]).is_err());
}

#[test]
fn lying_descriptor_capacity_fails_on_read() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    qemu_img(
        dir,
        "create -q -f vmdk -o subformat=twoGbMaxExtentSparse d.vmdk 2M",
    );
    qemu_img(
        dir,
        "create -q -f vmdk -o subformat=monolithicFlat f.vmdk 2M",
    );
    for (name, from) in [("d.vmdk", "RW 4096 SPARSE"), ("f.vmdk", "RW 4096 FLAT")] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.contains(from), "{text}");
        std::fs::write(
            dir.join(name),
            text.replace(from, &from.replace("4096", "40960")),
        )
        .unwrap();
        // A sparse extent's header gives it away at open; a flat one only when read.
        match Disk::open_path(&dir.join(name)) {
            Err(e) => {
                assert!(
                    name == "d.vmdk" && e.to_string().contains("header holds only 4096"),
                    "{e}"
                );
            }
            Ok(disk) => {
                assert_eq!(name, "f.vmdk");
                assert_eq!(disk.capacity(), 40960 * 512);
                disk.read(0, &mut vec![0u8; 4096 * 512]).unwrap();
                let e = disk.read(0, &mut vec![0u8; 40960 * 512]).unwrap_err();
                assert!(e.to_string().starts_with("f-flat.vmdk: read of"), "{e}");
            }
        }
    }
    // Extents adding up to an absurd size are refused at open.
    std::fs::write(
        dir.join("huge.vmdk"),
        "CID=1\ncreateType=\"monolithicFlat\"\nRW 99999999999999999 FLAT \"f-flat.vmdk\" 0\n",
    )
    .unwrap();
    assert!(Disk::open_path(&dir.join("huge.vmdk")).is_err());
    std::fs::write(dir.join("junk.vmdk"), [0xffu8; 3000]).unwrap();
    assert!(Disk::open_path(&dir.join("junk.vmdk")).is_err());
}

#[test]
fn bad_deflate_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let mut img = stream_image(t.path());
    // The first grain marker follows the header/descriptor area: find it by its lba 0 marker
    // with a non-zero size at a sector boundary after the overhead.
    let overhead = u64::from_le_bytes(img[64..72].try_into().unwrap()) as usize * 512;
    let size = u32::from_le_bytes(img[overhead + 8..overhead + 12].try_into().unwrap()) as usize;
    assert!(
        size > 0 && size < 65536,
        "expected a grain marker at {overhead}"
    );
    for b in &mut img[overhead + 14..overhead + 12 + size] {
        *b ^= 0x55;
    }
    std::fs::write(t.path().join("bad.vmdk"), &img).unwrap();
    let disk = Disk::open_path(&t.path().join("bad.vmdk")).unwrap();
    let e = disk.read(0, &mut [0u8; 4096]).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    // Also through the small-read (cached) path, and again (no poisoned state).
    assert!(disk.read(100, &mut [0u8; 10]).is_err());
    assert!(disk.read(100, &mut [0u8; 10]).is_err());
}

/// Seeded byte flips over real small images of every kind: thousands of opens and reads
/// under stable `cargo test`, none may panic.
#[test]
fn mutated_images_never_panic() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let sparse = qemu_image(dir, "monolithicSparse", "m");
    let stream = stream_image(dir);
    qemu_img(
        dir,
        "create -q -f vmdk -o subformat=twoGbMaxExtentSparse two.vmdk 2M",
    );
    qemu_io(dir, "vmdk", "two.vmdk", &["write -P 0x5a 1000 300000"]);
    let two_desc = std::fs::read(dir.join("two.vmdk")).unwrap();
    let two_ext = std::fs::read(dir.join("two-s001.vmdk")).unwrap();
    let mut rng = Rng(42);
    let grains: Vec<G> = (0..512)
        .map(|i| {
            if i % 3 == 0 {
                G::Data(vec![i as u8; 4096])
            } else if i % 3 == 1 {
                G::Zero
            } else {
                G::Unallocated
            }
        })
        .collect();
    let opts = SeOpts {
        table_order_reversed: false,
        first_grain_index: 3,
        replay_journal: false,
    };
    gen::sesparse(&dir.join("se.bin"), 4096, &grains, &opts);
    let se = std::fs::read(dir.join("se.bin")).unwrap();
    let cgrains: Vec<G> = (0..1024)
        .map(|i| {
            if i % 2 == 0 {
                G::Data(vec![i as u8; 2048])
            } else {
                G::Unallocated
            }
        })
        .collect();
    gen::cowd(&dir.join("cowd.bin"), 4096, 4, &cgrains);
    let cowd = std::fs::read(dir.join("cowd.bin")).unwrap();
    let se_desc =
        gen::descriptor(1, 2, "p.vmdk", "seSparse", 4096, "SESPARSE", "se.bin").into_bytes();
    let parent = b"CID=00000002\nparentCID=ffffffff\ncreateType=\"vmfsSparse\"\nRW 4096 VMFSSPARSE \"cowd.bin\"\n".to_vec();

    let sets: Vec<Vec<(&str, Vec<u8>)>> = vec![
        vec![("m.vmdk", sparse)],
        vec![("s.vmdk", stream)],
        vec![("two.vmdk", two_desc), ("two-s001.vmdk", two_ext)],
        vec![
            ("d.vmdk", se_desc),
            ("se.bin", se),
            ("p.vmdk", parent),
            ("cowd.bin", cowd),
        ],
    ];
    for set in &sets {
        assert!(open_and_read(set, LIMIT), "{} intact must read", set[0].0);
    }
    let mut survived = 0;
    for i in 0..4000u64 {
        let set = &sets[(i % sets.len() as u64) as usize];
        let mut files = set.clone();
        let victim = rng.below(files.len() as u64) as usize;
        let data = &mut files[victim].1;
        if data.is_empty() {
            continue;
        }
        for _ in 0..rng.below(8) + 1 {
            // Headers and tables sit near the start (or, for streams, the end).
            let at = match rng.below(3) {
                0 => rng.below(4096.min(data.len() as u64)),
                1 => data.len() as u64 - 1 - rng.below(2048.min(data.len() as u64)),
                _ => rng.below(data.len() as u64),
            } as usize;
            data[at] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                _ => rng.next() as u8,
            };
        }
        if rng.below(10) == 0 {
            let keep = rng.below(data.len() as u64) as usize;
            data.truncate(keep);
        }
        survived += open_and_read(&files, LIMIT) as u32;
    }
    // Most mutations land in data and still read: a sign the loop really reads.
    assert!(
        survived > 100,
        "only {survived} mutated images opened and read"
    );
}
