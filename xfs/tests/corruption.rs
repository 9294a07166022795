//! Damaged copies: clear errors for the structure that is hurt (naming the inode), the
//! rest of the volume readable, and a deterministic mutation run over the superblock,
//! every inode and every directory block that must never panic or hang.
mod common;

use common::*;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vmsnapfs_io::ReadAt;
use vmsnapfs_xfs::{Error, FileKind, Volume};

/// A base image with a few bytes replaced.
struct Patched {
    base: Arc<Vec<u8>>,
    patches: Vec<(u64, u8)>,
}

impl ReadAt for Patched {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.base.read_at(offset, buf)?;
        for &(o, v) in &self.patches {
            if o >= offset && o < offset + buf.len() as u64 {
                buf[(o - offset) as usize] = v;
            }
        }
        Ok(())
    }
    fn size(&self) -> u64 {
        self.base.len() as u64
    }
}

fn inode_offset(vol: &Volume, ino: u64) -> u64 {
    let sb = vol.superblock();
    let off_bits = sb.inopblog as u32;
    let agno = ino >> (sb.agblklog as u32 + off_bits);
    let agbno = (ino >> off_bits) & ((1 << sb.agblklog) - 1);
    let idx = ino & ((1 << off_bits) - 1);
    ((agno * sb.agblocks as u64 + agbno) << sb.blocklog) + idx * sb.inodesize as u64
}

/// Byte ranges of the data blocks xfs_db's bmap lists for `ino`.
fn db_blocks(img: &Image, vol: &Volume, ino: u64) -> Vec<(u64, u64)> {
    let sb = vol.superblock();
    let out = img.db(&[format!("inode {ino}"), "bmap".into()]);
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let agpos = f.iter().position(|w| w.starts_with('('))?;
            let (ag, bno) = f[agpos]
                .trim_matches(|c| c == '(' || c == ')')
                .split_once('/')?;
            let (ag, bno): (u64, u64) = (ag.parse().ok()?, bno.parse().ok()?);
            let count: u64 = f[f.iter().position(|w| *w == "count")? + 1].parse().ok()?;
            Some((
                (ag * sb.agblocks as u64 + bno) << sb.blocklog,
                count << sb.blocklog,
            ))
        })
        .collect()
}

/// Reads everything reachable, tolerating errors; returns how many errors it met. Every
/// error must convert to an io::Error of a sensible kind.
fn read_everything(vol: &Volume, deadline: Instant) -> usize {
    let mut errors = 0;
    let mut stack = vec![vol.root()];
    let mut seen = std::collections::HashSet::new();
    let mut buf = vec![0u8; 1 << 20];
    let note = |e: Error| {
        let k = io::Error::from(e).kind();
        assert!(
            matches!(
                k,
                io::ErrorKind::InvalidData
                    | io::ErrorKind::NotFound
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::Unsupported
                    | io::ErrorKind::UnexpectedEof
            ),
            "{k:?}"
        );
        1
    };
    while let Some(dir) = stack.pop() {
        assert!(
            Instant::now() < deadline,
            "reading the damaged volume takes too long"
        );
        let ents = match vol.read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                errors += note(e);
                continue;
            }
        };
        for e in ents.iter().take(5000) {
            if !seen.insert(e.ino) {
                continue;
            }
            let _ = vol.lookup(dir, &e.name);
            match vol.stat(e.ino) {
                Ok(md) => {
                    if let Err(e) = vol.xattrs(e.ino) {
                        errors += note(e);
                    }
                    match md.kind {
                        FileKind::Dir => stack.push(e.ino),
                        FileKind::Symlink => {
                            if let Err(e) = vol.read_link(e.ino) {
                                errors += note(e);
                            }
                        }
                        _ => {
                            let _ = vol.data_ranges(e.ino);
                            let mut pos = 0u64;
                            while pos < md.size.min(64 << 20) {
                                match vol.read(e.ino, pos, &mut buf) {
                                    Ok(0) => break,
                                    Ok(n) => pos += n as u64,
                                    Err(e) => {
                                        errors += note(e);
                                        break;
                                    }
                                }
                            }
                        }
                    }
                }
                Err(e) => errors += note(e),
            }
        }
    }
    errors
}

fn tree() -> Tree {
    let mut t = standard_tree(false, 1500);
    t.insert(
        "victim".into(),
        Want::File {
            mode: 0o644,
            uid: 0,
            gid: 0,
            data: bytes(50_000, 77),
        },
    );
    t
}

fn targeted(args: &[&str], v5: bool) {
    if !have_tools() {
        return;
    }
    let img = Image::build(&tree(), 300, args, &[]);
    let base = Arc::new(img.bytes());
    let vol = Volume::open(base.clone()).unwrap();
    let root = vol.root();
    let victim = vol.lookup(root, b"victim").unwrap().ino;
    let leafdir = vol.lookup(root, b"leafdir").unwrap().ino;
    let small = vol.lookup(root, b"small").unwrap().ino;
    let vic_off = inode_offset(&vol, victim);
    let dir_blocks = db_blocks(&img, &vol, leafdir);
    drop(vol);
    let open = |patches: Vec<(u64, u8)>| {
        Volume::open(Arc::new(Patched {
            base: base.clone(),
            patches,
        }))
    };

    // Superblock: bad magic is "not XFS"; on v5 any changed byte fails the CRC.
    match open(vec![(0, b'Y')]) {
        Err(Error::Superblock(m)) => assert!(m.contains("magic"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
    assert!(!vmsnapfs_xfs::probe(&Patched {
        base: base.clone(),
        patches: vec![(1, 0)]
    }));
    assert!(vmsnapfs_xfs::probe(&*base));
    if v5 {
        assert!(matches!(
            open(vec![(130, base[130] ^ 1)]),
            Err(Error::Superblock(_))
        ));
    }
    // Block size that does not match its log.
    assert!(matches!(
        open(vec![(6, base[6] ^ 0x10)]),
        Err(Error::Superblock(_))
    ));

    // One inode: its extent record (data fork) damaged. v5: CRC error; v4: the
    // extent now points elsewhere or nowhere, never a panic.
    let fork = vic_off + if v5 { 176 } else { 100 };
    let vol = open(vec![
        (fork + 8, base[fork as usize + 8] ^ 0xff),
        (fork + 1, 0xff),
    ])
    .unwrap();
    let r = vol.stat(victim);
    if v5 {
        let e = r.unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains(&format!("inode {victim}")), "{e}");
        let ioe: io::Error = e.into();
        assert_eq!(ioe.kind(), io::ErrorKind::InvalidData);
    } else {
        let mut b = vec![0u8; 50_000];
        let _ = vol.read(victim, 0, &mut b);
    }
    if !v5 {
        // An extent at the last file block there is: its end in bytes overflows 64 bits,
        // so the file's map is damage (for reads and data_ranges alike).
        let l0 = u64::from_be_bytes(base[fork as usize..fork as usize + 8].try_into().unwrap());
        let huge = (l0 & 0x1ff) | (((1u64 << 54) - 1) << 9);
        let patches = huge
            .to_be_bytes()
            .iter()
            .enumerate()
            .map(|(i, &v)| (fork + i as u64, v))
            .collect();
        let vol2 = open(patches).unwrap();
        let e = vol2.read(victim, 0, &mut [0u8; 100]).unwrap_err();
        assert!(e.to_string().contains("2^64"), "{e}");
        let e = vol2.data_ranges(victim).unwrap_err();
        assert!(e.to_string().contains("2^64"), "{e}");
    }
    // The rest is readable.
    let mut b = [0u8; 16];
    assert_eq!(vol.read(small, 0, &mut b).unwrap(), 6);
    assert_eq!(vol.read_dir(leafdir).unwrap().len(), 300);

    // A directory data block: the directory is an error, its siblings are not.
    let (blk, _) = dir_blocks[0];
    let at = blk + if v5 { 64 } else { 16 } + 8; // namelen of the first entry
    let vol = open(vec![(at, 0)]).unwrap();
    let e = vol.read_dir(leafdir).unwrap_err();
    assert!(e.to_string().contains(&format!("inode {leafdir}")), "{e}");
    assert_eq!(io::Error::from(e).kind(), io::ErrorKind::InvalidData);
    assert!(vol.lookup(root, b"victim").is_ok());
    assert_eq!(vol.read(small, 0, &mut b).unwrap(), 6);

    // The whole damaged volume is readable but for the hurt parts.
    let errs = read_everything(&vol, Instant::now() + Duration::from_secs(120));
    assert!(errs >= 1);
}

#[test]
fn targeted_damage_v5() {
    targeted(&[], true);
}

#[test]
fn targeted_damage_v4() {
    targeted(&["-m", V4_META], false);
}

/// mkfs.xfs 6.1's protofile writes v5 remote symlink blocks without their
/// xfs_dsymlink_hdr (xfs_repair -n reports "Bad symlink buffer CRC"); the reader reports
/// the same damage for that link and serves everything else; with the header written
/// in (and accepted by xfs_repair -n) the target reads back.
#[test]
fn v5_remote_symlink_damaged_by_mkfs_then_repaired() {
    if !have_tools() {
        return;
    }
    let mut t = Tree::new();
    t.insert(
        "longln".into(),
        Want::Link {
            target: "/x".repeat(400).into_bytes(),
        },
    );
    t.insert(
        "f".into(),
        Want::File {
            mode: 0o644,
            uid: 0,
            gid: 0,
            data: bytes(10, 1),
        },
    );
    let img = Image::build(&t, 300, &[], &[]);
    let err = img.repair_ok().unwrap_err();
    assert!(err.contains("symlink"), "{err}");
    let vol = img.open();
    let l = vol.lookup(vol.root(), b"longln").unwrap().ino;
    let e = vol.read_link(l).unwrap_err();
    assert!(
        e.to_string().contains("symlink") && e.to_string().contains(&format!("inode {l}")),
        "{e}"
    );
    let f = vol.lookup(vol.root(), b"f").unwrap().ino;
    assert_eq!(vol.read(f, 0, &mut [0u8; 10]).unwrap(), 10);

    // Give the block the xfs_dsymlink_hdr mkfs left out (magic, offset, bytes, uuid,
    // owner, daddr) and its CRC, and xfs_repair -n must agree it is a
    // valid v5 remote symlink, which then reads back.
    let (blk, _) = db_blocks(&img, &vol, l)[0];
    let uuid = vol.superblock().uuid;
    drop(vol);
    let target = "/x".repeat(400).into_bytes();
    let mut raw = img.bytes();
    let mut b = Vec::new();
    b.extend_from_slice(&0x5853_4c4du32.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&(target.len() as u32).to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&uuid);
    b.extend_from_slice(&l.to_be_bytes());
    b.extend_from_slice(&(blk / 512).to_be_bytes());
    b.extend_from_slice(&0u64.to_be_bytes());
    b.extend_from_slice(&target);
    raw[blk as usize..blk as usize + b.len()].copy_from_slice(&b);
    // CRC32C of the block with the CRC field zero, stored little-endian (xfs_cksum.h);
    // xfs_db's `crc -r` does not apply to symlink blocks, xfs_repair checks this one.
    let bs = 4096;
    let crc = !crc32c(&raw[blk as usize..blk as usize + bs]);
    raw[blk as usize + 12..blk as usize + 16].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&img.path, &raw).unwrap();
    img.repair_ok()
        .expect("xfs_repair -n accepts the repaired symlink block");
    assert_eq!(img.open().read_link(l).unwrap(), target);
}

/// Filesystem block numbers of the B+tree blocks xfs_db names for a fork root
/// (`u3.bmbt.ptrs[1] = 56`, `a.bmbt.ptrs[1-2] = 1:56 2:90`).
fn db_bmbt_ptrs(img: &Image, ino: u64, field: &str) -> Vec<u64> {
    let out = img.db(&[format!("inode {ino}"), format!("print {field}")]);
    let mut v = Vec::new();
    for l in out.lines().filter(|l| l.contains(".ptrs[")) {
        let rhs = l.split_once(" = ").map(|x| x.1).unwrap_or("");
        for w in rhs.split_whitespace() {
            let n = w.rsplit(':').next().unwrap_or(w);
            if let Ok(n) = n.parse() {
                v.push(n);
            }
        }
    }
    v
}

fn fsb_range(vol: &Volume, fsb: u64) -> (u64, u64) {
    let sb = vol.superblock();
    let ag = fsb >> sb.agblklog;
    let bno = fsb & ((1 << sb.agblklog) - 1);
    (
        (ag * sb.agblocks as u64 + bno) << sb.blocklog,
        sb.blocksize as u64,
    )
}

/// `rich` (v5 only: xfs_db 6.1 cannot make leaf attributes on v4): an 8000-entry
/// B+tree-format directory and attributes in every format, so that their blocks are
/// mutation targets too.
fn mutation(args: &[&str], rounds: usize, rich: bool) {
    if !have_tools() {
        return;
    }
    let mut t = tree();
    if rich {
        for i in 1500..8000 {
            t.insert(
                format!("big/file_{i:05}_with_a_longish_name"),
                Want::File {
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    data: Vec::new(),
                },
            );
        }
    }
    let img = Image::build(&t, 300, args, &[]);
    let mut attr_files = Vec::new();
    if rich {
        let vol = img.open();
        let root = vol.root();
        let names = ["victim", "r100k", "small", "setuid"];
        let inos: Vec<u64> = names
            .iter()
            .map(|n| vol.lookup(root, n.as_bytes()).unwrap().ino)
            .collect();
        let mut cmds = vec![format!("inode {}", inos[0]), "attr_set -v 10 short".into()];
        cmds.push(format!("inode {}", inos[1]));
        cmds.push("attr_set -v 3000 remote".into());
        cmds.push("attr_set -s -v 100 local".into());
        for i in 0..200 {
            cmds.push(format!("inode {}", inos[2]));
            cmds.push(format!("attr_set -v 200 node_attribute_{i}"));
        }
        for i in 0..40 {
            cmds.push(format!("inode {}", inos[3]));
            cmds.push(format!("attr_set -v 5000 frag_{i}"));
            cmds.push(format!("inode {}", inos[1]));
            cmds.push(format!("attr_set -v 5000 frag_{i}"));
        }
        img.db_x(&cmds);
        img.repair_ok().unwrap();
        attr_files = inos;
    }
    let base = Arc::new(img.bytes());
    let vol = Volume::open(base.clone()).unwrap();
    // Targets: the superblock sector, every inode, every directory's blocks, B+tree
    // blocks, attribute blocks.
    let mut targets: Vec<(u64, u64)> = vec![(0, 512)];
    let mut stack = vec![vol.root()];
    let isz = vol.superblock().inodesize as u64;
    targets.push((inode_offset(&vol, vol.root()), isz));
    let fork = if vol.info().version == 5 {
        "u3.bmbt"
    } else {
        "u.bmbt"
    };
    while let Some(d) = stack.pop() {
        targets.extend(db_blocks(&img, &vol, d));
        targets.extend(
            db_bmbt_ptrs(&img, d, fork)
                .into_iter()
                .map(|b| fsb_range(&vol, b)),
        );
        for e in vol.read_dir(d).unwrap().iter().take(400) {
            targets.push((inode_offset(&vol, e.ino), isz));
            if e.kind == FileKind::Dir {
                stack.push(e.ino);
            }
        }
    }
    if rich {
        let big = vol.lookup(vol.root(), b"big").unwrap().ino;
        assert!(
            !db_bmbt_ptrs(&img, big, fork).is_empty(),
            "big directory has B+tree blocks"
        );
        assert!(
            !db_bmbt_ptrs(&img, attr_files[1], "a.bmbt").is_empty(),
            "attribute fork B+tree"
        );
    }
    for &f in &attr_files {
        let sb = vol.superblock();
        let out = img.db(&[format!("inode {f}"), "bmap -a".into()]);
        for l in out.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            if let Some(p) = w.iter().position(|x| *x == "startblock") {
                let fsb: u64 = w[p + 1].parse().unwrap();
                let count: u64 = w[w.iter().position(|x| *x == "count").unwrap() + 1]
                    .parse()
                    .unwrap();
                let (o, _) = fsb_range(&vol, fsb);
                targets.push((o, count << sb.blocklog));
            }
        }
        targets.extend(
            db_bmbt_ptrs(&img, f, "a.bmbt")
                .into_iter()
                .map(|b| fsb_range(&vol, b)),
        );
    }
    drop(vol);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut opened = 0;
    for _ in 0..rounds {
        let mut patches = Vec::new();
        for _ in 0..1 + next() % 4 {
            let (start, len) = targets[(next() % targets.len() as u64) as usize];
            let o = start + next() % len;
            patches.push((o, base[o as usize] ^ (1 + (next() % 255) as u8)));
        }
        if let Ok(vol) = Volume::open(Arc::new(Patched {
            base: base.clone(),
            patches,
        })) {
            opened += 1;
            read_everything(&vol, Instant::now() + Duration::from_secs(60));
        }
    }
    assert!(
        opened > rounds / 2,
        "most mutations leave the superblock and root alone"
    );
}

#[test]
fn mutations_v5() {
    mutation(&[], 150, true);
}

#[test]
fn mutations_v4() {
    mutation(&["-m", V4_META, "-n", "ftype=0"], 150, false);
}

/// Plain bitwise CRC32C (Castagnoli), initial value !0, no final inversion.
fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    c
}

/// Without ftype bytes, listing a directory stats its children; a damaged child is still
/// listed and only its own stat fails.
#[test]
fn damaged_child_without_ftype_keeps_siblings() {
    if !have_tools() {
        return;
    }
    let img = Image::build(&tree(), 300, &["-m", V4_META, "-n", "ftype=0"], &[]);
    let base = Arc::new(img.bytes());
    let vol = Volume::open(base.clone()).unwrap();
    let victim = vol.lookup(vol.root(), b"victim").unwrap().ino;
    let n = vol.read_dir(vol.root()).unwrap().len();
    let off = inode_offset(&vol, victim);
    drop(vol);
    let vol = Volume::open(Arc::new(Patched {
        base: base.clone(),
        patches: vec![(off, b'X')],
    }))
    .unwrap();
    let ents = vol.read_dir(vol.root()).unwrap();
    assert_eq!(ents.len(), n);
    let e = vol.stat(victim).unwrap_err();
    assert!(
        e.to_string().contains(&format!("inode {victim}")) && e.to_string().contains("magic"),
        "{e}"
    );
    let small = vol.lookup(vol.root(), b"small").unwrap();
    assert_eq!(small.kind, FileKind::File);
    assert_eq!(vol.lookup(vol.root(), b"sub").unwrap().kind, FileKind::Dir);
}
