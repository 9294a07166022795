//! Every subformat qemu-img writes, on a partitioned disk with data at unaligned offsets,
//! and snapshot chains made by `qemu-img create -b` + qemu-io: our reads must equal
//! `qemu-img convert -O raw`.

mod common;

use std::path::Path;

use common::*;
use vmsnapfs_io::ReadAt;
use vmsnapfs_vmdk::{Disk, Error};

/// A raw disk with a GPT (MBR when small) laid out by sfdisk, qemu-io patterns at odd offsets, and random
/// runs written directly.
fn make_raw(dir: &Path, name: &str, size_mib: u64, seed: u64) {
    run(
        dir,
        "qemu-img",
        &["create", "-q", "-f", "raw", name, &format!("{size_mib}M")],
    );
    let table = if size_mib >= 32 {
        "label: gpt\n,8M,L\n,16M,L\n,,L\n"
    } else {
        "label: dos\n,1M,L\n,,L\n"
    };
    run_stdin(dir, "sfdisk", &["-q", name], table);
    let size = size_mib << 20;
    let p = |a: u64| (a % size).to_string();
    for (pat, off, len) in [
        (0x5au8, 12345u64, 77777u64),
        (0xa5, 3 << 20, 65536 * 3 + 1),
        (0x11, size / 2 + 511, 1_000_001),
        (0x77, size - 70000, 70000),
    ] {
        let cmd = format!("write -P {pat:#x} {} {len}", p(off));
        run(dir, "qemu-io", &["-f", "raw", "-c", &cmd, name]);
    }
    let mut rng = Rng(seed);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(name))
        .unwrap();
    use std::os::unix::fs::FileExt;
    for _ in 0..12 {
        let len = rng.below(300_000) as usize + 1;
        let off = rng.below(size - len as u64);
        let mut b = vec![0u8; len];
        rng.fill(&mut b);
        f.write_all_at(&b, off).unwrap();
    }
}

#[test]
fn every_qemu_subformat_matches_qemu_raw() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    make_raw(dir, "src.raw", 72, 1);
    for sub in [
        "monolithicSparse",
        "monolithicFlat",
        "twoGbMaxExtentSparse",
        "twoGbMaxExtentFlat",
        "streamOptimized",
    ] {
        let name = format!("{sub}.vmdk");
        run(
            dir,
            "qemu-img",
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "vmdk",
                "-o",
                &format!("subformat={sub}"),
                "src.raw",
                &name,
            ],
        );
        let expected = qemu_raw(dir, &name);
        let disk = Disk::open_path(&dir.join(&name)).unwrap_or_else(|e| panic!("{sub}: {e}"));
        assert_eq!(disk.create_type(), Some(sub));
        assert_eq!(disk.chain(), [name.as_str()]);
        check_disk(&disk, &expected, sub);
        check_map(dir, &name, &disk);
        if sub == "streamOptimized" {
            // Small sequential reads: served from inflated-grain cache, must still be exact.
            let mut buf = vec![0u8; 4096 + 3];
            let mut off = 0u64;
            while off + buf.len() as u64 <= 8 << 20 {
                disk.read_at(off, &mut buf).unwrap();
                assert!(
                    buf[..] == expected[off as usize..off as usize + buf.len()],
                    "stream small read at {off}"
                );
                off += buf.len() as u64;
            }
        }
    }
}

/// Past 2 GiB the split subformats have several extent files; reads must cross them.
#[test]
fn split_subformats_span_extent_files() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let size: u64 = (2 << 30) + (8 << 20);
    run(
        dir,
        "qemu-img",
        &["create", "-q", "-f", "raw", "big.raw", &size.to_string()],
    );
    let boundary = 4_192_256u64 * 512; // qemu's extent size for twoGbMaxExtent*
    for (pat, off, len) in [
        (0x42u8, boundary - 100_000, 300_000u64),
        (0x24, 5, 700),
        (0x99, size - 4097, 4097),
    ] {
        run(
            dir,
            "qemu-io",
            &[
                "-f",
                "raw",
                "-c",
                &format!("write -P {pat:#x} {off} {len}"),
                "big.raw",
            ],
        );
    }
    for sub in ["twoGbMaxExtentSparse", "twoGbMaxExtentFlat"] {
        let name = format!("{sub}.vmdk");
        run(
            dir,
            "qemu-img",
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "vmdk",
                "-o",
                &format!("subformat={sub}"),
                "big.raw",
                &name,
            ],
        );
        let disk = Disk::open_path(&dir.join(&name)).unwrap();
        assert_eq!(disk.capacity(), size);
        let ranges = disk.allocated_ranges().unwrap();
        let qemu = run(dir, "qemu-io", &["-f", "vmdk", "-c", "read -v 0 1", &name]);
        assert!(!qemu.is_empty());
        // Compare the written areas and a few untouched ones byte for byte with qemu-io's view
        // via a raw conversion of just those windows (qemu-img dd).
        for (off, len) in [
            (boundary - 200_000, 500_000u64),
            (0, 8192),
            (size - 65536, 65536),
            (1 << 30, 4096),
        ] {
            let out = format!("w{off}.raw");
            run(
                dir,
                "qemu-img",
                &[
                    "dd",
                    "-f",
                    "vmdk",
                    "-O",
                    "raw",
                    "bs=512",
                    &format!("skip={}", off / 512),
                    &format!("count={}", len / 512),
                    &format!("if={name}"),
                    &format!("of={out}"),
                ],
            );
            let exp = std::fs::read(dir.join(&out)).unwrap();
            let mut ours = vec![0u8; exp.len()];
            disk.read_at(off, &mut ours).unwrap();
            assert!(ours == exp, "{sub}: window at {off}");
        }
        if sub == "twoGbMaxExtentSparse" {
            let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
            assert!(
                total < 8 << 20,
                "{sub}: sparse disk reports {total} allocated bytes: {ranges:?}"
            );
            assert!(ranges
                .iter()
                .any(|r| r.start < boundary && r.end > boundary));
        }
    }
}

#[test]
fn chains_three_deep_match_qemu() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let io = |img: &str, cmds: &[&str]| qemu_io(dir, "vmdk", img, cmds);
    run(
        dir,
        "qemu-img",
        &["create", "-q", "-f", "vmdk", "base.vmdk", "48M"],
    );
    io(
        "base.vmdk",
        &[
            "write -P 0x11 0 10M",
            "write -P 0x12 12345 555555",
            "write -P 0x13 40M 3M",
        ],
    );
    qemu_img(
        dir,
        "create -q -f vmdk -o zeroed_grain=on -b base.vmdk -F vmdk mid.vmdk",
    );
    io(
        "mid.vmdk",
        &[
            "write -P 0x21 1M 100000",
            "write -z 4M 1M",
            "write -z 41M 64k",
            "write -P 0x22 20M 777",
        ],
    );
    qemu_img(
        dir,
        "create -q -f vmdk -o subformat=twoGbMaxExtentSparse -b mid.vmdk -F vmdk top.vmdk",
    );
    io(
        "top.vmdk",
        &[
            "write -P 0x31 4M 4096",
            "write -P 0x32 2M 3333",
            "write -z 40M 128k",
            "write -P 0x33 47M 1M",
        ],
    );
    let expected = qemu_raw(dir, "top.vmdk");
    let disk = Disk::open_path(&dir.join("top.vmdk")).unwrap();
    assert_eq!(disk.chain(), ["top.vmdk", "mid.vmdk", "base.vmdk"]);
    check_disk(&disk, &expected, "chain");
    check_map(dir, "top.vmdk", &disk);

    // A parent in another folder, referenced relative to the child's folder.
    std::fs::create_dir(dir.join("sub")).unwrap();
    qemu_img(
        dir,
        "create -q -f vmdk -b ../top.vmdk -F vmdk sub/head.vmdk",
    );
    io("sub/head.vmdk", &["write -P 0x44 100 1000"]);
    let expected = qemu_raw(dir, "sub/head.vmdk");
    let disk = Disk::open_path(&dir.join("sub/head.vmdk")).unwrap();
    assert_eq!(disk.chain().len(), 4);
    check_disk(&disk, &expected, "chain from subfolder");

    // parentCID must match the parent's CID: edit the top's separate descriptor.
    let text = std::fs::read_to_string(dir.join("top.vmdk")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("parentCID="))
        .unwrap()
        .to_string();
    let bad = if line.ends_with('0') {
        "parentCID=00000001"
    } else {
        "parentCID=00000000"
    };
    std::fs::write(dir.join("bad.vmdk"), text.replace(&line, bad)).unwrap();
    let e = Disk::open_path(&dir.join("bad.vmdk")).unwrap_err();
    assert!(matches!(e, Error::CidMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains("bad.vmdk") && e.to_string().contains("mid.vmdk"),
        "{e}"
    );
}

#[test]
fn parent_loops_and_missing_parents_fail_cleanly() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    std::fs::write(dir.join("flat.bin"), vec![7u8; 4096]).unwrap();
    let desc = |cid: &str, pcid: &str, parent: &str| {
        format!("# Disk DescriptorFile\nversion=1\nCID={cid}\nparentCID={pcid}\ncreateType=\"monolithicFlat\"\nparentFileNameHint=\"{parent}\"\nRW 8 FLAT \"flat.bin\" 0\n")
    };
    std::fs::write(dir.join("a.vmdk"), desc("0000000a", "0000000b", "b.vmdk")).unwrap();
    std::fs::write(dir.join("b.vmdk"), desc("0000000b", "0000000a", "a.vmdk")).unwrap();
    let e = Disk::open_path(&dir.join("a.vmdk")).unwrap_err();
    assert!(matches!(e, Error::ParentLoop { .. }), "{e}");
    std::fs::write(
        dir.join("c.vmdk"),
        desc("0000000c", "0000000d", "/vmfs/volumes/ds/vm/d.vmdk"),
    )
    .unwrap();
    let e = Disk::open_path(&dir.join("c.vmdk")).unwrap_err();
    assert!(
        e.to_string().contains("d.vmdk") && e.to_string().contains("not found"),
        "{e}"
    );
    // An ESXi absolute hint falls back to the basename next to the child.
    std::fs::write(dir.join("d.vmdk"), desc("0000000d", "ffffffff", "")).unwrap();
    let disk = Disk::open_path(&dir.join("c.vmdk")).unwrap();
    assert_eq!(disk.chain().len(), 2);
    // ZERO extents are honoured, and RDM is refused by name.
    std::fs::write(dir.join("z.vmdk"), "# Disk DescriptorFile\r\nCID=1\r\nparentCID=ffffffff\r\ncreateType=\"monolithicFlat\"\r\nRW 8 FLAT \"flat.bin\" 0\r\nRW 16 ZERO\r\nRW 8 FLAT \"flat.bin\" 0\r\n").unwrap();
    let disk = Disk::open_path(&dir.join("z.vmdk")).unwrap();
    let all = read_all(&disk);
    assert_eq!(all.len(), 16384);
    assert!(
        all[..4096].iter().all(|&b| b == 7)
            && all[4096..12288].iter().all(|&b| b == 0)
            && all[12288..].iter().all(|&b| b == 7)
    );
    assert_eq!(
        disk.allocated_ranges().unwrap(),
        vec![0..4096, 12288..16384]
    );
    std::fs::write(
        dir.join("rdm.vmdk"),
        "CID=1\ncreateType=\"vmfsRawDeviceMap\"\nRW 8 VMFSRDM \"rdm-rdm.vmdk\"\n",
    )
    .unwrap();
    let e = Disk::open_path(&dir.join("rdm.vmdk")).unwrap_err();
    assert_eq!(e.to_string(), "rdm.vmdk: raw device mapping not supported");
}

/// A renamed monolithicSparse still opens: the extent is the file itself.
#[test]
fn renamed_monolithic_sparse_opens() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    run(
        dir,
        "qemu-img",
        &["create", "-q", "-f", "vmdk", "orig.vmdk", "4M"],
    );
    run(
        dir,
        "qemu-io",
        &["-f", "vmdk", "-c", "write -P 0x3c 1000 5000", "orig.vmdk"],
    );
    let expected = qemu_raw(dir, "orig.vmdk");
    std::fs::rename(dir.join("orig.vmdk"), dir.join("renamed.vmdk")).unwrap();
    let disk = Disk::open_path(&dir.join("renamed.vmdk")).unwrap();
    check_disk(&disk, &expected, "renamed");
}

/// A streamOptimized file whose header defers the grain directory to the footer (as VMware
/// writes them): built from a qemu-made file by appending footer marker, footer and
/// end-of-stream marker, then pointing the header at the footer. qemu reads it too.
#[test]
fn stream_footer_replaces_header() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    make_raw(dir, "s.raw", 8, 3);
    qemu_img(
        dir,
        "convert -f raw -O vmdk -o subformat=streamOptimized s.raw s.vmdk",
    );
    let expected = qemu_raw(dir, "s.vmdk");
    let mut f = std::fs::read(dir.join("s.vmdk")).unwrap();
    assert_eq!(f.len() % 512, 0);
    let header: Vec<u8> = f[..512].to_vec();
    let mut marker = [0u8; 512];
    marker[0] = 1; // one sector of footer follows
    marker[12] = 3; // MARKER_FOOTER
    f.extend_from_slice(&marker);
    f.extend_from_slice(&header);
    f.extend_from_slice(&[0u8; 512]); // end-of-stream marker
    f[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(dir.join("footer.vmdk"), &f).unwrap();
    assert!(
        qemu_raw(dir, "footer.vmdk") == expected,
        "qemu-img reads the footer variant differently"
    );
    let disk = Disk::open_path(&dir.join("footer.vmdk")).unwrap();
    check_disk(&disk, &expected, "stream with footer");
    // Without a valid footer the header's GD_AT_END cannot be followed.
    let n = f.len();
    f[n - 1024 - 512 + 12] = 2;
    std::fs::write(dir.join("nofooter.vmdk"), &f).unwrap();
    let e = Disk::open_path(&dir.join("nofooter.vmdk")).unwrap_err();
    assert!(e.to_string().contains("footer"), "{e}");
}

/// qemu writes a redundant grain directory; when the primary cannot be read we use it.
#[test]
fn redundant_grain_directory_is_used() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    run(
        dir,
        "qemu-img",
        &["create", "-q", "-f", "vmdk", "r.vmdk", "16M"],
    );
    run(
        dir,
        "qemu-io",
        &["-f", "vmdk", "-c", "write -P 0x5e 333 3333333", "r.vmdk"],
    );
    let expected = qemu_raw(dir, "r.vmdk");
    let mut f = std::fs::read(dir.join("r.vmdk")).unwrap();
    let flags = u32::from_le_bytes(f[8..12].try_into().unwrap());
    assert!(flags & 2 != 0, "qemu no longer sets the redundant-GD flag");
    f[56..64].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(dir.join("r2.vmdk"), &f).unwrap();
    let disk = Disk::open_path(&dir.join("r2.vmdk")).unwrap();
    check_disk(&disk, &expected, "redundant GD");
}

/// ESXi thin and eager-zeroed-thick disks are VMFS extents under other createTypes; qemu
/// refuses those createTypes, so the flat file itself (a raw image) is the oracle.
#[test]
fn vmfs_thin_and_eager_zeroed_thick() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    make_raw(dir, "x-flat.vmdk", 4, 9);
    let raw = std::fs::read(dir.join("x-flat.vmdk")).unwrap();
    for ct in ["vmfsThin", "vmfsEagerZeroedThick", "vmfs"] {
        let d = format!("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\nparentCID=ffffffff\nisNativeSnapshot=\"no\"\ncreateType=\"{ct}\"\n\n# Extent description\nRW 8192 VMFS \"x-flat.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.thinProvisioned = \"1\"\n");
        std::fs::write(dir.join("x.vmdk"), d).unwrap();
        let disk = Disk::open_path(&dir.join("x.vmdk")).unwrap();
        assert_eq!(disk.create_type(), Some(ct));
        assert_eq!(
            disk.descriptor().unwrap().get("ddb.thinProvisioned"),
            Some("1")
        );
        check_disk(&disk, &raw, ct);
    }
}

#[test]
fn disk_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Disk>();
    check::<vmsnapfs_vmdk::LocalResolver>();
}

/// Small sequential reads of a streamOptimized disk reuse the inflated grain: counting the
/// reads that reach the file shows each grain is fetched once, not once per small read.
#[test]
fn stream_small_reads_inflate_each_grain_once() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use vmsnapfs_io::FileSource;
    use vmsnapfs_vmdk::Resolver;

    struct Counting {
        inner: FileSource,
        reads: Arc<AtomicU64>,
    }
    impl ReadAt for Counting {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.inner.read_at(offset, buf)
        }
        fn size(&self) -> u64 {
            self.inner.size()
        }
    }
    struct R(std::path::PathBuf, Arc<AtomicU64>);
    impl Resolver for R {
        fn open(&self, name: &str) -> std::io::Result<Arc<dyn ReadAt>> {
            Ok(Arc::new(Counting {
                inner: FileSource::open(&self.0.join(name))?,
                reads: self.1.clone(),
            }))
        }
    }

    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    make_raw(dir, "s.raw", 4, 5);
    run(
        dir,
        "qemu-io",
        &["-f", "raw", "-c", "write -P 0x6b 0 1M", "s.raw"],
    );
    qemu_img(
        dir,
        "convert -f raw -O vmdk -o subformat=streamOptimized s.raw s.vmdk",
    );
    let expected = qemu_raw(dir, "s.vmdk");
    let reads = Arc::new(AtomicU64::new(0));
    let disk = Disk::open(Arc::new(R(dir.to_path_buf(), reads.clone())), "s.vmdk").unwrap();
    let before = reads.load(Ordering::Relaxed);
    let mut buf = [0u8; 4096];
    for off in (0..1 << 20).step_by(4096) {
        disk.read_at(off, &mut buf).unwrap();
        assert!(buf[..] == expected[off as usize..off as usize + 4096]);
    }
    // 256 small reads over 16 grains of 64 KiB: one table load plus one fetch per grain.
    let n = reads.load(Ordering::Relaxed) - before;
    assert!(
        n <= 16 + 4,
        "{n} file reads for 256 small reads of 16 grains"
    );
}
