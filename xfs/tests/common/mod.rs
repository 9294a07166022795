//! Images made by the real tools (mkfs.xfs -p protofile, xfs_db -x attr_set), checked by
//! xfs_repair -n, and xfs_db as the oracle for what is on them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Every byte of `len` at `offset` of the file, placed on the image and read back from
/// it; panics when any could not be placed.
pub fn placed(vol: &vmsnapfs_xfs::Volume, ino: u64, offset: u64, len: u64) -> Vec<u8> {
    let mut p = vmsnapfs_io::Places::new();
    let n = vol
        .place(ino, offset, len, &mut p)
        .unwrap_or_else(|| panic!("inode {ino}: not placed"));
    assert_eq!(n, p.len());
    p.gather().unwrap()
}

/// mkfs.xfs `-m` for a v4 volume: no CRCs, and so none of the features that need them.
pub const V4_META: &str = "crc=0,finobt=0,reflink=0,rmapbt=0";

pub fn have_tools() -> bool {
    let ok = ["mkfs.xfs", "xfs_db", "xfs_repair"].iter().all(|t| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        eprintln!("skipping: xfsprogs (mkfs.xfs, xfs_db, xfs_repair) not installed");
    }
    ok
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

/// What a protofile entry should become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        data: Vec<u8>,
    },
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Link {
        target: Vec<u8>,
    },
    Dev {
        block: bool,
        mode: u32,
        major: u32,
        minor: u32,
    },
    Fifo {
        mode: u32,
    },
}

/// A tree to build: path (relative, '/'-separated) → what.
pub type Tree = BTreeMap<String, Want>;

fn mode_str(kind: char, mode: u32) -> String {
    let u = if mode & 0o4000 != 0 { 'u' } else { '-' };
    let g = if mode & 0o2000 != 0 { 'g' } else { '-' };
    format!("{kind}{u}{g}{:03o}", mode & 0o777)
}

/// Writes the protofile for `tree` (host files under `dir`), returns its path.
pub fn protofile(dir: &Path, tree: &Tree) -> PathBuf {
    let mut out = String::from("vmsnapfs-xfs-test\n0 0\nd--755 0 0\n");
    let mut n = 0;
    fn emit(out: &mut String, dir: &Path, tree: &Tree, prefix: &str, n: &mut usize) {
        for (path, w) in tree {
            let Some(rest) = path.strip_prefix(prefix) else {
                continue;
            };
            if rest.contains('/') || rest.is_empty() {
                continue;
            }
            match w {
                Want::File {
                    mode,
                    uid,
                    gid,
                    data,
                } => {
                    *n += 1;
                    let host = dir.join(format!("h{n}"));
                    std::fs::write(&host, data).unwrap();
                    out.push_str(&format!(
                        "{rest} {} {uid} {gid} {}\n",
                        mode_str('-', *mode),
                        host.display()
                    ));
                }
                Want::Dir { mode, uid, gid } => {
                    out.push_str(&format!("{rest} {} {uid} {gid}\n", mode_str('d', *mode)));
                    emit(out, dir, tree, &format!("{path}/"), n);
                    out.push_str("$\n");
                }
                Want::Link { target } => {
                    out.push_str(&format!(
                        "{rest} l--777 0 0 {}\n",
                        String::from_utf8_lossy(target)
                    ));
                }
                Want::Dev {
                    block,
                    mode,
                    major,
                    minor,
                } => {
                    let k = if *block { 'b' } else { 'c' };
                    out.push_str(&format!(
                        "{rest} {} 0 0 {major} {minor}\n",
                        mode_str(k, *mode)
                    ));
                }
                Want::Fifo { mode } => {
                    out.push_str(&format!("{rest} {} 0 0\n", mode_str('p', *mode)))
                }
            }
        }
    }
    emit(&mut out, dir, tree, "", &mut n);
    out.push_str("$\n");
    let p = dir.join("proto");
    std::fs::write(&p, out).unwrap();
    p
}

pub struct Image {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Image {
    /// mkfs.xfs of a `size_mib` image with `args` and the tree, then the xfs_db commands.
    pub fn build(tree: &Tree, size_mib: u64, args: &[&str], db_cmds: &[String]) -> Image {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xfs.img");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(size_mib << 20).unwrap();
        drop(f);
        let proto = protofile(dir.path(), tree);
        let out = Command::new("mkfs.xfs")
            .args(["-q", "-f"])
            .args(args)
            .arg("-p")
            .arg(&proto)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mkfs.xfs {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if !db_cmds.is_empty() {
            let mut c = Command::new("xfs_db");
            c.arg("-x");
            for cmd in db_cmds {
                c.arg("-c").arg(cmd);
            }
            let out = c.arg(&path).output().unwrap();
            assert!(
                out.status.success(),
                "xfs_db: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Image { dir, path }
    }

    pub fn repair_ok(&self) -> Result<(), String> {
        let out = Command::new("xfs_repair")
            .arg("-n")
            .arg(&self.path)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr))
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }

    pub fn open(&self) -> vmsnapfs_xfs::Volume {
        vmsnapfs_xfs::Volume::open(Arc::new(std::fs::read(&self.path).unwrap())).unwrap()
    }

    /// Opened on the image file itself, so that file bytes can be placed in it.
    pub fn open_file(&self) -> vmsnapfs_xfs::Volume {
        let src = vmsnapfs_io::FileSource::open(&self.path).unwrap();
        vmsnapfs_xfs::Volume::open(Arc::new(src)).unwrap()
    }

    /// Runs read-only xfs_db commands, returns stdout.
    pub fn db(&self, cmds: &[String]) -> String {
        let mut c = Command::new("xfs_db");
        c.env("TZ", "UTC").arg("-r");
        for cmd in cmds {
            c.arg("-c").arg(cmd);
        }
        let out = c.arg(&self.path).output().unwrap();
        assert!(
            out.status.success(),
            "xfs_db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// xfs_db's listing of a directory: name → inode number ("." and ".." left out).
    pub fn db_ls(&self, path: &str) -> BTreeMap<Vec<u8>, u64> {
        let out = self.db(&[format!("ls {path}")]);
        let mut m = BTreeMap::new();
        for line in out.lines().skip(1) {
            // offset ino type hash namelen name (good)
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 7 {
                continue;
            }
            let name = f[5..f.len() - 1].join(" ");
            if name == "." || name == ".." {
                continue;
            }
            m.insert(name.into_bytes(), f[1].parse().unwrap());
        }
        m
    }

    /// `field = value` pairs xfs_db prints for inode `ino` (core and v3 fields).
    pub fn db_inode(&self, ino: u64) -> BTreeMap<String, String> {
        let out = self.db(&[
            format!("inode {ino}"),
            "print core".into(),
            "print v3".into(),
        ]);
        out.lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }
}

/// Parses xfs_db's ctime(3)-style date ("Thu Dec  3 08:22:50 2026", TZ=UTC) to seconds.
pub fn parse_ctime(s: &str) -> i64 {
    let f: Vec<&str> = s.split_whitespace().collect();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|&x| x == f[1]).unwrap() as i64 + 1;
    let d: i64 = f[2].parse().unwrap();
    let hms: Vec<i64> = f[3].split(':').map(|x| x.parse().unwrap()).collect();
    let y: i64 = f[4].parse().unwrap();
    // days from civil (Howard Hinnant)
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

/// The standard test tree: every kind protofiles can make, small/large files, and
/// directories big enough for the block, leaf and node formats.
pub fn standard_tree(remote_symlink: bool, big_entries: usize) -> Tree {
    let mut t = Tree::new();
    let f = |mode, uid, gid, data| Want::File {
        mode,
        uid,
        gid,
        data,
    };
    t.insert("small".into(), f(0o644, 1000, 1001, b"hello\n".to_vec()));
    t.insert("empty".into(), f(0o600, 0, 0, Vec::new()));
    t.insert("r100k".into(), f(0o640, 7, 8, bytes(100_000, 1)));
    t.insert("big5m".into(), f(0o644, 0, 0, bytes(5_000_000, 2)));
    t.insert("setuid".into(), f(0o4755, 0, 0, bytes(10, 3)));
    t.insert(
        "sub".into(),
        Want::Dir {
            mode: 0o750,
            uid: 5,
            gid: 6,
        },
    );
    t.insert("sub/inner".into(), f(0o644, 0, 0, bytes(4097, 4)));
    t.insert(
        "sub/deeper".into(),
        Want::Dir {
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
    );
    t.insert("sub/deeper/x".into(), f(0o644, 0, 0, bytes(1, 5)));
    t.insert(
        "mid".into(),
        Want::Dir {
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
    );
    for i in 0..40 {
        t.insert(format!("mid/m{i}"), f(0o644, 0, 0, Vec::new()));
    }
    t.insert(
        "leafdir".into(),
        Want::Dir {
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
    );
    for i in 0..300 {
        t.insert(
            format!("leafdir/entry_number_{i:04}"),
            f(0o644, 0, 0, Vec::new()),
        );
    }
    t.insert(
        "big".into(),
        Want::Dir {
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
    );
    for i in 0..big_entries {
        t.insert(
            format!("big/file_{i:05}_with_a_longish_name"),
            f(0o644, 0, 0, Vec::new()),
        );
    }
    t.insert(
        "ln".into(),
        Want::Link {
            target: b"small".to_vec(),
        },
    );
    t.insert(
        "ln200".into(),
        Want::Link {
            target: "/y".repeat(100).into_bytes(),
        },
    );
    if remote_symlink {
        t.insert(
            "longln".into(),
            Want::Link {
                target: "/x".repeat(400).into_bytes(),
            },
        );
    }
    t.insert(
        "cdev".into(),
        Want::Dev {
            block: false,
            mode: 0o644,
            major: 4,
            minor: 5,
        },
    );
    t.insert(
        "bdev".into(),
        Want::Dev {
            block: true,
            mode: 0o640,
            major: 8,
            minor: 1,
        },
    );
    t.insert("fifo".into(), Want::Fifo { mode: 0o644 });
    t
}

impl Image {
    /// `db_inode` for many inodes in one xfs_db run.
    pub fn db_inodes(&self, inos: &[u64]) -> Vec<BTreeMap<String, String>> {
        let mut cmds = Vec::new();
        for i in inos {
            cmds.push(format!("inode {i}"));
            cmds.push("print core".into());
            cmds.push("print v3".into());
            cmds.push("print u3".into());
            cmds.push("print u".into());
            cmds.push("echo ENDINODE".into());
        }
        let out = self.db(&cmds);
        out.split("ENDINODE")
            .take(inos.len())
            .map(|chunk| {
                chunk
                    .lines()
                    .filter_map(|l| l.split_once(" = "))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect()
            })
            .collect()
    }
}

impl Image {
    /// Runs xfs_db in expert (writing) mode.
    pub fn db_x(&self, cmds: &[String]) {
        let mut c = Command::new("xfs_db");
        c.arg("-x");
        for cmd in cmds {
            c.arg("-c").arg(cmd);
        }
        let out = c.arg(&self.path).output().unwrap();
        assert!(
            out.status.success(),
            "xfs_db -x: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// xfs_logprint -t's verdict on the log: Some(true) for <DIRTY>, Some(false) <CLEAN>.
    pub fn logprint_dirty(&self) -> Option<bool> {
        let out = Command::new("xfs_logprint")
            .arg("-t")
            .arg(&self.path)
            .output()
            .ok()?;
        let s = String::from_utf8_lossy(&out.stdout);
        if s.contains("<DIRTY>") {
            Some(true)
        } else if s.contains("<CLEAN>") {
            Some(false)
        } else {
            None
        }
    }
}

/// The index of the only occurrence of `needle` in `hay`.
pub fn find_once(hay: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "pattern found {} times", hits.len());
    hits[0]
}
