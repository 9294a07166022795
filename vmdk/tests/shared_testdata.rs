//! Third-party images (Windows-, ESXi- and qemu-made) in ../shared/testdata, checked against
//! the sha256 of `qemu-img convert -O raw` recorded next to them.

mod common;

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use vmsnapfs_io::ReadAt;
use vmsnapfs_vmdk::Disk;

fn testdata() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata");
    if d.join("vmdk").is_dir() {
        Some(d)
    } else {
        common::skipped(&format!(
            "{} is absent; third-party VMDK images not checked",
            d.display()
        ));
        None
    }
}

fn sha256_of(disk: &Disk) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < disk.capacity() {
        let n = (disk.capacity() - off).min(buf.len() as u64) as usize;
        disk.read_at(off, &mut buf[..n]).unwrap();
        h.update(&buf[..n]);
        off += n as u64;
    }
    format!("{:x}", h.finalize())
}

#[test]
fn images_match_qemu_img_raw() {
    let Some(d) = testdata() else { return };
    let list = std::fs::read_to_string(d.join("vmdk-raw.sha256")).unwrap();
    let mut checked = 0;
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 3, "bad golden line {line:?}");
        let disk =
            Disk::open_path(&d.join("vmdk").join(f[0])).unwrap_or_else(|e| panic!("{}: {e}", f[0]));
        assert_eq!(disk.capacity(), f[1].parse::<u64>().unwrap(), "{}", f[0]);
        assert_eq!(sha256_of(&disk), f[2], "{}", f[0]);
        // Data outside the allocated ranges must read as zeros.
        let ranges = disk.allocated_ranges().unwrap();
        let mut prev = 0;
        let mut buf = vec![0u8; 65536];
        for r in ranges
            .iter()
            .cloned()
            .chain(std::iter::once(disk.capacity()..disk.capacity()))
        {
            let mut off = prev;
            while off < r.start {
                let n = (r.start - off).min(buf.len() as u64) as usize;
                disk.read_at(off, &mut buf[..n]).unwrap();
                assert!(
                    buf[..n].iter().all(|&b| b == 0),
                    "{}: data at {off} outside allocated ranges",
                    f[0]
                );
                off += n as u64;
            }
            prev = r.end;
        }
        checked += 1;
    }
    assert!(checked >= 5);
}

#[test]
fn missing_delta_is_named() {
    let Some(d) = testdata() else { return };
    let e = Disk::open_path(&d.join("vmdk/vmfs_thick-000001.vmdk")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("vmfs_thick-000001-delta.vmdk"), "{msg}");
    assert!(msg.contains("not found"), "{msg}");
}

#[test]
fn chain_and_metadata() {
    let Some(d) = testdata() else { return };
    let disk = Disk::open_path(&d.join("vmdk/vmfs_thick.vmdk")).unwrap();
    assert_eq!(disk.chain(), ["vmfs_thick.vmdk"]);
    assert_eq!(disk.create_type(), Some("vmfs"));
    assert_eq!(disk.allocated_ranges().unwrap(), vec![0..2 * 1024 * 1024]);
    let disk = Disk::open_path(&d.join("vmdk/streamOptimized.vmdk")).unwrap();
    assert_eq!(disk.create_type(), Some("streamOptimized"));
}
