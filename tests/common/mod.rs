//! Helpers shared by the real-mount tests: fixture building, mounting the binary,
//! walking trees, and the outside tools used as oracles. A missing tool is a failure,
//! never a skip: scripts/test.sh installs them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vmsnapfs")
}

pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is required by this test (scripts/test.sh installs it)"
    );
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// VM folders built by fixtures/build.sh --all, once per test binary.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("fixtures");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/build.sh");
        run(Command::new("bash").arg(script).arg(&dir).arg("--all"));
        dir
    })
}

/// Removes scratch trees left by earlier test processes that are gone.
fn remove_stale_scratch() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("vmsnapfs-test-") else {
            continue;
        };
        let path = e.path();
        // Never recurse into something still mounted there (a leftover mount).
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let busy = mounts.lines().any(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|m| Path::new(m).starts_with(&path))
        });
        if !busy && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// A fresh directory under /tmp/vmsnapfs-test-<pid>/ (earlier runs' trees are removed).
pub fn scratch(name: &str) -> PathBuf {
    static CLEAN: std::sync::Once = std::sync::Once::new();
    CLEAN.call_once(remove_stale_scratch);
    let base = std::env::temp_dir().join(format!("vmsnapfs-test-{}", std::process::id()));
    let dir = base.join(format!(
        "{name}-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).unwrap();
    dir
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn is_mounted(mp: &Path) -> bool {
    let mp = fs::canonicalize(mp).unwrap_or(mp.to_path_buf());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(mp.to_str().unwrap()))
}

/// The file system type the kernel records for the mount at `mp`.
pub fn fs_type(mp: &Path) -> Option<String> {
    let mp = fs::canonicalize(mp).ok()?;
    fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .filter(|l| l.split(' ').nth(4) == mp.to_str())
        .filter_map(|l| Some(l.split_once(" - ")?.1.split(' ').next()?.to_owned()))
        .next_back()
}

/// A vmsnapfs mount, unmounted (lazily, as a last resort) on drop.
pub struct Mount {
    pub mp: PathBuf,
}

impl Mount {
    pub fn new(source: &Path, opts: &[&str]) -> Mount {
        let mp = scratch("mnt");
        let mut cmd = Command::new(bin());
        cmd.arg("mount").arg(source).arg(&mp);
        for o in opts {
            cmd.arg("-o").arg(o);
        }
        run(&mut cmd);
        assert!(is_mounted(&mp), "mount returned before the mount was live");
        assert_eq!(fs_type(&mp).as_deref(), Some("fuse.vmsnapfs"));
        Mount { mp }
    }

    pub fn umount(&self) {
        run(Command::new(bin()).arg("umount").arg(&self.mp));
        assert!(!is_mounted(&self.mp));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if is_mounted(&self.mp) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.mp)
                .status();
        }
    }
}

pub fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("{:x}", h.finalize())
}

/// `len` reproducible, incompressible bytes (xorshift64 from `seed`).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// `qemu-img convert -O raw` of a disk into a scratch file.
pub fn qemu_raw(vmdk: &Path) -> PathBuf {
    require("qemu-img");
    let out = scratch("raw").join("disk.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(vmdk)
        .arg(&out));
    out
}

/// Copies bytes [start, start+len) of `src` into a new scratch file (a partition).
pub fn extract(src: &Path, start: u64, len: u64) -> PathBuf {
    use std::os::unix::fs::FileExt;
    let out = scratch("part").join("part.img");
    let f = fs::File::open(src).unwrap();
    let o = fs::File::create(&out).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < len {
        let n = (len - off).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..n], start + off).unwrap();
        o.write_all_at(&buf[..n], off).unwrap();
        off += n as u64;
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File {
        size: u64,
        sha: String,
    },
    /// The link's target resolved to a path relative to the walked root (readers differ
    /// in spelling: ntfs-3g writes absolute paths into its own mountpoint, we write
    /// relative ones), or the raw target when it leaves the root.
    Link(String),
    /// A fifo, socket or device node (never opened: a fifo would block).
    Special(String),
}

fn resolve_link(root: &Path, link: &Path, target: &Path) -> String {
    let full = if target.is_absolute() {
        target.to_path_buf()
    } else {
        link.parent().unwrap().join(target)
    };
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    for c in full.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(n) => parts.push(n.to_owned()),
            _ => {}
        }
    }
    let resolved: PathBuf = std::iter::once(std::ffi::OsString::from("/"))
        .chain(parts)
        .collect();
    match resolved.strip_prefix(root) {
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => format!("outside:{}", target.display()),
    }
}

/// Every path under `root` (relative, sorted) with its type, size, digest or target.
pub fn walk(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    walk_into(root, root, &mut out);
    out
}

fn walk_into(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let e = e.unwrap();
        let p = e.path();
        let rel = rel_key(p.strip_prefix(root).unwrap());
        let m = fs::symlink_metadata(&p).unwrap();
        if m.file_type().is_symlink() {
            let t = fs::read_link(&p).unwrap();
            out.insert(rel, Entry::Link(resolve_link(root, &p, &t)));
        } else if m.is_dir() {
            out.insert(rel, Entry::Dir);
            walk_into(root, &p, out);
        } else if !m.is_file() {
            use std::os::unix::fs::FileTypeExt;
            let t = m.file_type();
            let what = if t.is_fifo() {
                "fifo".to_owned()
            } else if t.is_socket() {
                "socket".to_owned()
            } else {
                let kind = if t.is_char_device() { "char" } else { "block" };
                format!("{kind} {}:{}", libc::major(m.rdev()), libc::minor(m.rdev()))
            };
            out.insert(rel, Entry::Special(what));
        } else {
            out.insert(
                rel,
                Entry::File {
                    size: m.len(),
                    sha: sha256_file(&p),
                },
            );
        }
    }
}

/// Asserts two trees are equal, showing the first few differences.
pub fn assert_same_tree(ours: &BTreeMap<String, Entry>, oracle: &BTreeMap<String, Entry>) {
    let mut diffs = Vec::new();
    for (k, v) in oracle {
        match ours.get(k) {
            Some(o) if o == v => {}
            other => diffs.push(format!("{k}: oracle {v:?}, ours {other:?}")),
        }
    }
    for k in ours.keys().filter(|k| !oracle.contains_key(*k)) {
        diffs.push(format!("{k}: only in ours"));
    }
    assert!(diffs.is_empty(), "trees differ:\n{}", diffs.join("\n"));
}

/// A relative path as a map key: bytes that are not UTF-8 become `\xHH` and a `\`
/// becomes `\\`, so the key names exactly one path (`at` turns it back).
pub fn rel_key(rel: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in rel.as_os_str().as_bytes().utf8_chunks() {
        out.push_str(&chunk.valid().replace('\\', "\\\\"));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The path under `root` a `rel_key` names.
pub fn at(root: &Path, key: &str) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let (mut raw, b) = (Vec::new(), key.as_bytes());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            raw.push(u8::from_str_radix(&key[i + 2..i + 4], 16).unwrap());
            i += 4;
        } else if b[i] == b'\\' {
            raw.push(b'\\');
            i += 2;
        } else {
            raw.push(b[i]);
            i += 1;
        }
    }
    root.join(std::ffi::OsStr::from_bytes(&raw))
}

pub fn inode(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().ino()
}

/// `user.*` xattrs of a path as name → value.
pub fn user_xattrs(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let out = Command::new("getfattr")
        .args(["-d", "-e", "hex", "-h", "--absolute-names"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim_start_matches("0x");
            let bytes = (0..v.len() / 2)
                .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            (k.to_owned(), bytes)
        })
        .collect()
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Partition `n` (start, size) in bytes of a raw disk, from sfdisk's JSON dump.
pub fn partition(raw: &Path, n: u32) -> (u64, u64) {
    require("sfdisk");
    let json = run(Command::new("sfdisk").arg("-J").arg(raw));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let suffix = n.to_string();
    let p = v["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node"].as_str().unwrap().ends_with(&suffix))
        .unwrap_or_else(|| panic!("no partition {n} in {}", raw.display()));
    (
        p["start"].as_u64().unwrap() * 512,
        p["size"].as_u64().unwrap() * 512,
    )
}

/// Reports a check this test cannot run on this machine (and returns early from).
/// Cargo hides a passing test's output, so the line goes straight to stderr, past the
/// capture, and is appended to `$VMSNAPFS_SKIP_LOG`, which scripts/test.sh prints after
/// the run: a green suite never hides a skip.
pub fn skipped(why: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let line = format!("SKIPPED: {} {test}: {why}\n", env!("CARGO_CRATE_NAME"));
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(log) = std::env::var_os("VMSNAPFS_SKIP_LOG") {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log);
        if let Ok(mut f) = f {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// sha256 of `path` read through mmap (python3's, so no unsafe code here).
pub fn sha256_mmap(path: &Path) -> String {
    let script = "import hashlib,mmap,sys\n\
                  f=open(sys.argv[1],'rb')\n\
                  m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ)\n\
                  print(hashlib.sha256(m).hexdigest())";
    run(Command::new("python3").arg("-c").arg(script).arg(path))
        .trim()
        .to_owned()
}

/// Bytes of `path` the kernel's page cache holds (util-linux fincore).
pub fn page_cached(path: &Path) -> u64 {
    let out = run(Command::new("fincore")
        .args(["--bytes", "--noheadings", "-o", "RES"])
        .arg(path));
    out.trim()
        .parse()
        .unwrap_or_else(|e| panic!("fincore {}: {out:?}: {e}", path.display()))
}

/// Reads all of `path` in `size`-byte read calls (each its own request under direct_io).
pub fn read_in_pieces(path: &Path, size: usize) -> Vec<u8> {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut got = Vec::new();
    let mut buf = vec![0u8; size];
    loop {
        let k = f
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if k == 0 {
            return got;
        }
        got.extend_from_slice(&buf[..k]);
    }
}

/// How many read replies the mount at `mp` has spliced so far (its root's counter).
pub fn spliced(mp: &Path) -> u64 {
    root_counter(mp, "user.vmsnapfs.spliced")
}

/// How many opens the mount at `mp` has passed through to a disk's file so far.
pub fn passed_through(mp: &Path) -> u64 {
    root_counter(mp, "user.vmsnapfs.passthrough")
}

/// How many extents of changes views the mount at `mp` has stored in the page cache.
pub fn stored(mp: &Path) -> u64 {
    root_counter(mp, "user.vmsnapfs.stored")
}

fn root_counter(mp: &Path, xattr: &str) -> u64 {
    let v = run(Command::new("getfattr")
        .args(["--only-values", "-n", xattr])
        .arg(mp));
    v.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{xattr}: {v:?}: {e}"))
}
