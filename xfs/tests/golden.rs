//! Whole trees built by mkfs.xfs -p, read back and compared with what the protofile asked
//! for and with xfs_db's view of every directory and inode.
mod common;

use common::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use vmsnapfs_xfs::{FileKind, Volume};

fn read_all(vol: &Volume, ino: u64, size: u64) -> Vec<u8> {
    let mut out = vec![0u8; size as usize];
    let mut pos = 0;
    // odd chunk sizes cross block and extent boundaries
    while pos < out.len() {
        let end = (pos + 65537).min(out.len());
        let n = vol.read(ino, pos as u64, &mut out[pos..end]).unwrap();
        assert!(n > 0);
        pos += n;
    }
    let mut extra = [0u8; 8];
    assert_eq!(vol.read(ino, size, &mut extra).unwrap(), 0);
    out
}

/// path → inode, walking from the root with read_dir (and checking lookup agrees).
fn walk(vol: &Volume) -> BTreeMap<String, (u64, FileKind)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(String::new(), vol.root())];
    while let Some((prefix, dir)) = stack.pop() {
        for e in vol.read_dir(dir).unwrap() {
            let name = String::from_utf8(e.name.clone()).unwrap();
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            assert_eq!(vol.lookup(dir, &e.name).unwrap().ino, e.ino);
            assert_eq!(vol.stat(e.ino).unwrap().kind, e.kind, "{path}");
            if e.kind == FileKind::Dir {
                assert_eq!(vol.parent(e.ino).unwrap(), dir);
                stack.push((path.clone(), e.ino));
            }
            out.insert(path, (e.ino, e.kind));
        }
    }
    out
}

fn check_tree(img: &Image, tree: &Tree, v5: bool) {
    img.repair_ok().expect("xfs_repair -n");
    let vol = img.open();
    let on_file = img.open_file();
    let info = vol.info();
    assert_eq!(info.version, if v5 { 5 } else { 4 });
    assert!(!info.log_dirty, "freshly made volume has a clean log");
    let found = walk(&vol);
    let names: Vec<&String> = found.keys().collect();
    let want: Vec<&String> = tree.keys().collect();
    assert_eq!(names, want);
    let sb_db = img.db(&[
        "sb 0".into(),
        "print uuid fname dblocks fdblocks blocksize".into(),
    ]);
    assert!(sb_db.contains(&format!("uuid = {}", info.uuid)), "{sb_db}");
    assert!(
        sb_db.contains(&format!("fdblocks = {}", info.free_blocks)),
        "{sb_db}"
    );
    // On a clean volume the AGF sum (free_blocks) and the superblock counter agree.
    assert_eq!(info.free_blocks, info.free_blocks_sb);
    assert!(
        sb_db.contains(&format!("dblocks = {}", info.total_blocks)),
        "{sb_db}"
    );

    // Every directory as xfs_db lists it.
    let mut dirs = vec![("/".to_string(), vol.root())];
    dirs.extend(
        found
            .iter()
            .filter(|(_, (_, k))| *k == FileKind::Dir)
            .map(|(p, (i, _))| (format!("/{p}"), *i)),
    );
    for (path, ino) in dirs {
        let ours: BTreeMap<Vec<u8>, u64> = vol
            .read_dir(ino)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.ino))
            .collect();
        assert_eq!(ours, img.db_ls(&path), "listing of {path}");
    }

    // Every inode outside the big directory against xfs_db's print, and its content.
    let sample: Vec<(&String, u64)> = found
        .iter()
        .filter(|(p, _)| !p.starts_with("big/"))
        .map(|(p, (i, _))| (p, *i))
        .collect();
    let inos: Vec<u64> = sample.iter().map(|s| s.1).collect();
    let dbs = img.db_inodes(&inos);
    for ((path, ino), db) in sample.iter().zip(dbs) {
        let md = vol.stat(*ino).unwrap();
        let w = &tree[*path];
        let g = |k: &str| {
            db.get(k)
                .unwrap_or_else(|| panic!("{path}: xfs_db has no {k}: {db:?}"))
                .clone()
        };
        assert_eq!(format!("0{:o}", md.mode), g("core.mode"), "{path}");
        assert_eq!(md.uid.to_string(), g("core.uid"));
        assert_eq!(md.gid.to_string(), g("core.gid"));
        assert_eq!(md.size.to_string(), g("core.size"), "{path}");
        let nlink = if v5 || db.contains_key("core.nlinkv2") {
            g("core.nlinkv2")
        } else {
            g("core.nlinkv1")
        };
        assert_eq!(md.nlink.to_string(), nlink, "{path}");
        assert_eq!(md.mtime.0, parse_ctime(&g("core.mtime.sec")), "{path}");
        assert_eq!(md.mtime.1.to_string(), g("core.mtime.nsec"));
        assert_eq!(md.ctime.0, parse_ctime(&g("core.ctime.sec")));
        assert_eq!(md.atime.1.to_string(), g("core.atime.nsec"));
        assert_eq!(
            md.allocated,
            g("core.nblocks").parse::<u64>().unwrap() * info.block_size as u64
        );
        if v5 {
            let cr = md.crtime.unwrap();
            assert_eq!(cr.0, parse_ctime(&g("v3.crtime.sec")));
            assert_eq!(cr.1.to_string(), g("v3.crtime.nsec"));
        } else {
            assert!(md.crtime.is_none());
        }
        match w {
            Want::File {
                mode,
                uid,
                gid,
                data,
            } => {
                assert_eq!(md.kind, FileKind::File);
                assert_eq!(md.mode & 0o7777, *mode, "{path}");
                assert_eq!((md.uid, md.gid), (*uid, *gid));
                let got = read_all(&vol, *ino, md.size);
                assert_eq!(Sha256::digest(&got), Sha256::digest(data), "{path} content");
                let whole = placed(&on_file, *ino, 0, md.size + 4096);
                assert!(whole == *data, "{path}: placed");
                if data.len() > 70_000 {
                    let w = &data[4097..data.len() - 3];
                    assert!(placed(&on_file, *ino, 4097, w.len() as u64) == w, "{path}");
                }
                let ranges = vol.data_ranges(*ino).unwrap();
                let covered: u64 = ranges.iter().map(|r| r.1).sum();
                assert_eq!(covered, md.size, "{path}: no holes in a protofile copy");
            }
            Want::Dir { mode, uid, gid } => {
                assert_eq!(md.kind, FileKind::Dir);
                assert_eq!(md.mode & 0o7777, *mode);
                assert_eq!((md.uid, md.gid), (*uid, *gid));
            }
            Want::Link { target } => {
                assert_eq!(md.kind, FileKind::Symlink);
                assert_eq!(&vol.read_link(*ino).unwrap(), target, "{path}");
            }
            Want::Dev {
                block,
                mode,
                major,
                minor,
            } => {
                assert_eq!(
                    md.kind,
                    if *block {
                        FileKind::BlockDev
                    } else {
                        FileKind::CharDev
                    }
                );
                assert_eq!(md.mode & 0o7777, *mode);
                let (maj, min) = ((md.rdev >> 8) & 0xfff, md.rdev & 0xff);
                assert_eq!((maj as u32, min as u32), (*major, *minor));
                let dev = db.get("u3.dev").or(db.get("u.dev")).unwrap();
                let raw = u64::from_str_radix(dev.trim_start_matches("0x"), 16).unwrap();
                assert_eq!(raw, ((*major as u64) << 18) | *minor as u64);
            }
            Want::Fifo { mode } => {
                assert_eq!(md.kind, FileKind::Fifo);
                assert_eq!(md.mode & 0o7777, *mode);
            }
        }
    }
    // The big directory's children exist and are empty files.
    for (p, (ino, _)) in found.iter().filter(|(p, _)| p.starts_with("big/")).take(50) {
        assert_eq!(vol.stat(*ino).unwrap().size, 0, "{p}");
    }
}

#[test]
fn v5_defaults() {
    if !have_tools() {
        return;
    }
    let tree = standard_tree(false, 8000);
    let img = Image::build(&tree, 300, &["-L", "v5lbl"], &[]);
    check_tree(&img, &tree, true);
    let vol = img.open();
    let info = vol.info();
    assert_eq!(info.label, "v5lbl");
    assert!(info.ftype);
    // The 8000-entry directory needs more extents than its inode holds.
    let big = vol.lookup(vol.root(), b"big").unwrap().ino;
    let db = img.db_inodes(&[big]);
    assert_eq!(
        db[0]["core.format"], "3 (btree)",
        "big directory should be btree format"
    );
    // A stale superblock counter (as on a snapshot of a mounted volume, sb_fdblocks being
    // lazily updated) does not change the AGF-based free count.
    let free = info.free_blocks;
    drop(vol);
    img.db_x(&["sb 0".into(), "write fdblocks 12345".into()]);
    let info = img.open().info();
    assert_eq!((info.free_blocks, info.free_blocks_sb), (free, 12345));
}

#[test]
fn v4_no_crc() {
    if !have_tools() {
        return;
    }
    let tree = standard_tree(true, 3000);
    let img = Image::build(&tree, 300, &["-m", V4_META, "-n", "ftype=1"], &[]);
    check_tree(&img, &tree, false);
    // One volume, many threads: every walk sees the same tree and the same bytes.
    let vol = std::sync::Arc::new(img.open());
    let want = walk(&vol);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let vol = vol.clone();
            std::thread::spawn(move || {
                let found = walk(&vol);
                let big = found["big5m"].0;
                (found, Sha256::digest(read_all(&vol, big, 5_000_000)))
            })
        })
        .collect();
    for t in threads {
        let (found, sha) = t.join().unwrap();
        assert_eq!(found, want);
        match &tree["big5m"] {
            Want::File { data, .. } => assert_eq!(sha, Sha256::digest(data)),
            _ => unreachable!(),
        }
    }
}

#[test]
fn v4_without_ftype() {
    if !have_tools() {
        return;
    }
    let tree = standard_tree(true, 1000);
    let img = Image::build(&tree, 300, &["-m", V4_META, "-n", "ftype=0"], &[]);
    check_tree(&img, &tree, false);
    assert!(!img.open().info().ftype);
}

#[test]
fn v5_small_blocks() {
    if !have_tools() {
        return;
    }
    let tree = standard_tree(false, 3000);
    let img = Image::build(&tree, 300, &["-b", "size=1024", "-i", "size=512"], &[]);
    check_tree(&img, &tree, true);
}

#[test]
fn v5_large_directory_blocks() {
    if !have_tools() {
        return;
    }
    let tree = standard_tree(false, 3000);
    let img = Image::build(&tree, 300, &["-n", "size=16384"], &[]);
    check_tree(&img, &tree, true);
}

#[test]
fn v5_without_bigtime() {
    if !have_tools() {
        return;
    }
    let tree = standard_tree(false, 100);
    let img = Image::build(&tree, 300, &["-m", "bigtime=0"], &[]);
    check_tree(&img, &tree, true);
    assert!(!img.open().info().bigtime);
}

#[test]
fn v5_nrext64() {
    if !have_tools() {
        return;
    }
    let tree = standard_tree(false, 8000);
    let img = Image::build(&tree, 300, &["-i", "nrext64=1"], &[]);
    check_tree(&img, &tree, true);
    let vol = img.open();
    let big = vol.lookup(vol.root(), b"big").unwrap().ino;
    assert_eq!(img.db_inodes(&[big])[0]["v3.nrext64"], "1");
}

/// Big timestamps at both ends of their range, written raw (nanoseconds since
/// 1901-12-13) with xfs_db and read back as xfs_db prints them.
#[test]
fn v5_bigtime_extremes() {
    if !have_tools() {
        return;
    }
    let tree = standard_tree(false, 10);
    let img = Image::build(&tree, 300, &[], &[]);
    let vol = img.open();
    let f = vol.lookup(vol.root(), b"small").unwrap().ino;
    drop(vol);
    img.db_x(&[
        format!("inode {f}"),
        "write core.mtime.sec 9223372036854775807".into(),
        "write core.atime.sec 4000000123".into(),
    ]);
    img.repair_ok().unwrap();
    let md = img.open().stat(f).unwrap();
    let db = &img.db_inodes(&[f])[0];
    assert_eq!(
        md.mtime,
        (
            parse_ctime(&db["core.mtime.sec"]),
            db["core.mtime.nsec"].parse().unwrap()
        )
    );
    assert_eq!(md.mtime, (9_223_372_036 - (1 << 31), 854_775_807));
    assert_eq!(
        md.atime,
        (
            parse_ctime(&db["core.atime.sec"]),
            db["core.atime.nsec"].parse().unwrap()
        )
    );
    assert_eq!(md.atime, (4 - (1 << 31), 123));
}
