//! Reads a whole virtual disk through the vmdk crate, for bench/vmdk.sh.
//!
//! usage: readall DISK.vmdk [--threads N] [--buf BYTES] [--sha256]
//! Prints "bytes seconds MB/s" (and the sha256 of the disk with --sha256, single-threaded).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sha2::{Digest, Sha256};
use vmsnapfs_io::ReadAt;
use vmsnapfs_vmdk::Disk;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: readall DISK.vmdk [--threads N] [--buf BYTES] [--sha256]");
        std::process::exit(2);
    };
    let opt = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().expect("number"))
            .unwrap_or(default)
    };
    let threads = opt(
        "--threads",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let buf_len = opt("--buf", 4 << 20) as u64;
    let sha = args.iter().any(|a| a == "--sha256");
    let disk = match Disk::open_path(Path::new(path)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let cap = disk.capacity();
    let start = Instant::now();
    if sha {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; buf_len as usize];
        let mut off = 0;
        while off < cap {
            let n = (cap - off).min(buf_len) as usize;
            disk.read_at(off, &mut buf[..n])
                .unwrap_or_else(|e| panic!("{e}"));
            h.update(&buf[..n]);
            off += n as u64;
        }
        println!("sha256 {:x}", h.finalize());
    } else {
        // Threads take the next chunk in turn, so the disk is still read roughly in order.
        let next = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut buf = vec![0u8; buf_len as usize];
                    loop {
                        let off = next.fetch_add(buf_len, Ordering::Relaxed);
                        if off >= cap {
                            break;
                        }
                        let n = (cap - off).min(buf_len) as usize;
                        disk.read_at(off, &mut buf[..n])
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                });
            }
        });
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{cap} {secs:.3} {:.1}", cap as f64 / secs / 1e6);
}
