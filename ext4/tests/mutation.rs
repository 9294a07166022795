//! Deterministic mutation test: seeded byte flips in the metadata of mke2fs images
//! (superblock, group descriptors, inode tables, directory and htree blocks, extent
//! and indirect blocks, xattr blocks, and the jbd2 log of a dirty journal), then every
//! API on everything reachable. Any panic or hang fails; errors are expected.

mod common;
use common::*;
use std::collections::HashSet;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use vmsnapfs_ext4::{FileKind, Volume};
use vmsnapfs_io::SharedBytes;

const ITERATIONS: u64 = 1500;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Touches everything reachable, with a budget so a corrupt tree cannot make one
/// iteration unboundedly long.
fn exercise(v: &Volume) {
    let _ = v.info();
    let mut queue = vec![v.root()];
    let mut seen = HashSet::new();
    let mut budget = 300usize;
    let mut buf = vec![0u8; 70_000];
    while let Some(dir) = queue.pop() {
        if !seen.insert(dir) || budget == 0 {
            continue;
        }
        let Ok(entries) = v.read_dir(dir) else {
            continue;
        };
        let _ = v.lookup(dir, b"..");
        for e in entries.iter().take(60) {
            budget = budget.saturating_sub(1);
            let _ = v.lookup(dir, &e.name);
            let _ = v.xattrs(e.ino);
            let _ = v.data_ranges(e.ino);
            let Ok(md) = v.stat(e.ino) else { continue };
            let _ = v.read(e.ino, 0, &mut buf);
            let _ = v.read(e.ino, md.size.saturating_sub(100), &mut buf[..200]);
            let _ = v.read(e.ino, md.size / 2, &mut buf[..5000]);
            match md.kind {
                FileKind::Dir => queue.push(e.ino),
                FileKind::Symlink => {
                    let _ = v.read_link(e.ino);
                }
                _ => {}
            }
        }
    }
}

/// Byte ranges of the image's metadata, from debugfs.
fn metadata_ranges(img: &std::path::Path, bs: usize, v: &Volume) -> Vec<(usize, usize)> {
    let mut r = vec![(1024usize, 1024usize), (bs.max(2048), bs)];
    let mut inos = vec![];
    let mut stack = vec![v.root()];
    while let Some(d) = stack.pop() {
        inos.push(d);
        for e in v.read_dir(d).unwrap() {
            inos.push(e.ino);
            if e.kind == FileKind::Dir {
                stack.push(e.ino);
            }
        }
    }
    inos.sort();
    inos.dedup();
    for &ino in inos.iter().take(400) {
        r.push((inode_offset(img, ino, bs), 256));
    }
    let mut meta_inos: Vec<u32> = inos
        .iter()
        .copied()
        .filter(|&i| {
            v.stat(i)
                .map(|m| m.kind == FileKind::Dir || m.size > 48 * 1024)
                .unwrap_or(false)
        })
        .collect();
    meta_inos.push(8);
    for ino in meta_inos {
        // Directory blocks, and the extent/indirect blocks of big files (debugfs
        // `stat` lists them), the first journal blocks.
        let s = run(&format!("debugfs -R 'stat <{ino}>' {} 2>/dev/null", q(img)));
        let mut blocks: Vec<usize> = Vec::new();
        if let Some(i) = s.find("File ACL: ") {
            let n: usize = s[i + 10..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap_or(0);
            if n != 0 {
                blocks.push(n);
            }
        }
        let kind_dir = v
            .stat(ino)
            .map(|m| m.kind == FileKind::Dir)
            .unwrap_or(false);
        for w in s.split(|c: char| c == ',' || c.is_whitespace()) {
            // "(IND):1234", "(ETB0):5678", "(0-3):100-103", "(5):200"
            if let Some((tag, rest)) = w.split_once("):") {
                let first: usize = rest.split('-').next().unwrap().parse().unwrap_or(0);
                let meta_tag = tag.contains("IND") || tag.contains("ETB");
                if first != 0 && (meta_tag || kind_dir || ino == 8) {
                    blocks.push(first);
                }
            }
        }
        for b in blocks.into_iter().take(24) {
            r.push((b * bs, bs));
        }
    }
    r
}

fn mutate(name: &str, img: &std::path::Path, bs: usize) {
    let bytes = Arc::new(std::fs::read(img).unwrap());
    let v = Volume::open(Arc::new(SharedBytes(bytes.clone()))).unwrap();
    exercise(&v);
    let ranges = metadata_ranges(img, bs, &v);
    drop(v);
    let mut rng = Rng(0x5eed ^ bs as u64);
    for it in 0..ITERATIONS {
        let mut b = (*bytes).clone();
        let flips = 1 + rng.below(6);
        for _ in 0..flips {
            let (start, len) = ranges[rng.below(ranges.len())];
            let at = start + rng.below(len);
            if at < b.len() {
                match rng.below(3) {
                    0 => b[at] ^= 1 << rng.below(8),
                    1 => b[at] = rng.next() as u8,
                    _ => b[at] = [0, 0xFF, 0x7F, 0x80][rng.below(4)],
                }
            }
        }
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            if let Ok(v) = Volume::open(Arc::new(SharedBytes(Arc::new(b)))) {
                exercise(&v);
            }
            let _ = tx.send(());
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(()) => handle.join().unwrap(),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: iteration {it} hangs"),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let e = handle.join().unwrap_err();
                panic!("{name}: iteration {it} panicked: {e:?}")
            }
        }
    }
}

fn build(args: &str, bs: usize, dirty: bool) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tmp();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("many")).unwrap();
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("small"), b"small file\n").unwrap();
    std::fs::write(src.join("big"), noise(600_000, 4)).unwrap();
    std::fs::write(src.join("sub/deeper/x"), b"x").unwrap();
    for i in 0..400 {
        std::fs::write(src.join(format!("many/name-{i:04}")), b"").unwrap();
    }
    std::os::unix::fs::symlink("small", src.join("lnk")).unwrap();
    std::os::unix::fs::symlink("x/".repeat(60), src.join("longlnk")).unwrap();
    let _ = run_status(&format!(
        "setfattr -n user.x -v 0s{} {p} ; setfacl -m u:12:r {p}",
        "QUFB".repeat(100),
        p = q(&src.join("small"))
    ));
    let img = dir.path().join("img");
    run(&format!(
        "mke2fs -q -F {args} -b {bs} -d {} {} 16M",
        q(&src),
        q(&img)
    ));
    let _ = run_status(&format!("e2fsck -fyD {}", q(&img)));
    if dirty {
        // Journal copies of the root directory and the inode table's first block.
        let root = run(&format!("debugfs -R 'blocks <2>' {} 2>/dev/null", q(&img)));
        let root: usize = root.split_whitespace().next().unwrap().parse().unwrap();
        let bytes = std::fs::read(&img).unwrap();
        std::fs::write(dir.path().join("copy"), &bytes[root * bs..(root + 1) * bs]).unwrap();
        run(&format!(
            "cd {} && printf 'jo -c -v 3\\njw -b {root} copy\\njw -r {root} /dev/null\\njw -b {root} copy\\njc\\n' | debugfs -w -f - img >/dev/null 2>&1",
            q(dir.path())
        ));
    }
    (dir, img)
}

#[test]
fn mutations_ext4_dirty_journal() {
    if !e2fsprogs() {
        return;
    }
    let (_d, img) = build("-t ext4", 4096, true);
    assert!(open(&img).info().journal_replayed);
    mutate("ext4", &img, 4096);
}

#[test]
fn mutations_ext2_block_maps_1k() {
    if !e2fsprogs() {
        return;
    }
    let (_d, img) = build("-t ext2", 1024, false);
    mutate("ext2", &img, 1024);
}

#[test]
fn mutations_ext4_inline_data() {
    if !e2fsprogs() {
        return;
    }
    let (_d, img) = build("-t ext4 -O inline_data,^has_journal", 4096, false);
    mutate("inline", &img, 4096);
}
