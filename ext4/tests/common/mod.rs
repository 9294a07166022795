//! Helpers shared by the integration tests: building a source tree, making images
//! with the real e2fsprogs, and reading back the oracles (Sleuth Kit `fls`, debugfs
//! `rdump`/`stat`, getfattr on the source tree).
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use vmsnapfs_ext4::{FileKind, Volume};
use vmsnapfs_io::FileSource;

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

/// The e2fsprogs the tests need; when absent the test is skipped with a note.
pub fn e2fsprogs() -> bool {
    let ok = have("mke2fs") && have("debugfs") && have("e2fsck");
    if !ok {
        eprintln!("SKIP: e2fsprogs (mke2fs, debugfs, e2fsck) not installed");
    }
    ok
}

pub fn run(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "{cmd}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn run_status(cmd: &str) -> (i32, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Byte offset of inode `ino` in an image of `block_size`-byte blocks (debugfs imap).
pub fn inode_offset(img: &Path, ino: u32, block_size: usize) -> usize {
    let s = run(&format!("debugfs -R 'imap <{ino}>' {} 2>/dev/null", q(img)));
    let block: usize = s
        .split("block ")
        .last()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let off = usize::from_str_radix(s.split("offset 0x").nth(1).unwrap().trim(), 16).unwrap();
    block * block_size + off
}

pub fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

pub fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What the source tree holds that needs a privileged or optional tool.
pub struct TreeFeatures {
    pub acl: bool,
    pub xattr: bool,
}

/// A source tree exercising what the reader must serve. `many` entries in `many/`.
pub fn build_tree(root: &Path, many: usize) -> TreeFeatures {
    use std::fs;
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("small.txt"), b"hello ext4\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("big.bin"), noise(3 * 1024 * 1024 + 123, 1)).unwrap();
    fs::write(root.join("tiny"), b"x").unwrap();
    fs::write(root.join("fifty"), vec![b'z'; 50]).unwrap();
    // Sparse: data at 0, at 10 MiB and at the end of 40 MiB.
    {
        use std::os::unix::fs::FileExt;
        let f = fs::File::create(root.join("sparse.bin")).unwrap();
        f.write_at(&noise(5000, 2), 0).unwrap();
        f.write_at(&noise(9000, 3), 10 << 20).unwrap();
        f.set_len(40 << 20).unwrap();
        f.write_at(b"tail", (40 << 20) - 4).unwrap();
    }
    // 400 islands of data 200 KiB apart over 80 MiB: hundreds of extents (an extent
    // tree with index nodes) or, with 1 KiB block maps, triple-indirect blocks.
    {
        use std::os::unix::fs::FileExt;
        let f = fs::File::create(root.join("islands.bin")).unwrap();
        for i in 0..400u64 {
            f.write_at(&noise(3000, 100 + i), i * 200 * 1024).unwrap();
        }
    }
    let mut deep = root.join("deep");
    for i in 0..24 {
        deep = deep.join(format!("level{i:02}"));
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("bottom.txt"), b"bottom\n").unwrap();
    let many_dir = root.join("many");
    fs::create_dir(&many_dir).unwrap();
    for i in 0..many {
        fs::write(
            many_dir.join(format!("entry-with-a-longish-name-{i:05}")),
            format!("{i}\n"),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("small.txt", root.join("short-link")).unwrap();
    let long_target = "a/".repeat(100) + "target-of-a-long-symlink";
    std::os::unix::fs::symlink(&long_target, root.join("long-link")).unwrap();
    std::os::unix::fs::symlink("/does/not/exist", root.join("dangling")).unwrap();
    fs::write(root.join("linked"), b"hard linked\n").unwrap();
    fs::hard_link(root.join("linked"), root.join("linked-2")).unwrap();
    fs::create_dir(root.join("sub")).unwrap();
    fs::hard_link(root.join("linked"), root.join("sub/linked-3")).unwrap();
    fs::write(root.join("sub/owned"), b"owned\n").unwrap();
    fs::set_permissions(root.join("sub/owned"), fs::Permissions::from_mode(0o4751)).unwrap();
    let _ = run_status(&format!("chown 1234:5678 {}", q(&root.join("sub/owned"))));
    fs::write(root.join("sub/sticky"), b"").unwrap();
    fs::set_permissions(root.join("sub"), fs::Permissions::from_mode(0o1775)).unwrap();
    let _ = run_status(&format!("mkfifo {}", q(&root.join("fifo"))));
    let _ = run_status(&format!("mknod {} c 4 5", q(&root.join("chardev"))));
    let _ = run_status(&format!("mknod {} b 259 70000", q(&root.join("blockdev"))));
    let xattr = have("setfattr")
        && run_status(&format!(
            "setfattr -n user.comment -v 'a comment' {0} && setfattr -n user.bin -v 0x00ff10 {0} && setfattr -n trusted.t -v tv {0} && setfattr -n user.big -v 0s{1} {2}",
            q(&root.join("small.txt")),
            base64(&noise(700, 9)),
            q(&root.join("big.bin")),
        ))
        .0 == 0;
    let acl = have("setfacl")
        && run_status(&format!(
            "setfacl -m u:1234:rx,g:77:w {} && setfacl -d -m u::rwx,g::rx,o::-,g:55:rw {}",
            q(&root.join("small.txt")),
            q(&root.join("sub"))
        ))
        .0 == 0;
    TreeFeatures { acl, xattr }
}

fn base64(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

pub fn open(img: &Path) -> Volume {
    Volume::open(Arc::new(FileSource::open(img).unwrap())).expect("open ext4 volume")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub ino: u32,
    pub kind: FileKind,
    pub size: u64,
    pub sha: String,
    pub link: Option<Vec<u8>>,
}

/// Our view of the whole tree: path → node.
pub fn walk(v: &Volume) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(Vec::new(), v.root())];
    while let Some((path, dir)) = stack.pop() {
        for e in v
            .read_dir(dir)
            .unwrap_or_else(|err| panic!("read_dir {dir}: {err}"))
        {
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(&e.name);
            let md = v
                .stat(e.ino)
                .unwrap_or_else(|err| panic!("stat {}: {err}", e.ino));
            assert_eq!(md.kind, e.kind, "{}", String::from_utf8_lossy(&p));
            let (sha, link) = match md.kind {
                FileKind::File => {
                    let mut buf = vec![0u8; md.size as usize];
                    let n = v.read(e.ino, 0, &mut buf).unwrap();
                    assert_eq!(n as u64, md.size);
                    (sha256(&buf), None)
                }
                FileKind::Symlink => (String::new(), Some(v.read_link(e.ino).unwrap())),
                _ => (String::new(), None),
            };
            if md.kind == FileKind::Dir {
                stack.push((p.clone(), e.ino));
            }
            out.insert(
                p,
                Node {
                    ino: e.ino,
                    kind: md.kind,
                    size: md.size,
                    sha,
                    link,
                },
            );
        }
    }
    out
}

/// Sleuth Kit's listing: path → (type letter, inode), without its virtual entries;
/// None when fls cannot read the image (TSK 4.x does not know bigalloc).
pub fn fls_opt(img: &Path) -> Option<BTreeMap<Vec<u8>, (char, u32)>> {
    let out = Command::new("fls")
        .arg("-r")
        .arg("-p")
        .arg(img)
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "fls cannot read {}: {}",
            img.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let mut m = BTreeMap::new();
    for line in out.stdout.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let tab = line.iter().position(|&c| c == b'\t').unwrap();
        let head = String::from_utf8_lossy(&line[..tab]).into_owned();
        let name = &line[tab + 1..];
        if head.contains('*') || name.starts_with(b"$Orphan") {
            continue;
        }
        // "X/Y": the directory entry's type, then the inode's (X is '-' without filetype).
        let t = head.chars().nth(2).unwrap();
        let ino: u32 = head
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches(':')
            .parse()
            .unwrap();
        let mut p = b"/".to_vec();
        p.extend_from_slice(name);
        m.insert(p, (t, ino));
    }
    Some(m)
}

pub fn fls(img: &Path) -> BTreeMap<Vec<u8>, (char, u32)> {
    fls_opt(img).expect("fls")
}

/// debugfs rdump of the whole volume into `out`, read back: path → (kind, size, sha,
/// link). Special files are not dumped by debugfs.
/// A dumped entry: (type letter, size, sha256, link target).
pub type Dumped = (char, u64, String, Option<Vec<u8>>);

pub fn rdump(img: &Path, out: &Path) -> BTreeMap<Vec<u8>, Dumped> {
    std::fs::create_dir_all(out).unwrap();
    run(&format!(
        "debugfs -R 'rdump / {}' {} 2>/dev/null",
        q(out),
        q(img)
    ));
    let mut m = BTreeMap::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(out).unwrap();
            let mut key = b"/".to_vec();
            key.extend_from_slice(rel.as_os_str().as_bytes());
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            if ft.is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                m.insert(
                    key,
                    (
                        'l',
                        md.size(),
                        String::new(),
                        Some(t.as_os_str().as_bytes().to_vec()),
                    ),
                );
            } else if ft.is_dir() {
                m.insert(key, ('d', 0, String::new(), None));
                stack.push(p);
            } else if ft.is_file() {
                m.insert(
                    key,
                    ('r', md.len(), sha256(&std::fs::read(&p).unwrap()), None),
                );
            }
        }
    }
    m
}

/// Fields of `debugfs -R 'stat <ino>'`.
pub fn debugfs_stat(img: &Path, ino: u32) -> BTreeMap<String, String> {
    let s = run(&format!("debugfs -R 'stat <{ino}>' {} 2>/dev/null", q(img)));
    let mut m = BTreeMap::new();
    let words: Vec<&str> = s.split_whitespace().collect();
    for w in words.windows(2) {
        if let Some(k) = w[0].strip_suffix(':') {
            m.entry(k.to_string()).or_insert_with(|| w[1].to_string());
        }
    }
    m
}

/// The xattrs getfattr sees on a path of the source tree (hex values), name → value.
pub fn getfattr(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let (_, s) = run_status(&format!(
        "getfattr -h -d -m - -e hex --absolute-names {} 2>/dev/null",
        q(p)
    ));
    let mut m = BTreeMap::new();
    for line in s.lines() {
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim_start_matches("0x");
            let bytes = (0..v.len() / 2)
                .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            m.insert(k.to_string(), bytes);
        }
    }
    m
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ext4-test")
        .tempdir_in(std::env::temp_dir())
        .unwrap()
}

pub fn path_of(base: &Path, p: &[u8]) -> PathBuf {
    base.join(std::ffi::OsStr::from_bytes(&p[1..]))
}
