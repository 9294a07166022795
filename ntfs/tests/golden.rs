//! Third-party images compared to golden listings made with Sleuth Kit.

mod common;
use common::*;
use std::process::Command;

#[test]
fn testfs1_matches_golden() {
    let Some(td) = testdata() else { return };
    let vol = open(&td.join("ntfs/testfs1"));
    let ours = walk(&vol);
    assert_listing_eq(
        &ours,
        &read_golden(&td.join("ntfs/testfs1.files.tsv")),
        "testfs1",
    );
    // many_subdirs/1..512 live in index blocks below the root node.
    let many = vol
        .lookup_path("many_subdirs")
        .unwrap()
        .expect("many_subdirs");
    let entries = vol.read_dir(many).unwrap();
    assert_eq!(entries.len(), 512);
    for e in &entries {
        assert_eq!(vol.lookup(many, &e.name).unwrap(), Some(e.id), "{}", e.name);
    }
    assert_eq!(vol.lookup(many, "513").unwrap(), None);
    assert_eq!(vol.lookup(many, "").unwrap(), None);
    assert_eq!(vol.lookup(vol.root(), ".").unwrap(), None);
}

#[test]
fn charlie_matches_golden() {
    let Some(td) = testdata() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("charlie.dd");
    let out = Command::new("bzip2")
        .args(["-dc"])
        .arg(td.join("ntfs/charlie.dd.bz2"))
        .output()
        .expect("bzip2 must be installed (scripts/test.sh installs it)");
    assert!(out.status.success());
    std::fs::write(&img, out.stdout).unwrap();
    let vol = open(&img);
    assert_listing_eq(
        &walk(&vol),
        &read_golden(&td.join("ntfs/charlie.files.tsv")),
        "charlie",
    );
}

#[test]
fn monolithic_sparse_partition1_matches_golden() {
    let Some(td) = testdata() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("disk.raw");
    run(
        "qemu-img",
        &[
            "convert",
            "-O",
            "raw",
            td.join("vmdk/monolithicSparse.vmdk").to_str().unwrap(),
            raw.to_str().unwrap(),
        ],
    );
    let disk = std::fs::read(&raw).unwrap();
    // MBR partition entry 1: start LBA at byte 446 + 8.
    assert_eq!(&disk[510..512], &[0x55, 0xAA]);
    let start = u32::from_le_bytes(disk[454..458].try_into().unwrap()) as u64 * 512;
    let len = u32::from_le_bytes(disk[458..462].try_into().unwrap()) as u64 * 512;
    assert_eq!(start, 65536);
    let src =
        vmsnapfs_io::Window::new(vmsnapfs_io::FileSource::open(&raw).unwrap(), start, len).unwrap();
    let vol = vmsnapfs_ntfs::Volume::open(std::sync::Arc::new(src)).unwrap();
    assert_listing_eq(
        &walk(&vol),
        &read_golden(&td.join("vmdk/monolithicSparse.p1.files.tsv")),
        "monolithicSparse p1",
    );
    let info = vol.info();
    assert!(info.major_version >= 3);
    // Windows-formatted: every file has a security id resolving through $Secure.
    let root_sd = vol
        .security_descriptor(vol.root())
        .unwrap()
        .expect("root SD");
    assert_eq!(root_sd[0], 1, "SECURITY_DESCRIPTOR revision");
}
