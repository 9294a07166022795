//! Geometry coverage: volumes with cluster sizes from 512 B to 64 KiB and 512- or
//! 4096-byte sectors (the latter gives 4096-byte MFT records), each compared with Sleuth
//! Kit.

mod common;
use common::*;
use std::io::{Seek, SeekFrom, Write};

fn check(cluster: u32, sector: u32) {
    check_sized(cluster, sector, 48 << 20);
}

fn check_sized(cluster: u32, sector: u32, size: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("vol.img");
    mkntfs(&img, size, cluster, sector, &format!("c{cluster}"));
    {
        let m = Mount::new(&img, &tmp.path().join("mnt"), "");
        let d = &m.dir;
        std::fs::create_dir(d.join("many")).unwrap();
        for i in 0..600 {
            // Empty, so the Sleuth Kit oracle needs no icat run per file.
            std::fs::File::create(d.join(format!("many/file number {i}"))).unwrap();
        }
        for (i, size) in [0usize, 1, 3000, 300_000, 1_000_001]
            .into_iter()
            .enumerate()
        {
            std::fs::write(
                d.join(format!("r{i}")),
                prng_bytes(i as u64 + cluster as u64, size),
            )
            .unwrap();
        }
        let mut f = std::fs::File::create(d.join("sparse")).unwrap();
        f.write_all(b"start").unwrap();
        f.seek(SeekFrom::Start(3 << 20)).unwrap();
        f.write_all(&prng_bytes(77, 70_000)).unwrap();
        drop(f);
        std::fs::write(d.join("r2:alt"), prng_bytes(5, 9000)).unwrap();
        std::fs::hard_link(d.join("r3"), d.join("many/link to r3")).unwrap();
        if cluster <= 4096 {
            // NTFS compression exists only for clusters up to 4 KiB.
            std::fs::create_dir(d.join("comp")).unwrap();
            run(
                "setfattr",
                &[
                    "-n",
                    "system.ntfs_attrib_be",
                    "-v",
                    "0x00000800",
                    d.join("comp").to_str().unwrap(),
                ],
            );
            std::fs::write(d.join("comp/t"), text_bytes(200_000)).unwrap();
            let mut m = text_bytes(10_000);
            m.extend(prng_bytes(9, 80_000));
            m.extend(vec![0u8; 100_000]);
            std::fs::write(d.join("comp/m"), m).unwrap();
        }
    }
    let vol = open(&img);
    let info = vol.info();
    assert_eq!(info.cluster_size, cluster);
    assert_eq!(info.sector_size, sector);
    assert_eq!(vol.boot_sector().file_record_size, sector.max(1024));
    assert_eq!(info.label, format!("c{cluster}"));
    let ours = walk(&vol);
    if cluster <= 65536 {
        assert_listing_eq(
            &ours,
            &sleuthkit_listing(&img),
            &format!("cluster {cluster}"),
        );
    } else {
        // Sleuth Kit stops at 64 KiB clusters; ntfs-3g reads 2 MiB ones.
        let m = Mount::new(&img, &tmp.path().join("mnt"), "ro");
        let mut theirs = Listing::new();
        let mut links = Default::default();
        ntfs3g_listing(&m.dir, "", &mut theirs, &mut links);
        let alt = std::fs::read(m.dir.join("r2:alt")).unwrap();
        theirs.insert("r2:alt".into(), (alt.len() as u64, sha256_bytes(&alt)));
        drop(m);
        assert_listing_eq(&ours, &theirs, &format!("cluster {cluster} vs ntfs-3g"));
    }
    assert!(ours.contains_key("r2:alt"));
    let many = vol.lookup(vol.root(), "many").unwrap().unwrap();
    assert_eq!(vol.read_dir(many).unwrap().len(), 601);
    if cluster <= 4096 {
        let t = vol.lookup_path("comp/t").unwrap().unwrap();
        assert!(vol.stat(t).unwrap().allocated_size < 100_000);
    }
}

#[test]
fn cluster_512() {
    check(512, 512);
}

#[test]
fn cluster_1k() {
    check(1024, 512);
}

#[test]
fn cluster_4k_sector_4k() {
    check(4096, 4096);
}

#[test]
fn cluster_16k() {
    check(16384, 512);
}

#[test]
fn cluster_64k() {
    check(65536, 512);
}

/// The largest cluster size Windows 10 1709+ formats (encoded as a negative power of two).
#[test]
fn cluster_2m() {
    check_sized(2 << 20, 512, 1 << 30);
}
