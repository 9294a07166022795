//! A FAT32 directory at the format's limit of 65 536 entries must list in linear time
//! and answer lookups from the cached listing.
//!
//! mtools needs about 90 s to create 65 534 files in one directory (its free-slot scan
//! is quadratic), far beyond the test budget. So mkfs.vfat and mmd create the volume
//! and the directory, this test fills the directory's clusters with plain 8.3 entries,
//! and dosfstools' `fsck.vfat -n` and Sleuth Kit's `fls` are the judges of the result.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::time::Instant;

use common::*;
use vmsnapfs_io::le;

const ENTRIES: usize = 65_536;

// A field past the end of the image fails the test, saying where.
fn u16_at(b: &[u8], o: usize) -> usize {
    le::u16_at(b, o).unwrap().into()
}
fn u32_at(b: &[u8], o: usize) -> usize {
    le::u32_at(b, o).unwrap() as usize
}

#[test]
fn fat32_directory_with_65536_entries() {
    for t in ["mkfs.vfat", "mmd", "fsck.vfat", "fls"] {
        require(t);
    }
    let dir = tempdir();
    let img = dir.path().join("huge.img");
    fs::File::create(&img).unwrap().set_len(40 << 20).unwrap();
    run(tool("mkfs.vfat")
        .args(["-F", "32", "-s", "1", "-n", "BIGDIR"])
        .arg(&img));
    run(tool("mmd").arg("-i").arg(&img).arg("::/huge"));

    let mut b = fs::read(&img).unwrap();
    let bps = u16_at(&b, 11);
    let spc = usize::from(b[13]);
    let rsvd = u16_at(&b, 14);
    let nfats = usize::from(b[16]);
    let fatsz = u32_at(&b, 36);
    let root = u32_at(&b, 44);
    let fsinfo = u16_at(&b, 48);
    let cs = bps * spc;
    let data = (rsvd + nfats * fatsz) * bps;
    let cl = |c: usize| data + (c - 2) * cs;
    let fat = |i: usize| rsvd * bps + i * fatsz * bps;
    let root_off = cl(root);
    let huge = (0..cs / 32)
        .map(|i| root_off + 32 * i)
        .find(|&o| &b[o..o + 11] == b"HUGE       ")
        .expect("mmd created ::/huge");
    let first = (u16_at(&b, huge + 20) << 16) | u16_at(&b, huge + 26);

    // Extend the directory's chain to hold ENTRIES slots, taking free clusters.
    let need = ENTRIES * 32 / cs;
    let total = (b.len() - data) / cs;
    let mut chain = vec![first];
    let mut c = 2;
    while chain.len() < need {
        assert!(c < total + 2, "volume too small");
        if c != first && u32_at(&b, fat(0) + 4 * c) == 0 {
            chain.push(c);
        }
        c += 1;
    }
    for f in 0..nfats {
        for w in chain.windows(2) {
            let o = fat(f) + 4 * w[0];
            b[o..o + 4].copy_from_slice(&(w[1] as u32).to_le_bytes());
        }
        let o = fat(f) + 4 * chain[need - 1];
        b[o..o + 4].copy_from_slice(&0x0FFF_FFFFu32.to_le_bytes());
    }
    // The FSInfo free count is now stale: mark it unknown, as the spec allows.
    let o = fsinfo * bps + 488;
    b[o..o + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    // Slots 0 and 1 are mmd's "." and ".."; copy their timestamps for the new entries.
    let template: Vec<u8> = b[cl(first)..cl(first) + 32].to_vec();
    let mut names = BTreeSet::new();
    for slot in 2..ENTRIES {
        let cluster = chain[slot * 32 / cs];
        let o = cl(cluster) + (slot * 32) % cs;
        let name = format!("E{:05}  TXT", slot - 2);
        let mut e = template.clone();
        e[..11].copy_from_slice(name.as_bytes());
        e[11] = 0x20;
        e[20..22].fill(0);
        e[26..32].fill(0);
        b[o..o + 32].copy_from_slice(&e);
        names.insert(format!("/huge/E{:05}.TXT", slot - 2));
    }
    fs::write(&img, &b).unwrap();
    drop(b);
    let fsck = run(tool("fsck.vfat").arg("-n").arg(&img));

    let vol = open(&img);
    // FSInfo says "unknown", so the count comes from the FAT: it must match fsck's
    // "used/total clusters".
    let (used, total) = fsck
        .lines()
        .last()
        .and_then(|l| l.rsplit(", ").next())
        .and_then(|c| c.trim_end_matches(" clusters").split_once('/'))
        .map(|(u, t)| (u.parse::<u32>().unwrap(), t.parse::<u32>().unwrap()))
        .expect("fsck.vfat summary line");
    let info = vol.info();
    assert_eq!(info.total_clusters, total);
    assert_eq!(info.free_clusters, Some(total - used));
    let id = vol.lookup(vol.root(), "HUGE").unwrap().unwrap();
    let t = Instant::now();
    let entries = vol.read_dir(id).unwrap();
    let listed = t.elapsed();
    assert_eq!(entries.len(), ENTRIES - 2);
    let t = Instant::now();
    for e in &entries {
        assert_eq!(vol.lookup(id, &e.name.to_lowercase()).unwrap(), Some(e.id));
    }
    // A FUSE readdir that re-reads the listing per chunk shares it, not copies it.
    for _ in 0..1000 {
        assert_eq!(vol.read_dir_shared(id).unwrap().len(), ENTRIES - 2);
    }
    let looked_up = t.elapsed();
    eprintln!("65534 entries: listed in {listed:?}, all looked up in {looked_up:?}");
    // Linear work is milliseconds; a quadratic listing or lookup takes minutes.
    assert!(listed.as_secs() < 5 && looked_up.as_secs() < 10);

    let ours: BTreeSet<String> = entries
        .iter()
        .map(|e| format!("/huge/{}", e.name))
        .collect();
    assert_eq!(ours, names);
    let fls = run(tool("fls").args(["-r", "-p", "-u"]).arg(&img));
    let tsk: BTreeSet<String> = fls
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, n)| format!("/{n}")))
        .filter(|n| n.starts_with("/huge/"))
        .collect();
    assert_eq!(tsk, names);
}
