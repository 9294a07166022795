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
        eprintln!(
            "SKIP: {} is absent (fresh clone without ../shared)",
            p.display()
        );
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
            FileKind::Symlink => {}
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
