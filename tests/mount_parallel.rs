//! Eight parallel readers at random offsets for 30 s (VMSNAPFS_STRESS_SECS to change)
//! over disk images and a guest file; every byte is checked against qemu-img's reading.

mod common;

use std::fs;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: plenty for picking offsets.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn eight_parallel_random_readers_get_every_byte_right() {
    let secs: u64 = std::env::var("VMSNAPFS_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let m = Mount::new(fixtures(), &["cache_size=8"]);
    let st: serde_json::Value =
        serde_json::from_slice(&fs::read(m.mp.join("winvm/status.json")).unwrap()).unwrap();
    let mut targets = Vec::new();
    for n in 0..2 {
        let head = st["disks"][n]["chain"][0].as_str().unwrap().to_owned();
        let raw = qemu_raw(Path::new(&head));
        targets.push((
            m.mp.join(format!("winvm/disks/disk{n}-flat.vmdk")),
            Arc::new(fs::read(&raw).unwrap()),
        ));
        fs::remove_file(raw).unwrap();
    }
    let raw = qemu_raw(&fixtures().join("sub-streamOptimized/disk.vmdk"));
    targets.push((
        m.mp.join("sub-streamOptimized/disks/disk0-flat.vmdk"),
        Arc::new(fs::read(&raw).unwrap()),
    ));
    let big = "winvm/volumes/disk0p1/Users/Public/Documents/big.bin";
    targets.push((m.mp.join(big), Arc::new(fs::read(m.mp.join(big)).unwrap())));
    // The guest file's oracle is the copy ntfs-3g check in mount_volumes; here its
    // own first full read, re-read at random under load.
    let targets = Arc::new(targets);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let targets = targets.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t + 1).wrapping_mul(0x1234_5678_9abc));
                let files: Vec<fs::File> = targets
                    .iter()
                    .map(|(p, _)| {
                        let mut o = fs::OpenOptions::new();
                        o.read(true);
                        // Half the readers bypass the page cache so every read is a
                        // FUSE request.
                        if t % 2 == 1 {
                            o.custom_flags(libc::O_DIRECT);
                        }
                        o.open(p).unwrap()
                    })
                    .collect();
                let mut reads = 0u64;
                let mut buf = vec![0u8; 2 << 20];
                while Instant::now() < deadline {
                    let i = (rng.next() % targets.len() as u64) as usize;
                    let want = &targets[i].1;
                    let size = want.len() as u64;
                    let off = (rng.next() % size) & !511;
                    let len = ((rng.next() % (2 << 20)) + 1).min(size - off) as usize;
                    let len = if t % 2 == 1 {
                        len.div_ceil(512) * 512
                    } else {
                        len
                    };
                    let n = files[i].read_at(&mut buf[..len], off).unwrap();
                    let end = (off as usize + n).min(want.len());
                    assert_eq!(n, end - off as usize, "short read at {off}");
                    assert!(
                        buf[..n] == want[off as usize..end],
                        "thread {t}: wrong bytes in {} at {off}+{n}",
                        targets[i].0.display()
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(total > 100, "only {total} reads");
    m.umount();
}
