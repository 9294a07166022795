//! Placing a disk's bytes in its files: a snapshot chain written by qemu-img/qemu-io,
//! whose pieces, read back from the files they name, must equal qemu-img's own raw
//! conversion of the chain; compressed grains cannot be placed.

mod common;

use common::*;
use vmsnapfs_io::{Piece, Places, ReadAt};
use vmsnapfs_vmdk::Disk;

#[test]
fn a_sparse_chain_places_every_byte_where_qemu_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    qemu_img(dir, "create -q -f vmdk -o zeroed_grain=on base.vmdk 24M");
    qemu_io(
        dir,
        "vmdk",
        "base.vmdk",
        &[
            "write -P 0x11 0 6M",
            "write -P 0x12 7M 100k",
            "write -P 0x13 12M 4M",
            "write -z 13M 128k",
        ],
    );
    qemu_img(
        dir,
        "create -q -f vmdk -F vmdk -b base.vmdk -o zeroed_grain=on snap.vmdk",
    );
    qemu_io(
        dir,
        "vmdk",
        "snap.vmdk",
        &[
            "write -P 0x21 1M 192k",
            "write -P 0x22 5M 2M",
            "write -z 14M 64k",
            "write -P 0x23 20M 65k",
        ],
    );
    let want = qemu_raw(dir, "snap.vmdk");
    let disk = Disk::open_path(&dir.join("snap.vmdk")).unwrap();
    assert_eq!(disk.size(), want.len() as u64);

    let mut rng = Rng(7);
    let mut p = Places::new();
    let mut ranges = vec![(0, want.len() as u64), (0, 1), (1 << 20, 1 << 20)];
    for _ in 0..300 {
        let len = 1 + rng.below(3 << 20);
        let at = rng.below(want.len() as u64 - len);
        ranges.push((at, len));
    }
    for (at, len) in ranges {
        p.clear();
        assert!(
            disk.place(at, len, &mut p),
            "{len} bytes at {at} not placed"
        );
        assert_eq!(p.len(), len);
        let got = p.gather().unwrap();
        assert!(
            got == want[at as usize..(at + len) as usize],
            "{len} bytes at {at} placed elsewhere than qemu reads them"
        );
    }
    // A whole read of the disk merges each file's contiguous grains into few pieces.
    p.clear();
    assert!(disk.place(0, want.len() as u64, &mut p));
    assert!(p.pieces().len() < 40, "{} pieces", p.pieces().len());
    assert!(
        !disk.place(want.len() as u64 - 10, 11, &mut p),
        "past the end"
    );
    assert!(!disk.place(u64::MAX - 1, 4, &mut p));
}

#[test]
fn compressed_grains_are_not_placed_but_holes_beside_them_are() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    qemu_img(dir, "create -q -f raw r.img 8M");
    qemu_io(dir, "raw", "r.img", &["write -P 0x5a 1M 1M"]);
    qemu_img(
        dir,
        "convert -q -f raw -O vmdk -o subformat=streamOptimized r.img s.vmdk",
    );
    let disk = Disk::open_path(&dir.join("s.vmdk")).unwrap();
    let mut p = Places::new();
    assert!(!disk.place(1 << 20, 4096, &mut p));
    p.clear();
    assert!(disk.place(4 << 20, 1 << 20, &mut p));
    assert!(matches!(p.pieces(), [Piece::Zero(n)] if *n == 1 << 20));
}
