//! Helpers shared by the integration tests: running the independent tools (qemu-img,
//! qemu-io, sfdisk) that act as oracles, and comparing our reads with their output.
#![allow(dead_code)]

pub mod gen;

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};
use vmsnapfs_io::ReadAt;
use vmsnapfs_vmdk::Disk;

/// Runs a tool and panics with its output when it fails or is missing: CI installs these,
/// so a missing tool is a broken setup, not a reason to skip.
pub fn run(dir: &Path, prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog} (install qemu-utils / fdisk): {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `qemu-io -f FORMAT -c CMD… IMAGE`: each command run in turn on the image.
pub fn qemu_io(dir: &Path, format: &str, image: &str, cmds: &[&str]) -> String {
    let mut args = vec!["-f", format];
    for c in cmds {
        args.push("-c");
        args.push(c);
    }
    args.push(image);
    run(dir, "qemu-io", &args)
}

/// `qemu-img` with whitespace-separated arguments (none of ours contain spaces).
pub fn qemu_img(dir: &Path, args: &str) -> String {
    run(
        dir,
        "qemu-img",
        &args.split_whitespace().collect::<Vec<_>>(),
    )
}

pub fn run_stdin(dir: &Path, prog: &str, args: &[&str], input: &str) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(prog)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{prog} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What qemu-img reads from `image`: its raw conversion.
pub fn qemu_raw(dir: &Path, image: &str) -> Vec<u8> {
    let out = format!("{image}.qemu.raw");
    run(dir, "qemu-img", &["convert", "-O", "raw", image, &out]);
    let v = std::fs::read(dir.join(&out)).unwrap();
    std::fs::remove_file(dir.join(&out)).unwrap();
    v
}

pub fn sha256(b: &[u8]) -> String {
    format!("{:x}", Sha256::digest(b))
}

pub fn read_all(disk: &Disk) -> Vec<u8> {
    let mut v = vec![0u8; disk.capacity() as usize];
    for (i, c) in v.chunks_mut(1 << 20).enumerate() {
        disk.read_at((i as u64) << 20, c).unwrap();
    }
    v
}

/// A small deterministic PRNG (xorshift64*), so tests need no extra crate and repeat.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let x = self.next().to_le_bytes();
            c.copy_from_slice(&x[..c.len()]);
        }
    }
}

/// Checks `disk` against `expected` whole, by unaligned random reads from several threads,
/// and checks that everything outside `allocated_ranges` is zero.
pub fn check_disk(disk: &Disk, expected: &[u8], what: &str) {
    assert_eq!(disk.capacity(), expected.len() as u64, "{what}: capacity");
    let ours = read_all(disk);
    assert!(
        ours == expected,
        "{what}: whole-disk read differs from qemu-img (sha256 {} vs {})",
        sha256(&ours),
        sha256(expected)
    );
    std::thread::scope(|s| {
        for t in 0..3u64 {
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t + 1));
                let mut buf = vec![0u8; 300_000];
                for _ in 0..60 {
                    let len = rng.below(buf.len() as u64) as usize + 1;
                    let off = rng.below(expected.len() as u64 - len as u64 + 1);
                    disk.read_at(off, &mut buf[..len]).unwrap();
                    assert!(
                        buf[..len] == expected[off as usize..off as usize + len],
                        "{what}: read {len} at {off}"
                    );
                }
            });
        }
    });
    let ranges = disk.allocated_ranges().unwrap();
    let mut prev = 0u64;
    for r in &ranges {
        assert!(
            r.start >= prev && r.start < r.end && r.end <= disk.capacity(),
            "{what}: ranges not sorted/merged: {ranges:?}"
        );
        assert!(
            expected[prev as usize..r.start as usize]
                .iter()
                .all(|&b| b == 0),
            "{what}: data in {prev}..{} outside allocated ranges",
            r.start
        );
        prev = r.end;
    }
    assert!(
        expected[prev as usize..].iter().all(|&b| b == 0),
        "{what}: data after last allocated range"
    );
}

/// `qemu-img map` as a second oracle: every range qemu says holds data must be inside ours.
pub fn check_map(dir: &Path, image: &str, disk: &Disk) {
    let out = run(dir, "qemu-img", &["map", "--output=json", image]);
    let ranges = disk.allocated_ranges().unwrap();
    for line in out.split('}') {
        let get = |k: &str| -> Option<&str> {
            let i = line.find(&format!("\"{k}\":"))? + k.len() + 3;
            let rest = line[i..].trim_start();
            Some(rest.split([',', '}']).next().unwrap().trim())
        };
        let (Some(start), Some(len), Some(data)) = (get("start"), get("length"), get("data"))
        else {
            continue;
        };
        if data != "true" {
            continue;
        }
        let start: u64 = start.parse().unwrap();
        let end = start + len.parse::<u64>().unwrap();
        let mut covered = start;
        for r in &ranges {
            if r.start <= covered && r.end > covered {
                covered = r.end;
            }
        }
        assert!(
            covered >= end,
            "{image}: qemu-img map says {start}..{end} holds data, outside our ranges {ranges:?}"
        );
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
