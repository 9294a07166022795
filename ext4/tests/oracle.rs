//! Images made by the real mke2fs (`-d` populates from a source tree) in several
//! variants, read back whole and compared with oracles nobody here wrote: Sleuth Kit
//! `fls -r` (paths, inode numbers, types), debugfs `rdump` (contents, link targets),
//! debugfs `stat` (mode, owner, links, size, blocks), lstat and getfattr on the source
//! tree (times, xattrs, ACLs in the kernel's posix_acl_xattr form). `e2fsck -fn` must
//! pass on every image first.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use vmsnapfs_ext4::FileKind;

fn letter(k: FileKind) -> char {
    match k {
        FileKind::File => 'r',
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::Fifo => 'p',
        FileKind::CharDev => 'c',
        FileKind::BlockDev => 'b',
        FileKind::Socket => 's',
        FileKind::Unknown => '?',
    }
}

struct Made {
    _dir: tempfile::TempDir,
    src: std::path::PathBuf,
    img: std::path::PathBuf,
    features: TreeFeatures,
}

fn make(args: &str, many: usize, index_dirs: bool) -> Made {
    let dir = tmp();
    let src = dir.path().join("src");
    let features = build_tree(&src, many);
    let img = dir.path().join("img");
    run(&format!(
        "mke2fs -q -F {args} -d {} {} 96M",
        q(&src),
        q(&img)
    ));
    if index_dirs {
        // Rebuild directories as htrees (mke2fs -d links them linearly).
        let (code, out) = run_status(&format!("e2fsck -fyD {}", q(&img)));
        assert!(code <= 1, "e2fsck -fyD: {code}\n{out}");
    }
    let (code, out) = run_status(&format!("e2fsck -fn {}", q(&img)));
    assert_eq!(code, 0, "e2fsck -fn must pass on a fresh image:\n{out}");
    Made {
        _dir: dir,
        src,
        img,
        features,
    }
}

/// Every byte of the file placed on the image (whole, and a window from an odd offset
/// when it is big) reads back as `want`, debugfs's dump of it; the image is a file and
/// nothing was journaled, so nothing may be refused.
fn check_placed(v: &vmsnapfs_ext4::Volume, ino: u32, want: &[u8], path: &[u8]) {
    let name = String::from_utf8_lossy(path);
    let placed = |offset: u64, len: u64| {
        let mut p = vmsnapfs_io::Places::new();
        let n = v
            .place(ino, offset, len, &mut p)
            .unwrap_or_else(|| panic!("{name}: not placed"));
        assert_eq!(n, p.len(), "{name}");
        p.gather().unwrap()
    };
    assert!(
        placed(0, want.len() as u64 + 4096) == want,
        "{name}: placed"
    );
    if want.len() > 1 << 20 {
        let (at, len) = (12_345, (1 << 20) + 1);
        assert!(
            placed(at as u64, len as u64) == want[at..at + len],
            "{name}: placed at {at}"
        );
    }
}

fn check_variant(args: &str, index_dirs: bool) {
    if !e2fsprogs() {
        return;
    }
    let m = make(args, 3000, index_dirs);
    let v = open(&m.img);
    let info = v.info();
    assert!(!info.needs_recovery && !info.journal_replayed, "{info:?}");
    let ours = walk(&v);

    // Listing and types against Sleuth Kit, when installed. fls (TSK 4.x) does not
    // read htree directories (it lists none of their entries, or, for block-mapped
    // ones, parses dx_node bytes as entries), so those are checked against rdump below.
    // The parent is the longest prefix that is one of our directories: a name fls
    // made up from dx_node bytes may itself hold a '/' (hash bytes are random per
    // volume, so such a name comes and goes between runs).
    let is_htree = |p: &[u8]| -> bool {
        let parent = p
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, &c)| c == b'/')
            .map(|(i, _)| &p[..i])
            .find(|d| d.is_empty() || ours.get(*d).is_some_and(|n| n.kind == FileKind::Dir));
        let ino = match parent {
            Some([]) | None => v.root(),
            Some(d) => ours[d].ino,
        };
        v.stat(ino).unwrap().flags & 0x1000 != 0
    };
    if let Some(mut theirs) = have("fls").then(|| fls_opt(&m.img)).flatten() {
        theirs.retain(|p, _| !is_htree(p));
        for (p, t) in &theirs {
            let n = ours
                .get(p)
                .unwrap_or_else(|| panic!("fls has {}, we do not", String::from_utf8_lossy(p)));
            assert_eq!(
                (letter(n.kind), n.ino),
                *t,
                "fls {}",
                String::from_utf8_lossy(p)
            );
        }
        for (p, n) in &ours {
            if !is_htree(p) {
                assert!(
                    theirs.contains_key(p),
                    "we have {} ({n:?}), fls does not",
                    String::from_utf8_lossy(p)
                );
            }
        }
    }

    // Contents and link targets against debugfs rdump.
    let out = m.img.with_extension("rdump");
    let dumped = rdump(&m.img, &out);
    let (mut files, mut placed) = (0, 0);
    for (p, (k, size, sha, link)) in &dumped {
        let n = ours
            .get(p)
            .unwrap_or_else(|| panic!("{} missing", String::from_utf8_lossy(p)));
        assert_eq!(letter(n.kind), *k, "{}", String::from_utf8_lossy(p));
        match k {
            'r' => {
                let inline = v.stat(n.ino).unwrap().flags & 0x1000_0000 != 0;
                if inline && *size == 60 && have("icat") {
                    // debugfs 1.47.0 dumps an inline file's whole 60-byte i_block,
                    // not cut to i_size; Sleuth Kit's icat cuts it.
                    let c = std::process::Command::new("icat")
                        .arg(&m.img)
                        .arg(n.ino.to_string())
                        .output()
                        .unwrap();
                    assert_eq!(
                        (n.size, &n.sha),
                        (c.stdout.len() as u64, &sha256(&c.stdout)),
                        "icat {}",
                        String::from_utf8_lossy(p)
                    );
                } else {
                    assert_eq!(
                        (n.size, &n.sha),
                        (*size, sha),
                        "{}",
                        String::from_utf8_lossy(p)
                    );
                }
                if !inline {
                    check_placed(&v, n.ino, &std::fs::read(path_of(&out, p)).unwrap(), p);
                    placed += 1;
                }
                files += 1;
            }
            'l' => assert_eq!(
                n.link.as_ref(),
                link.as_ref(),
                "{}",
                String::from_utf8_lossy(p)
            ),
            _ => {}
        }
    }
    assert!(files > 3000, "{files} files compared");
    // Inline files are read from the inode; big.bin, sparse.bin, islands.bin never are.
    assert!(placed >= 3, "{placed} files placed");
    for (p, n) in &ours {
        assert!(
            n.kind != FileKind::File && n.kind != FileKind::Symlink && n.kind != FileKind::Dir
                || dumped.contains_key(p),
            "we have {}, rdump does not",
            String::from_utf8_lossy(p)
        );
    }

    // Metadata against the source tree mke2fs copied from.
    for (p, n) in &ours {
        if p.starts_with(b"/lost+found") {
            continue;
        }
        let sp = path_of(&m.src, p);
        let smd = std::fs::symlink_metadata(&sp).unwrap();
        let md = v.stat(n.ino).unwrap();
        let what = String::from_utf8_lossy(p);
        assert_eq!(md.mode as u32, smd.mode(), "mode {what}");
        assert_eq!((md.uid, md.gid), (smd.uid(), smd.gid()), "owner {what}");
        assert_eq!(md.nlink as u64, smd.nlink(), "nlink {what}");
        if n.kind != FileKind::Dir {
            assert_eq!(md.size, smd.size(), "size {what}");
        }
        if n.kind == FileKind::File {
            assert_eq!(
                n.sha,
                sha256(&std::fs::read(&sp).unwrap()),
                "content {what}"
            );
        }
        // mke2fs -d copies seconds (as u32) only.
        assert_eq!(md.mtime.secs, smd.mtime() as i32 as i64, "mtime {what}");
        if matches!(n.kind, FileKind::CharDev | FileKind::BlockDev) {
            assert_eq!(md.rdev, smd.rdev(), "rdev {what}");
        }
    }

    // A few inodes against debugfs stat.
    for p in [
        "/small.txt",
        "/big.bin",
        "/sparse.bin",
        "/sub/owned",
        "/sub",
        "/many",
        "/long-link",
    ] {
        let ino = v.lookup_path(p.as_bytes()).unwrap().unwrap();
        let md = v.stat(ino).unwrap();
        let s = debugfs_stat(&m.img, ino);
        assert_eq!(
            u16::from_str_radix(&s["Mode"], 8).unwrap(),
            md.mode & 0o7777,
            "{p}"
        );
        assert_eq!(s["User"], md.uid.to_string(), "{p}");
        assert_eq!(s["Group"], md.gid.to_string(), "{p}");
        assert_eq!(s["Links"], md.nlink.to_string(), "{p}");
        assert_eq!(s["Size"], md.size.to_string(), "{p}");
        assert_eq!(
            s["Blockcount"].parse::<u64>().unwrap() * 512,
            md.allocated,
            "{p}"
        );
    }

    // Xattrs and ACLs against getfattr on the source.
    if m.features.xattr || m.features.acl {
        for p in ["/small.txt", "/big.bin", "/sub", "/linked"] {
            let ino = v.lookup_path(p.as_bytes()).unwrap().unwrap();
            let ours: BTreeMap<String, Vec<u8>> = v.xattrs(ino).unwrap().into_iter().collect();
            let mut theirs = getfattr(&path_of(&m.src, p.as_bytes()));
            theirs.retain(|k, _| {
                k.starts_with("user.")
                    || k.starts_with("trusted.")
                    || k.starts_with("system.posix_acl")
            });
            assert_eq!(ours, theirs, "xattrs of {p}");
        }
        if m.features.acl {
            let ino = v.lookup_path(b"/sub").unwrap().unwrap();
            assert!(v
                .xattrs(ino)
                .unwrap()
                .iter()
                .any(|(k, _)| k == "system.posix_acl_default"));
        }
    }

    // Sparse file: holes are not data.
    let sp = v.lookup_path(b"/sparse.bin").unwrap().unwrap();
    let ranges = v.data_ranges(sp).unwrap();
    let data: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    assert!(
        data < 1 << 20,
        "sparse.bin has {data} bytes of data: {ranges:?}"
    );
    assert!(
        ranges.first().unwrap().start == 0 && ranges.last().unwrap().end == 40 << 20,
        "{ranges:?}"
    );
    assert!(ranges.iter().any(|r| r.contains(&(10 << 20))), "{ranges:?}");

    let isl = v.lookup_path(b"/islands.bin").unwrap().unwrap();
    let ranges = v.data_ranges(isl).unwrap();
    assert!(ranges.len() >= 400, "{} ranges", ranges.len());

    // Lookup, `.`, `..`, missing names.
    let many = v.lookup_path(b"/many").unwrap().unwrap();
    if index_dirs {
        assert_ne!(
            v.stat(many).unwrap().flags & 0x1000,
            0,
            "/many should be an htree"
        );
    }
    for i in [0usize, 1234, 2999] {
        let name = format!("entry-with-a-longish-name-{i:05}");
        let e = v.lookup(many, name.as_bytes()).unwrap().unwrap();
        let mut buf = [0u8; 16];
        let n = v.read(e.ino, 0, &mut buf).unwrap();
        assert_eq!(&buf[..n], format!("{i}\n").as_bytes());
    }
    assert!(v
        .lookup(many, b"entry-with-a-longish-name-03000")
        .unwrap()
        .is_none());
    // Every name of the big directory looks up to its own entry.
    let listing = v.read_dir(many).unwrap();
    assert_eq!(listing.len(), 3000);
    for e in &listing {
        assert_eq!(v.lookup(many, &e.name).unwrap().as_ref(), Some(e));
    }
    assert_eq!(v.lookup(many, b"..").unwrap().unwrap().ino, v.root());
    assert_eq!(v.lookup(many, b".").unwrap().unwrap().ino, many);
    assert_eq!(v.parent(v.root()).unwrap(), v.root());
    let deep = v
        .lookup_path(b"/deep/level00/level01/level02/level03/level04/level05/level06/level07/level08/level09/level10/level11/level12/level13/level14/level15/level16/level17/level18/level19/level20/level21/level22/level23/bottom.txt")
        .unwrap()
        .unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(v.read(deep, 0, &mut buf).unwrap(), 7);

    // Reads at odd offsets match the whole-file content, from several threads at once.
    let big = v.lookup_path(b"/big.bin").unwrap().unwrap();
    let want = std::fs::read(m.src.join("big.bin")).unwrap();
    let v = Arc::new(v);
    let want = Arc::new(want);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (v, want) = (v.clone(), want.clone());
            std::thread::spawn(move || {
                let mut off = t * 777;
                let mut buf = vec![0u8; 70_001];
                while off < want.len() as u64 {
                    let n = v.read(big, off, &mut buf).unwrap();
                    assert_eq!(&buf[..n], &want[off as usize..off as usize + n]);
                    off += n as u64 + 4093;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let _ = Path::new("/");
}

#[test]
fn ext4_default() {
    check_variant("-t ext4", true);
}

#[test]
fn ext4_1k_blocks() {
    check_variant("-t ext4 -b 1024", true);
}

#[test]
fn ext4_without_extents_uses_block_maps() {
    check_variant("-t ext4 -O ^extent,^64bit", true);
}

#[test]
fn ext2() {
    check_variant("-t ext2", false);
}

#[test]
fn ext3() {
    check_variant("-t ext3", true);
}

#[test]
fn ext4_inline_data() {
    check_variant("-t ext4 -O inline_data", true);
}

#[test]
fn ext4_64bit() {
    check_variant("-t ext4 -O 64bit", true);
}

#[test]
fn ext4_32bit_descriptors() {
    check_variant("-t ext4 -O ^64bit", true);
}

#[test]
fn ext4_meta_bg() {
    check_variant("-t ext4 -O meta_bg,^resize_inode", true);
}

#[test]
fn ext4_128_byte_inodes() {
    check_variant("-t ext4 -I 128", true);
}

#[test]
fn ext4_bigalloc() {
    check_variant("-t ext4 -O bigalloc -C 16384", true);
}

#[test]
fn ext2_without_filetype() {
    check_variant("-t ext2 -O ^filetype", false);
}

#[test]
fn ext4_sparse_super2_and_flex_bg() {
    // Backup superblocks in two groups only, metadata packed in flex groups of 4.
    check_variant("-t ext4 -O sparse_super2 -G 4", true);
}
