//! Guest volumes through a real mount, each compared with a reader nobody here wrote:
//! ntfs-3g for NTFS, mtools for FAT, on partitions cut from `qemu-img convert -O raw`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The raw bytes of partition `n` of disk `disk` of `vm`, as qemu-img reads the chain.
fn oracle_partition(vm: &str, disk: usize, n: u32) -> PathBuf {
    let st: serde_json::Value = {
        let m = Mount::new(fixtures(), &[]);
        let v =
            serde_json::from_slice(&fs::read(m.mp.join(vm).join("status.json")).unwrap()).unwrap();
        m.umount();
        v
    };
    let head = st["disks"][disk]["chain"][0].as_str().unwrap().to_owned();
    let raw = qemu_raw(Path::new(&head));
    let (start, len) = partition(&raw, n);
    let part = extract(&raw, start, len);
    fs::remove_file(raw).unwrap();
    part
}

fn getxattr(p: &Path, name: &str) -> String {
    run(Command::new("getfattr")
        .args(["--only-values", "-e", "hex", "-n", name])
        .arg(p))
}

struct Ntfs3g(PathBuf);

impl Ntfs3g {
    fn mount(part: &Path) -> Ntfs3g {
        require("ntfs-3g");
        let mp = scratch("ntfs3g");
        run(Command::new("ntfs-3g")
            .arg("-o")
            .arg("ro,streams_interface=xattr")
            .arg(part)
            .arg(&mp));
        Ntfs3g(mp)
    }
}

impl Drop for Ntfs3g {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3").arg("-u").arg(&self.0).status();
    }
}

fn files_with_xattrs(tree: &std::collections::BTreeMap<String, Entry>) -> Vec<&String> {
    tree.iter()
        .filter(|(_, e)| matches!(e, Entry::File { .. }))
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn ntfs_volume_matches_ntfs3g_including_streams_links_and_hard_links() {
    let part = oracle_partition("winvm", 0, 1);
    let oracle = Ntfs3g::mount(&part);
    let m = Mount::new(fixtures(), &[]);
    let vol = m.mp.join("winvm/volumes/disk0p1");
    let ours = walk(&vol);
    let theirs = walk(&oracle.0);
    assert!(theirs.len() > 50, "oracle saw too little: {}", theirs.len());
    assert_same_tree(&ours, &theirs);
    // The same disk in every qemu-img subformat gives the same files.
    for fmt in [
        "monolithicSparse",
        "monolithicFlat",
        "twoGbMaxExtentSparse",
        "twoGbMaxExtentFlat",
        "streamOptimized",
    ] {
        let sub = m.mp.join(format!("sub-{fmt}/volumes/disk0p1"));
        assert_same_tree(&walk(&sub), &theirs);
    }
    for f in files_with_xattrs(&theirs) {
        assert_eq!(
            user_xattrs(&vol.join(f)),
            user_xattrs(&oracle.0.join(f)),
            "xattrs of {f}"
        );
    }
    // ntfs-3g's system.ntfs_* attributes, byte for byte.
    for f in [
        "Users/Public/Documents/with-stream.txt",
        "Users/Public/Documents/big.bin",
        "Windows/System32",
        "sparse.dat",
    ] {
        for name in [
            "system.ntfs_attrib_be",
            "system.ntfs_times_be",
            "system.ntfs_crtime_be",
            "system.ntfs_acl",
        ] {
            assert_eq!(
                getxattr(&vol.join(f), name),
                getxattr(&oracle.0.join(f), name),
                "{name} of {f}"
            );
        }
    }
    let streams = user_xattrs(&vol.join("Users/Public/Documents/with-stream.txt"));
    assert_eq!(streams["user.summary"], [0, 1, 2, 3, 0xff, 0xfe]);
    assert_eq!(
        inode(&vol.join("Users/Public/link-a.txt")),
        inode(&vol.join("Users/Public/Documents/link-b.txt"))
    );
    assert_eq!(
        fs::metadata(vol.join("Users/Public/link-a.txt"))
            .map(|m| std::os::unix::fs::MetadataExt::nlink(&m))
            .unwrap(),
        2
    );
    // Both symlinks are relative and resolve inside the volume wherever it is mounted.
    assert!(vol.join("Users/Public/System32 junction/f1.dll").is_file());
    for l in ["Users/Public/hosts-rel", "Users/Public/Documents/hosts-abs"] {
        assert!(fs::read_link(vol.join(l)).unwrap().is_relative(), "{l}");
        assert_eq!(
            fs::read(vol.join(l)).unwrap(),
            b"127.0.0.1 localhost\r\n",
            "{l}"
        );
    }
    m.umount();
}

#[test]
fn rsync_and_tar_of_a_volume_reproduce_the_oracle_tree() {
    require("rsync");
    require("tar");
    let part = oracle_partition("winvm", 0, 1);
    let oracle = Ntfs3g::mount(&part);
    let theirs = walk(&oracle.0);
    let m = Mount::new(fixtures(), &[]);
    let vol = m.mp.join("winvm/volumes/disk0p1");

    let copy = scratch("rsync");
    run(Command::new("rsync")
        .arg("-aHX")
        .arg(format!("{}/", vol.display()))
        .arg(&copy));
    assert_same_tree(&walk(&copy), &theirs);
    assert_eq!(
        inode(&copy.join("Users/Public/link-a.txt")),
        inode(&copy.join("Users/Public/Documents/link-b.txt")),
        "rsync -H kept the hard link"
    );
    for f in files_with_xattrs(&theirs) {
        assert_eq!(
            user_xattrs(&copy.join(f)),
            user_xattrs(&oracle.0.join(f)),
            "{f}"
        );
    }

    let untar = scratch("untar");
    let tarball = scratch("tar").join("vol.tar");
    run(Command::new("tar")
        .args(["--xattrs", "--xattrs-include=user.*", "-cf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&vol)
        .arg("."));
    run(Command::new("tar")
        .args(["--xattrs", "--xattrs-include=user.*", "-xf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&untar));
    assert_same_tree(&walk(&untar), &theirs);
    let f = "Users/Public/Documents/with-stream.txt";
    assert_eq!(user_xattrs(&untar.join(f)), user_xattrs(&oracle.0.join(f)));
    m.umount();
}

#[test]
fn direct_io_all_guest_files_read_the_same_by_any_read_size_and_mmap() {
    require("python3");
    require("fincore");
    let part = oracle_partition("winvm", 0, 1);
    let oracle = Ntfs3g::mount(&part);
    let theirs = walk(&oracle.0);
    let m = Mount::new(fixtures(), &["direct_io=all,streams=windows"]);
    let vol = m.mp.join("winvm/volumes/disk0p1");
    assert_same_tree(&walk(&vol), &theirs);
    for f in [
        "Users/Public/Documents/big.bin",
        "sparse.dat",
        "Windows/System32/drivers/etc/hosts",
    ] {
        let (ours, want) = (vol.join(f), fs::read(oracle.0.join(f)).unwrap());
        assert!(read_in_pieces(&ours, 4097) == want, "{f}: 4097-byte reads");
        assert!(read_in_pieces(&ours, 3 << 20) == want, "{f}: 3 MiB reads");
        // Nothing of it went through the page cache (mmap below does, by design).
        assert_eq!(page_cached(&ours), 0, "{f}: page cache holds some of it");
        let blksize = std::os::unix::fs::MetadataExt::blksize(&fs::metadata(&ours).unwrap());
        // 1 MiB, or 512 KiB where a spliced reply's pipe holds only 1 MiB (requests
        // are then 768 KiB).
        assert!(
            blksize == 1 << 20 || blksize == 1 << 19,
            "{f}: st_blksize {blksize} does not ask for the biggest request"
        );
        assert_eq!(
            sha256_mmap(&ours),
            sha256_mmap(&oracle.0.join(f)),
            "{f}: mmap"
        );
    }
    // A named stream opened as a file takes the same path.
    let s = vol.join("Users/Public/Documents/with-stream.txt:Zone.Identifier");
    assert_eq!(read_in_pieces(&s, 5), b"[ZoneTransfer] ZoneId=3");
    assert_eq!(page_cached(&s), 0, "stream: page cache holds some of it");
    m.umount();
}

/// Big reads are answered by splicing the image file's own pages into the FUSE device
/// (the default as root): a guest file (data, sparse runs) and a whole disk arrive as
/// ntfs-3g and qemu-img read them, by any read size and through mmap, on the default
/// mount and under direct_io=all; `-o splice=off` writes every reply from our buffers
/// and serves the same bytes.
#[test]
fn spliced_reads_match_ntfs3g_and_qemu_img() {
    require("python3");
    let part = oracle_partition("winvm", 0, 1);
    let oracle = Ntfs3g::mount(&part);
    let st: serde_json::Value = {
        let m = Mount::new(fixtures(), &[]);
        let v = serde_json::from_slice(&fs::read(m.mp.join("winvm/status.json")).unwrap());
        m.umount();
        v.unwrap()
    };
    let raw = qemu_raw(Path::new(st["disks"][0]["chain"][0].as_str().unwrap()));
    let disk = fs::read(&raw).unwrap();
    for (opts, splices) in [("", true), ("direct_io=all", true), ("splice=off", false)] {
        let m = Mount::new(fixtures(), &[opts]);
        let vm = m.mp.join("winvm");
        let vol = vm.join("volumes/disk0p1");
        let mut counts = Vec::new();
        for f in ["Users/Public/Documents/big.bin", "sparse.dat"] {
            let before = spliced(&m.mp);
            let (ours, want) = (vol.join(f), fs::read(oracle.0.join(f)).unwrap());
            assert!(
                read_in_pieces(&ours, 1 << 20) == want,
                "{opts}: {f}: 1 MiB reads"
            );
            assert!(
                read_in_pieces(&ours, 4097) == want,
                "{opts}: {f}: 4097-byte reads"
            );
            assert_eq!(
                sha256_mmap(&ours),
                sha256_mmap(&oracle.0.join(f)),
                "{opts}: {f}"
            );
            counts.push((f, spliced(&m.mp) - before));
        }
        let before = spliced(&m.mp);
        let flat = vm.join("disks/disk0-flat.vmdk");
        assert!(
            read_in_pieces(&flat, 1 << 20) == disk,
            "{opts}: disk0 image"
        );
        assert!(
            read_in_pieces(&flat, 3 << 20) == disk,
            "{opts}: disk0 image, 3 MiB reads"
        );
        counts.push(("disk0-flat.vmdk", spliced(&m.mp) - before));
        println!("{opts:?}: read replies spliced: {counts:?}");
        for (f, n) in counts {
            // big.bin is 300 000 bytes of data, one or two big requests whatever the
            // mode; sparse.dat and the disk image mix data with holes.
            assert_eq!(n > 0, splices, "{opts}: {f}: {n} replies spliced");
        }
        m.umount();
    }
    fs::remove_file(raw).unwrap();
}

/// FAT and exFAT files splice too: read whole in one request under direct_io=all they
/// are spliced from the sparse chain's grain pages and arrive as mtools (FAT16 and
/// FAT32 on the chain's newest link) and Sleuth Kit (exFAT) read them; on the default
/// mount the same bytes, and with `-o splice=off` none spliced.
#[test]
fn fat_and_exfat_files_splice_as_mtools_and_sleuth_kit_read_them() {
    require("mcopy");
    require("tsk_recover");
    let mut files = Vec::new();
    for (n, f) in [(1, "DOCS/BIG.BIN"), (5, "DOCS/BIG.BIN")] {
        let out = scratch("mcopy").join("BIG.BIN");
        let part = oracle_partition("winvm", 1, n);
        run(Command::new("mcopy")
            .arg("-n")
            .arg("-i")
            .arg(&part)
            .arg(format!("::{f}"))
            .arg(&out));
        files.push((format!("disk1p{n}"), f, out));
    }
    let tsk = scratch("tsk");
    run(Command::new("tsk_recover")
        .arg("-a")
        .arg(oracle_partition("winvm", 1, 6))
        .arg(&tsk));
    let jpg = "Photos/2024/IMG_0001.JPG";
    files.push(("disk1p6".into(), jpg, tsk.join(jpg)));
    for (opts, splices) in [
        ("direct_io=all", Some(true)),
        ("", None),
        ("splice=off", Some(false)),
    ] {
        let m = Mount::new(fixtures(), &[opts]);
        let vols = m.mp.join("winvm/volumes");
        for (vol, f, oracle) in &files {
            let before = spliced(&m.mp);
            let ours = vols.join(vol).join(f);
            let want = fs::read(oracle).unwrap();
            assert!(want.len() > 60_000, "{vol}/{f}: {} bytes", want.len());
            assert!(read_in_pieces(&ours, 1 << 20) == want, "{opts}: {vol}/{f}");
            let n = spliced(&m.mp) - before;
            assert!(
                read_in_pieces(&ours, 4097) == want,
                "{opts}: {vol}/{f}: 4097"
            );
            assert_eq!(sha256_mmap(&ours), sha256_file(oracle), "{opts}: {vol}/{f}");
            println!("{opts:?}: {vol}/{f}: {n} replies spliced");
            if let Some(s) = splices {
                assert_eq!(n > 0, s, "{opts}: {vol}/{f}: {n} replies spliced");
            }
        }
        m.umount();
    }
}

/// mtools' own copy of a FAT volume (mcopy -s) as the oracle tree.
fn mtools_tree(part: &Path) -> std::collections::BTreeMap<String, Entry> {
    require("mcopy");
    let out = scratch("mcopy");
    run(Command::new("mcopy")
        .args(["-s", "-n", "-i"])
        .arg(part)
        .arg("::*")
        .arg(&out));
    walk(&out)
}

#[test]
fn fat_volumes_match_mtools_including_the_newest_chain_link() {
    let m = Mount::new(fixtures(), &[]);
    for (vm, disk, n, name) in [
        ("winvm", 0, 2, "disk0p2"),
        ("winvm", 1, 1, "disk1p1"),
        ("winvm", 1, 5, "disk1p5"),
    ] {
        let part = oracle_partition(vm, disk, n);
        let theirs = mtools_tree(&part);
        assert!(theirs.contains_key("DOCS/BIG.BIN"), "{name}: {theirs:?}");
        let ours = walk(&m.mp.join(vm).join("volumes").join(name));
        assert_same_tree(&ours, &theirs);
    }
    // dosvm: a whole-disk FAT16 in a streamOptimized image.
    let raw = qemu_raw(&fixtures().join("dosvm/dosvm.vmdk"));
    assert_same_tree(&walk(&m.mp.join("dosvm/volumes/disk0")), &mtools_tree(&raw));
    m.umount();
}

#[test]
fn exfat_volume_matches_sleuth_kit() {
    require("tsk_recover");
    let part = oracle_partition("winvm", 1, 6);
    let out = scratch("tsk");
    run(Command::new("tsk_recover").arg("-a").arg(&part).arg(&out));
    let files = |t: std::collections::BTreeMap<String, Entry>| {
        t.into_iter()
            .filter(|(_, e)| matches!(e, Entry::File { .. }))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    // Sleuth Kit also shows its virtual metadata files ($ALLOC_BITMAP, $UPCASE_TABLE).
    let mut theirs = files(walk(&out));
    theirs.retain(|k, _| !k.starts_with('$'));
    assert!(
        theirs.contains_key("Photos/2024/IMG_0001.JPG"),
        "{theirs:?}"
    );
    let m = Mount::new(fixtures(), &[]);
    let vm = m.mp.join("winvm");
    let vol = vm.join("volumes/disk1p6");
    assert_same_tree(&files(walk(&vol)), &theirs);
    // tsk_recover only writes files; folders are checked here.
    assert!(vol.join("Empty Folder").is_dir());
    let st: serde_json::Value =
        serde_json::from_slice(&fs::read(vm.join("status.json")).unwrap()).unwrap();
    let v = st["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "disk1p6")
        .unwrap()
        .clone();
    assert_eq!(v["fs"], "exfat");
    assert_eq!(v["label"], "EXDATA");
    m.umount();
}

#[test]
fn windows_stream_names_and_case_insensitive_lookup() {
    let m = Mount::new(fixtures(), &["streams=windows,case_insensitive"]);
    let vol = m.mp.join("winvm/volumes/disk0p1");
    assert_eq!(
        fs::read(vol.join("Users/Public/Documents/with-stream.txt:Zone.Identifier")).unwrap(),
        b"[ZoneTransfer] ZoneId=3"
    );
    assert_eq!(
        fs::read(vol.join("windows/system32/DRIVERS/etc/HOSTS")).unwrap(),
        b"127.0.0.1 localhost\r\n"
    );
    m.umount();
    let m = Mount::new(fixtures(), &[]);
    let vol = m.mp.join("winvm/volumes/disk0p1");
    assert!(!vol
        .join("Users/Public/Documents/with-stream.txt:Zone.Identifier")
        .exists());
    m.umount();
}
