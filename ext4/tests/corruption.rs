//! Targeted damage in copies of a mke2fs image: each must give a clear error for the
//! hurt file (InvalidData through std::io, naming the inode) while the rest stays
//! readable; a damaged superblock or an unimplemented INCOMPAT feature refuses the
//! volume with a message saying why.

mod common;
use common::*;
use std::sync::Arc;
use vmsnapfs_ext4::{Error, Volume};
use vmsnapfs_io::SharedBytes;

struct Img {
    _dir: tempfile::TempDir,
    img: std::path::PathBuf,
    bytes: Vec<u8>,
}

fn image() -> Option<Img> {
    if !e2fsprogs() {
        return None;
    }
    let dir = tmp();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("good"), noise(10_000, 1)).unwrap();
    std::fs::write(src.join("victim"), noise(10_000, 2)).unwrap();
    for i in 0..20 {
        std::fs::write(src.join(format!("d/f{i}")), b"x").unwrap();
    }
    let img = dir.path().join("img");
    run(&format!(
        "mke2fs -q -F -t ext4 -b 4096 -d {} {} 16M",
        q(&src),
        q(&img)
    ));
    run(&format!(
        "debugfs -w -R 'ea_set -f /dev/null /victim user.empty' {0} >/dev/null 2>&1; printf 'ea_set /victim user.a hello\\n' | debugfs -w -f - {0} >/dev/null 2>&1",
        q(&img)
    ));
    let bytes = std::fs::read(&img).unwrap();
    Some(Img {
        _dir: dir,
        img,
        bytes,
    })
}

fn open_bytes(b: Vec<u8>) -> vmsnapfs_ext4::Result<Volume> {
    Volume::open(Arc::new(SharedBytes(Arc::new(b))))
}

fn blocks_of(img: &std::path::Path, path: &str) -> Vec<usize> {
    run(&format!(
        "debugfs -R 'blocks {path}' {} 2>/dev/null",
        q(img)
    ))
    .split_whitespace()
    .map(|w| w.parse().unwrap())
    .collect()
}

fn assert_rest_readable(v: &Volume) {
    let good = v.lookup_path(b"/good").unwrap().unwrap();
    let mut buf = vec![0u8; 20_000];
    let n = v.read(good, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], &noise(10_000, 1)[..]);
    let d = v.lookup_path(b"/d").unwrap().unwrap();
    assert_eq!(v.read_dir(d).unwrap().len(), 20);
}

fn io_kind(e: Error) -> std::io::ErrorKind {
    std::io::Error::from(e).kind()
}

#[test]
fn bad_superblock_magic_refuses_the_volume() {
    let Some(m) = image() else { return };
    let mut b = m.bytes.clone();
    b[1024 + 0x38] ^= 0xFF;
    let e = open_bytes(b).unwrap_err();
    assert!(matches!(e, Error::Superblock(_)), "{e}");
    assert!(vmsnapfs_ext4::probe(&m.bytes[..2048]));
}

#[test]
fn absurd_geometry_is_refused() {
    let Some(m) = image() else { return };
    for (off, val) in [(0x18usize, 40u32), (0x20, 0), (0x28, 0), (0x04, 0)] {
        let mut b = m.bytes.clone();
        b[1024 + off..1024 + off + 4].copy_from_slice(&val.to_le_bytes());
        assert!(open_bytes(b).is_err(), "field {off:#x} = {val}");
    }
}

#[test]
fn unimplemented_incompat_features_are_named() {
    let Some(m) = image() else { return };
    let mut b = m.bytes.clone();
    let f =
        u32::from_le_bytes(b[1024 + 0x60..1024 + 0x64].try_into().unwrap()) | 0x10000 | 0x0100_0000;
    b[1024 + 0x60..1024 + 0x64].copy_from_slice(&f.to_le_bytes());
    let e = open_bytes(b).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("encrypt") && s.contains("unknown INCOMPAT bits 0x1000000"),
        "{s}"
    );
    assert_eq!(io_kind(e), std::io::ErrorKind::Unsupported);
}

#[test]
fn smashed_extent_header_hurts_only_that_file() {
    let Some(m) = image() else { return };
    let v0 = open_bytes(m.bytes.clone()).unwrap();
    let victim = v0.lookup_path(b"/victim").unwrap().unwrap();
    let at = inode_offset(&m.img, victim, 4096) + 0x28;
    let mut b = m.bytes.clone();
    b[at] ^= 0x55; // extent header magic
    let v = open_bytes(b).unwrap();
    let mut buf = vec![0u8; 100];
    let e = v.read(victim, 0, &mut buf).unwrap_err();
    assert!(e.to_string().contains(&format!("inode {victim}")), "{e}");
    assert_eq!(io_kind(e), std::io::ErrorKind::InvalidData);
    assert!(v.stat(victim).is_ok());
    assert_rest_readable(&v);

    // An extent pointing past the end of the volume.
    let mut b = m.bytes.clone();
    b[at + 12 + 8..at + 12 + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let v = open_bytes(b).unwrap();
    assert_eq!(
        io_kind(v.read(victim, 0, &mut buf).unwrap_err()),
        std::io::ErrorKind::InvalidData
    );
    assert_rest_readable(&v);

    // A depth beyond the kernel's limit.
    let mut b = m.bytes.clone();
    b[at + 6] = 9;
    let v = open_bytes(b).unwrap();
    assert!(v.read(victim, 0, &mut buf).is_err());
    assert!(v.data_ranges(victim).is_err());
}

#[test]
fn garbage_directory_block_hurts_only_that_directory() {
    let Some(m) = image() else { return };
    let blk = blocks_of(&m.img, "/d")[0];
    for (off, bytes) in [
        (4usize, 3u16.to_le_bytes()),
        (4, 9000u16.to_le_bytes()),
        (6, [250, 1]),
    ] {
        let mut b = m.bytes.clone();
        b[blk * 4096 + off..blk * 4096 + off + 2].copy_from_slice(&bytes);
        let v = open_bytes(b).unwrap();
        let d = v.lookup_path(b"/d").unwrap().unwrap();
        let e = v.read_dir(d).unwrap_err();
        assert!(e.to_string().contains(&format!("block {blk}")), "{e}");
        assert_eq!(io_kind(e), std::io::ErrorKind::InvalidData);
        let good = v.lookup_path(b"/good").unwrap().unwrap();
        assert!(v.read(good, 0, &mut [0u8; 10]).is_ok());
    }
}

#[test]
fn bad_xattr_entry_hurts_only_xattrs() {
    let Some(m) = image() else { return };
    let v0 = open_bytes(m.bytes.clone()).unwrap();
    let victim = v0.lookup_path(b"/victim").unwrap().unwrap();
    let names: Vec<String> = v0
        .xattrs(victim)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(names.contains(&"user.a".to_string()), "{names:?}");
    // In-inode xattrs start after the 128 + i_extra_isize bytes and the 4-byte magic.
    let ioff = inode_offset(&m.img, victim, 4096);
    let extra = u16::from_le_bytes([m.bytes[ioff + 0x80], m.bytes[ioff + 0x81]]) as usize;
    let first = ioff + 128 + extra + 4;
    for (field, val) in [(8usize, 60_000u32), (2, 0xFFF0)] {
        let mut b = m.bytes.clone();
        if field == 2 {
            b[first + 2..first + 4].copy_from_slice(&(val as u16).to_le_bytes());
        } else {
            b[first + field..first + field + 4].copy_from_slice(&val.to_le_bytes());
        }
        let v = open_bytes(b).unwrap();
        let e = v.xattrs(victim).unwrap_err();
        assert_eq!(io_kind(e), std::io::ErrorKind::InvalidData);
        let mut buf = vec![0u8; 20_000];
        assert_eq!(v.read(victim, 0, &mut buf).unwrap(), 10_000);
        assert_rest_readable(&v);
    }
}

#[test]
fn inode_numbers_out_of_range_are_not_found() {
    let Some(m) = image() else { return };
    let v = open_bytes(m.bytes.clone()).unwrap();
    for ino in [0, u32::MAX, v.info().inodes_count + 1] {
        assert_eq!(
            io_kind(v.stat(ino).unwrap_err()),
            std::io::ErrorKind::NotFound
        );
    }
    // Unused inode.
    assert_eq!(
        io_kind(v.stat(v.info().inodes_count).unwrap_err()),
        std::io::ErrorKind::NotFound
    );
}
