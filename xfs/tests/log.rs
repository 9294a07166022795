//! The journal's state, against xfs_logprint -t: a fresh volume is clean; an unmount
//! record that no longer says so, or a later record the tail does not pass, is dirty.
mod common;

use common::*;

fn log_offset(img: &Image) -> usize {
    let vol = img.open();
    let sb = vol.superblock();
    let agno = sb.logstart >> sb.agblklog;
    let agbno = sb.logstart & ((1 << sb.agblklog) - 1);
    ((agno * sb.agblocks as u64 + agbno) * sb.blocksize as u64) as usize
}

fn tree() -> Tree {
    let mut t = Tree::new();
    t.insert(
        "f".into(),
        Want::File {
            mode: 0o644,
            uid: 0,
            gid: 0,
            data: bytes(10_000, 3),
        },
    );
    t
}

fn check(args: &[&str]) {
    if !have_tools() {
        return;
    }
    let img = Image::build(&tree(), 300, args, &[]);
    assert!(!img.open().info().log_dirty);
    assert_eq!(img.logprint_dirty(), Some(false));
    let clean = img.bytes();
    let log = log_offset(&img);
    assert_eq!(clean[log..log + 4], [0xfe, 0xed, 0xba, 0xbe]);

    // 1. The lone record's op is no longer an unmount record.
    let mut raw = clean.clone();
    raw[log + 512 + 9] &= !0x20;
    std::fs::write(&img.path, &raw).unwrap();
    assert_eq!(img.logprint_dirty(), Some(true));
    let vol = img.open();
    assert!(vol.info().log_dirty);
    // Files are still served as on disk.
    let f = vol.lookup(vol.root(), b"f").unwrap().ino;
    let mut buf = vec![0u8; 10_000];
    assert_eq!(vol.read(f, 0, &mut buf).unwrap(), 10_000);
    assert_eq!(buf, bytes(10_000, 3));

    // 2. A second record of the same cycle after the unmount record that is not an
    //    unmount record: the head moved past the clean point, the last record counts.
    let mut raw = clean.clone();
    let (hdr, rec) = raw.split_at_mut(log + 1024);
    rec[..1024].copy_from_slice(&hdr[log..log + 1024]);
    rec[16..24].copy_from_slice(&((1u64 << 32) | 2).to_be_bytes()); // h_lsn 1:2
    rec[36..40].copy_from_slice(&0u32.to_be_bytes()); // h_prev_block 0
    rec[512 + 9] &= !0x20;
    std::fs::write(&img.path, &raw).unwrap();
    assert_eq!(img.logprint_dirty(), Some(true));
    assert!(img.open().info().log_dirty);

    // 3. The same second record, but an unmount record: clean again (the last record
    //    decides, whatever its tail LSN).
    let mut raw = clean.clone();
    let (hdr, rec) = raw.split_at_mut(log + 1024);
    rec[..1024].copy_from_slice(&hdr[log..log + 1024]);
    rec[16..24].copy_from_slice(&((1u64 << 32) | 2).to_be_bytes());
    std::fs::write(&img.path, &raw).unwrap();
    assert_eq!(img.logprint_dirty(), Some(false));
    assert!(!img.open().info().log_dirty);
}

#[test]
fn log_state_v5() {
    check(&[]);
}

#[test]
fn log_state_v4() {
    check(&["-m", V4_META]);
}
