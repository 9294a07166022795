//! Helpers shared by the integration tests: walking a volume, hashing, golden files and
//! running the external tools that act as oracles.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use vmsnapfs_io::FileSource;
use vmsnapfs_ntfs::{FileId, FileKind, Volume};

pub type Listing = BTreeMap<String, (u64, String)>;

pub fn testdata() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata");
    if p.is_dir() {
        Some(p)
    } else {
        skipped(&format!(
            "{} is absent (fresh clone without ../shared)",
            p.display()
        ));
        None
    }
}

pub fn open(path: &Path) -> Volume {
    let src = FileSource::open(path).expect("open image");
    Volume::open(Arc::new(src)).expect("open NTFS volume")
}

pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_bytes(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// Reads a whole stream in odd-sized pieces (exercises unaligned positional reads).
pub fn hash_stream(vol: &Volume, id: FileId, stream: Option<&str>) -> (u64, String) {
    let mut h = Sha256::new();
    let mut off = 0u64;
    let mut buf = vec![0u8; 65536 + 1234];
    loop {
        let n = vol.read(id, stream, off, &mut buf).unwrap_or_else(|e| {
            panic!("read {id:?} {stream:?} at {off}: {e}");
        });
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        off += n as u64;
    }
    (off, hex(&h.finalize()))
}

/// Every regular file and named stream under the root, like the golden files: paths
/// relative to the root, streams as `path:stream`, `$` metadata files left out.
pub fn walk(vol: &Volume) -> Listing {
    let mut out = Listing::new();
    walk_dir(vol, vol.root(), "", &mut out, 0);
    out
}

fn walk_dir(vol: &Volume, dir: FileId, prefix: &str, out: &mut Listing, depth: usize) {
    assert!(depth < 200, "directory nesting too deep (loop?)");
    for e in vol.read_dir(dir).expect("read_dir") {
        if prefix.is_empty() && e.is_metafile() {
            continue;
        }
        let path = format!("{prefix}{}", e.name);
        let md = vol
            .stat(e.id)
            .unwrap_or_else(|err| panic!("stat {path}: {err}"));
        for s in vol.streams(e.id).expect("streams") {
            let (size, h) = hash_stream(vol, e.id, Some(&s.name));
            assert_eq!(size, s.size, "{path}:{}", s.name);
            out.insert(format!("{path}:{}", s.name), (size, h));
        }
        match md.kind {
            FileKind::Directory => walk_dir(vol, e.id, &format!("{path}/"), out, depth + 1),
            FileKind::File | FileKind::OtherReparse => {
                let (size, h) = hash_stream(vol, e.id, None);
                assert_eq!(size, md.size, "{path}");
                out.insert(path, (size, h));
            }
            FileKind::Symlink | FileKind::Fifo | FileKind::CharDevice | FileKind::BlockDevice => {}
        }
    }
}

pub fn read_golden(path: &Path) -> Listing {
    let text = std::fs::read_to_string(path).expect("golden file");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut it = l.split('\t');
            let p = it.next().unwrap().to_string();
            let size = it.next().unwrap().parse().unwrap();
            let h = it.next().unwrap().to_string();
            (p, (size, h))
        })
        .collect()
}

pub fn assert_listing_eq(ours: &Listing, theirs: &Listing, what: &str) {
    for (p, v) in theirs {
        match ours.get(p) {
            Some(o) => assert_eq!(o, v, "{what}: {p} differs"),
            None => panic!("{what}: {p} missing from our listing"),
        }
    }
    for p in ours.keys() {
        assert!(
            theirs.contains_key(p),
            "{what}: we list {p} which the oracle does not"
        );
    }
}

/// Runs a tool and returns stdout; panics loudly if the tool is missing or fails.
pub fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} (install it: scripts/test.sh): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An ntfs-3g FUSE mount of an image, unmounted (and the daemon reaped, so every write
/// is on disk) when dropped.
pub struct Mount {
    pub dir: PathBuf,
    child: Option<std::process::Child>,
}

impl Mount {
    pub fn new(img: &Path, dir: &Path, extra_opts: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let mut opts = String::from("no_detach,streams_interface=windows");
        if !extra_opts.is_empty() {
            opts.push(',');
            opts.push_str(extra_opts);
        }
        let child = Command::new("ntfs-3g")
            .arg("-o")
            .arg(&opts)
            .arg(img)
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("ntfs-3g must be installed (scripts/test.sh): {e}"));
        let mut m = Mount {
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        let canon = std::fs::canonicalize(dir).unwrap();
        for _ in 0..800 {
            if let Some(c) = m.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    let mut err = String::new();
                    if let Some(mut e) = c.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                    m.child = None;
                    panic!(
                        "ntfs-3g exited with {status} mounting {}: {err}",
                        img.display()
                    );
                }
            }
            let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
            if mounts
                .lines()
                .any(|l| l.split(' ').nth(1) == Some(canon.to_str().unwrap()))
            {
                return m;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("ntfs-3g mount of {} did not appear", img.display());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // The kernel can briefly report the mount busy right after the last file closes.
        let mut ok = false;
        for _ in 0..50 {
            let st = Command::new("fusermount")
                .arg("-u")
                .arg(&self.dir)
                .stderr(std::process::Stdio::null())
                .status();
            if st.is_ok_and(|s| s.success()) {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if !ok {
            let _ = Command::new("fusermount")
                .arg("-u")
                .arg("-z")
                .arg(&self.dir)
                .status();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}

/// A fresh image: `mkntfs` with the given cluster and sector size.
pub fn mkntfs(path: &Path, size: u64, cluster: u32, sector: u32, label: &str) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    run(
        "mkntfs",
        &[
            "-q",
            "-F",
            "-f",
            "-c",
            &cluster.to_string(),
            "-s",
            &sector.to_string(),
            "-L",
            label,
            path.to_str().unwrap(),
        ],
    );
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no RNG crate.
pub fn prng_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Compressible text.
pub fn text_bytes(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut i = 0u64;
    while v.len() < len {
        v.extend_from_slice(format!("line {i} of some fairly repetitive text\n").as_bytes());
        i += 1;
    }
    v.truncate(len);
    v
}

/// Regular files and named streams according to Sleuth Kit (`fls -l` sizes, `icat`
/// content), metadata files and deleted entries left out.
pub fn sleuthkit_listing(img: &Path) -> Listing {
    let img_s = img.to_str().unwrap();
    let text = String::from_utf8(run("fls", &["-r", "-p", "-F", "-l", img_s])).unwrap();
    let mut out = Listing::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 7 || f[0].contains('*') {
            continue;
        }
        let path = f[1].to_string();
        if path.starts_with('$') {
            continue;
        }
        let size: u64 = f[6].parse().unwrap();
        let inode = f[0]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches(':')
            .to_string();
        let hash = if size == 0 {
            sha256_bytes(&[])
        } else {
            let data = run("icat", &[img_s, &inode]);
            assert_eq!(data.len() as u64, size, "icat {inode} ({path})");
            sha256_bytes(&data)
        };
        out.insert(path, (size, hash));
    }
    out
}

/// Regular files (unnamed streams) and symlink targets as an ntfs-3g mount shows them.
pub fn ntfs3g_listing(
    root: &Path,
    rel: &str,
    out: &mut Listing,
    links: &mut std::collections::BTreeMap<String, String>,
) {
    for e in std::fs::read_dir(root.join(rel)).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let ft = std::fs::symlink_metadata(e.path()).map(|m| m.file_type());
        match ft {
            Ok(t) if t.is_symlink() => {
                links.insert(
                    path,
                    std::fs::read_link(e.path())
                        .unwrap()
                        .to_string_lossy()
                        .into(),
                );
            }
            Ok(t) if t.is_dir() => ntfs3g_listing(root, &path, out, links),
            Ok(_) => {
                let data = std::fs::read(e.path()).unwrap();
                out.insert(path, (data.len() as u64, sha256_bytes(&data)));
            }
            // ntfs-3g cannot stat some reparse points it does not fully support.
            Err(_) => {
                links.insert(
                    path,
                    std::fs::read_link(e.path())
                        .unwrap()
                        .to_string_lossy()
                        .into(),
                );
            }
        }
    }
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
