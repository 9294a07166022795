//! Shared helpers for the image tests: tools that build and independently read images,
//! a staging tree to copy in, and walkers that turn each view into one comparable map.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vmsnapfs_fat::{FileId, FileKind, Volume};
use vmsnapfs_io::FileSource;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File { size: u64, sha256: String },
}

pub type Tree = BTreeMap<String, Node>;

/// Where `tool` is: on PATH, or in the sbin directories a non-login PATH may lack
/// (mkfs.*, fsck.*, losetup live there).
fn locate(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Tests that need a tool fail when it is missing: a skipped oracle proves nothing.
pub fn require(tool: &str) {
    assert!(
        locate(tool).is_some(),
        "required tool `{tool}` is not installed (scripts/test.sh installs it)"
    );
}

/// A command for `tool`, found as `require` finds it.
pub fn tool(name: &str) -> Command {
    match locate(name) {
        Some(p) => Command::new(p),
        None => panic!("required tool `{name}` is not installed (scripts/test.sh installs it)"),
    }
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Small deterministic PRNG (xorshift64*), so every run builds the same tree.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

pub struct Shape {
    /// Entries in the big folder.
    pub many: usize,
    /// Depth of the nested chain of directories.
    pub depth: usize,
    /// Upper bound for ordinary file sizes.
    pub max_file: usize,
}

pub fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// The staging tree: unicode and very long names, deep nesting, a big folder, case
/// variants, empty files and directories.
pub fn build_stage(root: &Path, shape: &Shape, seed: u64) {
    let mut rng = Rng::new(seed);
    fs::create_dir_all(root).unwrap();
    write(&root.join("hello.txt"), b"hello, world\n");
    write(&root.join("lower.txt"), b"lower case 8.3 name\n");
    write(&root.join("UPPER.TXT"), b"upper case 8.3 name\n");
    write(&root.join("MiXeD Case Name.Text"), &rng.bytes(777));
    write(&root.join("empty.dat"), b"");
    write(
        &root.join("Ünïcödé Привет 日本語.txt"),
        "unicode\n".as_bytes(),
    );
    write(&root.join("ñandú ÆØÅ æøå.bin"), &rng.bytes(4097));
    let long: String = (0..210).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    write(&root.join(format!("{long}.long")), &rng.bytes(1234));
    write(
        &root.join("unicode dir Ωμέγα").join("inner file ω.txt"),
        &rng.bytes(300),
    );
    fs::create_dir_all(root.join("empty dir")).unwrap();
    let mut deep = root.join("nest");
    for level in 1..=shape.depth {
        deep = deep.join(format!("level {level:02}"));
    }
    write(&deep.join("leaf.txt"), b"the bottom\n");
    let size = rng.below(shape.max_file as u64) as usize;
    write(
        &root.join("nest").join("level 01").join("mid.bin"),
        &rng.bytes(size),
    );
    let many = root.join("many");
    fs::create_dir_all(&many).unwrap();
    for i in 0..shape.many {
        // Alternate pure 8.3 names (no LFN slots) with long names (LFN slots). The
        // long names differ in their first characters: names sharing a prefix make
        // mtools try ~1, ~2, ... aliases one by one, which is cubic in the count.
        let name = if i % 2 == 0 {
            format!("F{i:05}.DAT")
        } else {
            format!("{i:05} entry with a long name.dat")
        };
        let size = rng.below(300) as usize;
        write(&many.join(name), &rng.bytes(size));
    }
    for i in 0..8 {
        let size = rng.below(shape.max_file as u64) as usize;
        write(
            &root.join("data").join(format!("blob{i}.bin")),
            &rng.bytes(size),
        );
    }
}

pub fn walk_fs(root: &Path) -> Tree {
    let mut tree = Tree::new();
    fn go(dir: &Path, prefix: &str, tree: &mut Tree) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let path = format!("{prefix}/{name}");
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                tree.insert(path.clone(), Node::Dir);
                go(&e.path(), &path, tree);
            } else {
                let data = fs::read(e.path()).unwrap();
                tree.insert(
                    path,
                    Node::File {
                        size: data.len() as u64,
                        sha256: sha256(&data),
                    },
                );
            }
        }
    }
    go(root, "", &mut tree);
    tree
}

pub fn open(img: &Path) -> Volume {
    let src = FileSource::open(img).unwrap();
    Volume::open(Arc::new(src)).unwrap_or_else(|e| panic!("open {}: {e}", img.display()))
}

pub fn read_all(vol: &Volume, id: FileId, size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(size as usize);
    let mut buf = vec![0u8; 65_536 + 7];
    loop {
        let n = vol.read(id, out.len() as u64, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(
            n == buf.len() || out.len() as u64 + n as u64 == size,
            "short read before EOF"
        );
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// Every file of `want` (the staging tree: what mtools or exfat-fuse wrote), placed on
/// the image whole and from an odd offset, reads back as it should: chained and
/// contiguous runs where they lie, bytes past exFAT's ValidDataLength as zeros.
pub fn check_placed(vol: &Volume, ids: &BTreeMap<String, FileId>, want: &Tree) {
    let mut placed = 0;
    for (path, node) in want {
        let Node::File { size, sha256: sha } = node else {
            continue;
        };
        let id = ids[path];
        let mut p = vmsnapfs_io::Places::new();
        let n = vol.place(id, 0, size + 4096, &mut p);
        assert_eq!(n, Some(*size), "{path}: placed");
        assert_eq!(&sha256(&p.gather().unwrap()), sha, "{path}: placed bytes");
        if *size > 3 {
            p.clear();
            assert_eq!(vol.place(id, 3, size - 4, &mut p), Some(size - 4));
            let mut whole = vec![0u8; *size as usize];
            assert_eq!(vol.read(id, 0, &mut whole).unwrap(), *size as usize);
            assert!(
                p.gather().unwrap() == whole[3..*size as usize - 1],
                "{path}"
            );
        }
        placed += 1;
    }
    assert!(placed > 0);
    assert_eq!(
        vol.place(vol.root(), 0, 1, &mut vmsnapfs_io::Places::new()),
        None
    );
}

/// Walks our reader, also checking that each listed entry's metadata equals `stat`.
pub fn walk_volume(vol: &Volume) -> (Tree, BTreeMap<String, FileId>) {
    let mut tree = Tree::new();
    let mut ids = BTreeMap::new();
    fn go(
        vol: &Volume,
        dir: FileId,
        prefix: &str,
        tree: &mut Tree,
        ids: &mut BTreeMap<String, FileId>,
    ) {
        for e in vol.read_dir(dir).unwrap() {
            let path = format!("{prefix}/{}", e.name);
            let meta = vol.stat(e.id).unwrap();
            assert_eq!(e.metadata.as_ref(), Some(&meta), "{path}: listing vs stat");
            ids.insert(path.clone(), e.id);
            match e.kind {
                FileKind::Directory => {
                    tree.insert(path.clone(), Node::Dir);
                    go(vol, e.id, &path, tree, ids);
                }
                FileKind::File => {
                    let data = read_all(vol, e.id, meta.size);
                    assert_eq!(data.len() as u64, meta.size, "{path}");
                    tree.insert(
                        path,
                        Node::File {
                            size: meta.size,
                            sha256: sha256(&data),
                        },
                    );
                }
            }
        }
    }
    go(vol, vol.root(), "", &mut tree, &mut ids);
    (tree, ids)
}

/// Sleuth Kit's view: paths and kinds from `fls`, contents from `tsk_recover`.
pub fn tsk_tree(img: &Path, scratch: &Path) -> Tree {
    require("fls");
    require("tsk_recover");
    let listing = run(tool("fls").args(["-r", "-p", "-u"]).arg(img));
    let recovered = scratch.join("tsk_recovered");
    let _ = fs::remove_dir_all(&recovered);
    run(tool("tsk_recover").arg("-a").arg(img).arg(&recovered));
    let mut tree = Tree::new();
    for line in listing.lines() {
        let Some((kind, name)) = line.split_once('\t') else {
            continue;
        };
        // tsk's own virtual files and the label pseudo-entry are not files.
        if name.starts_with('$') || name.ends_with("(Volume Label Entry)") {
            continue;
        }
        let path = format!("/{name}");
        if kind.starts_with("d/d") {
            tree.insert(path, Node::Dir);
        } else if kind.starts_with("r/r") {
            let data = fs::read(recovered.join(name)).unwrap_or_default();
            tree.insert(
                path,
                Node::File {
                    size: data.len() as u64,
                    sha256: sha256(&data),
                },
            );
        } else {
            panic!("unexpected fls line {line:?}");
        }
    }
    tree
}

/// Ids are resolvable by a volume that never listed anything (a fresh open), and give
/// the same metadata: nothing depends on walking from the root or on a cache.
pub fn check_ids_fresh(img: &Path, first: &Volume, ids: &BTreeMap<String, FileId>) {
    let fresh = open(img);
    for (path, id) in ids {
        assert_eq!(
            fresh.stat(*id).unwrap(),
            first.stat(*id).unwrap(),
            "{path} ({id:?})"
        );
    }
}

/// Sleuth Kit keeps only 16 long-name slots (208 characters) of a FAT name; this maps
/// our tree to what it can show, so that longer names still compare on everything else.
pub fn as_tsk_sees_fat(tree: &Tree) -> Tree {
    tree.iter()
        .map(|(path, node)| {
            let path = path
                .split('/')
                .map(|c| c.chars().take(208).collect::<String>())
                .collect::<Vec<_>>()
                .join("/");
            (path, node.clone())
        })
        .collect()
}

/// Swaps the case of every character whose simple mapping is one character.
pub fn swap_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mapped: Vec<char> = if c.is_uppercase() {
                c.to_lowercase().collect()
            } else {
                c.to_uppercase().collect()
            };
            if mapped.len() == 1 {
                mapped[0]
            } else {
                c
            }
        })
        .collect()
}

/// Every path resolves by case-swapped lookups, component by component, to the id the
/// listing gave.
pub fn check_lookups(vol: &Volume, ids: &BTreeMap<String, FileId>) {
    for (path, id) in ids {
        let mut cur = vol.root();
        for comp in path.trim_start_matches('/').split('/') {
            cur = vol
                .lookup(cur, &swap_case(comp))
                .unwrap()
                .unwrap_or_else(|| panic!("lookup of {comp:?} in {path} failed"));
        }
        assert_eq!(cur, *id, "{path}");
    }
    assert_eq!(vol.lookup(vol.root(), "no such file").unwrap(), None);
}

pub fn diff(a_name: &str, a: &Tree, b_name: &str, b: &Tree) {
    if a == b {
        return;
    }
    let mut msg = String::new();
    for (k, v) in a {
        match b.get(k) {
            None => msg += &format!("only in {a_name}: {k} {v:?}\n"),
            Some(w) if w != v => {
                msg += &format!("differs: {k}: {a_name} {v:?} vs {b_name} {w:?}\n")
            }
            _ => {}
        }
    }
    for (k, v) in b {
        if !a.contains_key(k) {
            msg += &format!("only in {b_name}: {k} {v:?}\n");
        }
    }
    panic!(
        "{a_name} and {b_name} differ:\n{}",
        &msg[..msg.len().min(4000)]
    );
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vmsnapfs-fat-")
        .tempdir()
        .unwrap()
}

pub fn img_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// exfat-fuse run as root insists on a block device, so the image goes on a loop
/// device. exfat-fuse runs in the foreground (`-d`) as our child, so that unmounting
/// can wait for it to exit, i.e. for its last writes (the clean flag) to be done.
/// Dropping this unmounts and detaches even when the test panics.
pub struct Mounted {
    pub mnt: PathBuf,
    loopdev: String,
    daemon: Option<std::process::Child>,
}

fn is_mounted(mnt: &Path) -> bool {
    let want = mnt.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

impl Mounted {
    pub fn new(img: &Path, mnt: &Path) -> Mounted {
        require("losetup");
        require("mount.exfat-fuse");
        require("fusermount");
        fs::create_dir_all(mnt).unwrap();
        let mnt = fs::canonicalize(mnt).unwrap();
        // Other tests (and other crates' tests) attach loop devices at the same time;
        // losetup -f can lose the race for a free device, so try again.
        let mut loopdev = String::new();
        for attempt in 0..10 {
            let out = tool("losetup")
                .args(["-f", "--show"])
                .arg(img)
                .output()
                .expect("run losetup");
            if out.status.success() {
                loopdev = String::from_utf8_lossy(&out.stdout).trim().to_string();
                break;
            }
            assert!(
                attempt < 9,
                "losetup: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let mut m = Mounted {
            mnt: mnt.clone(),
            loopdev,
            daemon: None,
        };
        let child = tool("mount.exfat-fuse")
            .arg("-d")
            .arg(&m.loopdev)
            .arg(&mnt)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mount.exfat-fuse");
        m.daemon = Some(child);
        let start = std::time::Instant::now();
        while !is_mounted(&mnt) {
            if let Some(status) = m.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("mount.exfat-fuse exited with {status}");
            }
            assert!(start.elapsed().as_secs() < 20, "exfat-fuse did not mount");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        m
    }

    pub fn unmount(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            run(tool("fusermount").arg("-u").arg(&self.mnt));
            let status = child.wait().unwrap();
            assert!(status.success(), "exfat-fuse exited with {status}");
        }
        if !self.loopdev.is_empty() {
            run(tool("losetup").arg("-d").arg(&self.loopdev));
            self.loopdev.clear();
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = tool("fusermount").arg("-u").arg(&self.mnt).status();
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.loopdev.is_empty() {
            let _ = tool("losetup").arg("-d").arg(&self.loopdev).status();
        }
    }
}

/// Modification, access and creation times in whole seconds, as Sleuth Kit prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub modified: Option<i64>,
    pub accessed: Option<i64>,
    pub created: Option<i64>,
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn parse_tsk_time(s: &str) -> Option<i64> {
    // "2026-11-25 03:58:06 (UTC)"; all zeros means unset.
    let n: Vec<i64> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .take(6)
        .map(|p| p.parse().unwrap())
        .collect();
    if n.len() < 6 || n[0] == 0 {
        return None;
    }
    Some(days_from_civil(n[0], n[1], n[2]) * 86_400 + n[3] * 3600 + n[4] * 60 + n[5])
}

pub fn tsk_times(img: &Path) -> BTreeMap<String, Times> {
    let out = run(tool("fls")
        .env("TZ", "UTC")
        .args(["-r", "-p", "-u", "-l"])
        .arg(img));
    let mut map = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 6 || f[1].starts_with('$') || f[1].ends_with("(Volume Label Entry)") {
            continue;
        }
        map.insert(
            format!("/{}", f[1]),
            Times {
                modified: parse_tsk_time(f[2]),
                accessed: parse_tsk_time(f[3]),
                created: parse_tsk_time(f[5]),
            },
        );
    }
    map
}

pub fn our_times(vol: &Volume, ids: &BTreeMap<String, FileId>) -> BTreeMap<String, Times> {
    ids.iter()
        .map(|(p, id)| {
            let m = vol.stat(*id).unwrap();
            (
                p.clone(),
                Times {
                    modified: m.modified.map(|t| t.secs),
                    accessed: m.accessed.map(|t| t.secs),
                    created: m.created.map(|t| t.secs),
                },
            )
        })
        .collect()
}

/// Our times equal Sleuth Kit's for every path. `exfat`: Sleuth Kit shows the access
/// time truncated to the day, and drops the whole second that a 10 ms increment of
/// 100–199 carries (it keeps only the sub-second part), so compare at its precision.
pub fn compare_times(tsk: &BTreeMap<String, Times>, ours: &BTreeMap<String, Times>, exfat: bool) {
    assert_eq!(tsk.len(), ours.len(), "same number of entries");
    for (path, t) in tsk {
        let o = ours
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from our times"));
        let mut o = *o;
        if exfat {
            o.accessed = o.accessed.map(|a| a - a.rem_euclid(86_400));
            o.modified = o.modified.map(|a| a - a.rem_euclid(2));
            o.created = o.created.map(|a| a - a.rem_euclid(2));
        }
        assert_eq!(*t, o, "times of {path}");
        assert!(o.modified.is_some(), "{path} has a modification time");
    }
}
