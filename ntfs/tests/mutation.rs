//! Deterministic mutation test: seeded byte flips in the metadata of testfs1 (MFT
//! records, index blocks, boot sector), then every API on every reachable file. Any
//! panic or hang fails; errors are expected.

mod common;
use common::*;
use std::collections::HashSet;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use vmsnapfs_ntfs::{FileId, FileKind, Volume};

const ITERATIONS: u64 = 3000;

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
    let _ = v.free_clusters();
    let mut queue = vec![v.root()];
    let mut seen: HashSet<FileId> = HashSet::new();
    let mut budget = 150usize;
    let mut buf = vec![0u8; 70_000];
    while let Some(dir) = queue.pop() {
        if !seen.insert(dir) || budget == 0 {
            continue;
        }
        let Ok(entries) = v.read_dir(dir) else {
            continue;
        };
        for e in entries.iter().take(40) {
            budget = budget.saturating_sub(1);
            let _ = v.lookup(dir, &e.name);
            let Ok(md) = v.stat(e.id) else { continue };
            let _ = v.read(e.id, None, 0, &mut buf);
            let _ = v.read(e.id, None, md.size.saturating_sub(100), &mut buf[..200]);
            let _ = v.allocated_ranges(e.id, None);
            let _ = v.security_descriptor(e.id);
            if let Ok(streams) = v.streams(e.id) {
                for s in streams.iter().take(4) {
                    let _ = v.read(e.id, Some(&s.name), 0, &mut buf);
                }
            }
            match md.kind {
                FileKind::Directory => queue.push(e.id),
                FileKind::Symlink => {
                    let _ = v.read_link(e.id);
                }
                _ => {}
            }
        }
    }
}

#[test]
fn byte_flips_never_panic_or_hang() {
    let Some(td) = testdata() else { return };
    let base = std::fs::read(td.join("ntfs/testfs1")).unwrap();
    // Where the interesting bytes are: MFT records and INDX blocks.
    let cluster = u16::from_le_bytes([base[11], base[12]]) as usize * base[13] as usize;
    let mft = u64::from_le_bytes(base[0x30..0x38].try_into().unwrap()) as usize * cluster;
    let indx: Vec<usize> = (0..base.len())
        .step_by(512)
        .filter(|&o| &base[o..o + 4] == b"INDX")
        .collect();
    assert!(!indx.is_empty());
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let mut rng = Rng(0x005E_ED0F_7E57);
        for iter in 0..ITERATIONS {
            let mut img = base.clone();
            for _ in 0..1 + rng.below(8) {
                let pos = match rng.below(10) {
                    0..=4 => mft + rng.below(64 * 1024),
                    5..=7 => indx[rng.below(indx.len())] + rng.below(4096),
                    8 => rng.below(512),
                    _ => rng.below(img.len()),
                };
                if pos < img.len() {
                    img[pos] = if rng.below(2) == 0 {
                        img[pos] ^ (1 << rng.below(8))
                    } else {
                        rng.next() as u8
                    };
                }
            }
            let opened = match Volume::open(Arc::new(img)) {
                Ok(v) => {
                    exercise(&v);
                    true
                }
                Err(_) => false,
            };
            if tx.send((iter, opened)).is_err() {
                return;
            }
        }
    });
    let mut last = 0;
    let mut opened = 0;
    while last + 1 < ITERATIONS {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok((i, o)) => {
                last = i;
                opened += o as u64;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("iteration {} has run for 20 s: a hang", last + 1)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    worker
        .join()
        .expect("a mutated image made the reader panic");
    // Most mutations leave the volume openable, so the per-file paths were exercised.
    assert!(
        opened > ITERATIONS / 2,
        "only {opened} of {ITERATIONS} images opened"
    );
}
