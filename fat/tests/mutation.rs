//! Deterministic mutation test: small real images with bytes flipped by a seeded PRNG,
//! then everything read. Any outcome but a panic or a hang is acceptable.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use vmsnapfs_fat::{FileId, FileKind, Volume};
use vmsnapfs_io::{check_bounds, ReadAt};

const ITERATIONS_PER_IMAGE: usize = 800;

/// `FAT_MUTATION_ITERATIONS` / `FAT_MUTATION_SEED` run a longer or different campaign
/// by hand; the defaults keep the suite fast and deterministic.
fn iterations() -> usize {
    std::env::var("FAT_MUTATION_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ITERATIONS_PER_IMAGE)
}

fn seed_offset() -> u64 {
    std::env::var("FAT_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
const MAX_ENTRIES: usize = 5_000;
const MAX_READ: u64 = 256 * 1024;

/// The base image with a few bytes replaced, without copying the image each time.
struct Mutated {
    base: Arc<Vec<u8>>,
    flips: BTreeMap<u64, u8>,
}

impl ReadAt for Mutated {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_bounds(offset, buf.len(), self.base.len() as u64)?;
        let start = offset as usize;
        buf.copy_from_slice(&self.base[start..start + buf.len()]);
        for (&o, &b) in self.flips.range(offset..offset + buf.len() as u64) {
            buf[(o - offset) as usize] = b;
        }
        Ok(())
    }
    fn size(&self) -> u64 {
        self.base.len() as u64
    }
}

/// Reads everything reachable, within budgets, ignoring errors.
fn exercise(vol: &Volume) {
    let _ = vol.info();
    let mut seen = 0usize;
    let mut stack: Vec<(FileId, usize)> = vec![(vol.root(), 0)];
    let mut buf = vec![0u8; 64 * 1024];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = vol.read_dir(dir) else {
            continue;
        };
        for e in entries {
            seen += 1;
            if seen > MAX_ENTRIES {
                return;
            }
            let _ = vol.lookup(dir, &e.name);
            let _ = vol.lookup(dir, &swap_case(&e.name));
            let Ok(meta) = vol.stat(e.id) else {
                continue;
            };
            match e.kind {
                // Corrupt directories can point at their ancestors: bound the depth.
                FileKind::Directory if depth < 40 => stack.push((e.id, depth + 1)),
                FileKind::Directory => {}
                FileKind::File => {
                    let _ = vol.extents(e.id);
                    let mut off = 0;
                    while off < meta.size.min(MAX_READ) {
                        match vol.read(e.id, off, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => off += n as u64,
                        }
                    }
                    let _ = vol.read(e.id, meta.size.saturating_sub(3), &mut buf[..7]);
                    let _ = vol.read(e.id, u64::MAX - 1, &mut buf[..7]);
                }
            }
        }
    }
    // Ids that were never handed out must fail cleanly too.
    for raw in [1, 31, 512, 4096, u64::MAX - 31] {
        let _ = vol.stat(FileId::from_u64(raw));
        let _ = vol.read_dir(FileId::from_u64(raw));
    }
}

/// Offsets worth mutating: the metadata region at the front (boot sectors, FATs,
/// FAT12/16 root) and the bytes around every directory entry of the clean image.
fn hot_offsets(vol: &Volume, len: u64) -> Vec<(u64, u64)> {
    let mut ranges = vec![(0, len.min(96 * 1024))];
    let mut stack = vec![vol.root()];
    while let Some(d) = stack.pop() {
        for e in vol.read_dir(d).unwrap() {
            let o = e.id.as_u64();
            ranges.push((o.saturating_sub(96), (o + 64).min(len)));
            if e.kind == FileKind::Directory {
                stack.push(e.id);
            }
        }
    }
    ranges
}

fn mutate(name: &str, image: Vec<u8>, seed: u64) {
    let base = Arc::new(image);
    let clean = Volume::open(Arc::new(base.clone())).unwrap();
    exercise(&clean);
    let ranges = hot_offsets(&clean, base.len() as u64);
    let seed = seed.wrapping_add(seed_offset());
    let iterations = iterations();
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut opened = 0usize;
    for iter in 0..iterations {
        let mut flips = BTreeMap::new();
        for _ in 0..1 + rng.below(8) {
            // A quarter each to the boot sector and the metadata region, half to
            // directory entries; uniform choice would almost never hit the BPB.
            let (lo, hi) = match rng.below(4) {
                0 => (0, 512),
                1 => ranges[0],
                _ => ranges[1 + rng.below(ranges.len() as u64 - 1) as usize],
            };
            let off = lo + rng.below(hi - lo);
            let byte = match rng.below(4) {
                0 => 0,
                1 => 0xFF,
                _ => rng.next() as u8,
            };
            flips.insert(off, byte);
            // Now and then the same damage in the FAT32 backup boot sector, so that
            // both copies are sometimes bad.
            if off < 512 && rng.below(2) == 0 {
                flips.insert(off + 6 * 512, byte);
            }
        }
        let t = Instant::now();
        let reader = Mutated {
            base: base.clone(),
            flips: flips.clone(),
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(vol) = Volume::open(Arc::new(reader)) {
                exercise(&vol);
                opened += 1;
            }
        }));
        assert!(
            outcome.is_ok(),
            "{name}: panic at iteration {iter} (seed {seed}) with flips {flips:?}"
        );
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < Duration::from_secs(5),
            "{name}: iteration {iter} took {took:?} with flips {flips:?}"
        );
    }
    eprintln!(
        "{name}: {iterations} mutations ({opened} opened) in {:?}, slowest {slowest:?}",
        start.elapsed()
    );
    // Many mutations must get past open, or the walk code is never exercised; some
    // must not, or the boot sector checks are never exercised.
    assert!(opened > iterations / 4, "{name}: only {opened} opened");
    assert!(opened < iterations, "{name}: every mutation opened");
}

fn small_shape() -> Shape {
    Shape {
        many: 40,
        depth: 6,
        max_file: 6000,
    }
}

fn fat_image(dir: &Path, bits: u32, kib: u64, seed: u64) -> Vec<u8> {
    require("mkfs.vfat");
    require("mcopy");
    let img = dir.join(format!("m{bits}.img"));
    let stage = dir.join(format!("m{bits}.stage"));
    fs::File::create(&img).unwrap().set_len(kib * 1024).unwrap();
    run(tool("mkfs.vfat")
        .args(["-F", &bits.to_string(), "-s", "1"])
        .arg(&img));
    build_stage(&stage, &small_shape(), seed);
    let args: Vec<_> = fs::read_dir(&stage)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    run(tool("mcopy")
        .arg("-s")
        .arg("-i")
        .arg(&img)
        .args(&args)
        .arg("::/"));
    fs::read(&img).unwrap()
}

#[test]
fn mutated_fat12() {
    let dir = tempdir();
    mutate("fat12", fat_image(dir.path(), 12, 1440, 1), 0x12);
}

#[test]
fn mutated_fat16() {
    let dir = tempdir();
    mutate("fat16", fat_image(dir.path(), 16, 8 * 1024, 2), 0x16);
}

#[test]
fn mutated_fat32() {
    let dir = tempdir();
    mutate("fat32", fat_image(dir.path(), 32, 34 * 1024, 3), 0x32);
}

#[test]
fn mutated_exfat() {
    require("mkfs.exfat");
    let dir = tempdir();
    let img = dir.path().join("mx.img");
    fs::File::create(&img).unwrap().set_len(4 << 20).unwrap();
    run(tool("mkfs.exfat").args(["-c", "512"]).arg(&img));
    let stage = dir.path().join("stage");
    build_stage(&stage, &small_shape(), 4);
    {
        let mut m = Mounted::new(&img, &dir.path().join("mnt"));
        for e in fs::read_dir(&stage).unwrap() {
            let e = e.unwrap();
            run(tool("cp").arg("-r").arg(e.path()).arg(&m.mnt));
        }
        m.unmount();
    }
    mutate("exfat", fs::read(&img).unwrap(), 0xEF);
}
