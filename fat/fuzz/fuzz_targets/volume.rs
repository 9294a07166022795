#![no_main]
//! Whole-volume target: the input is an image; open it and read everything reachable
//! within budgets (corrupt directories may form cycles, so depth is bounded).

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vmsnapfs_fat::{FileKind, Volume};

fuzz_target!(|data: &[u8]| {
    let Ok(vol) = Volume::open(Arc::new(data.to_vec())) else {
        return;
    };
    let _ = vol.info();
    let mut stack = vec![(vol.root(), 0)];
    let mut budget = 2_000;
    let mut buf = [0u8; 4096];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = vol.read_dir(dir) else {
            continue;
        };
        for e in entries {
            budget -= 1;
            if budget == 0 {
                return;
            }
            let _ = vol.lookup(dir, &e.name);
            let _ = vol.stat(e.id);
            match e.kind {
                FileKind::Directory if depth < 16 => stack.push((e.id, depth + 1)),
                FileKind::Directory => {}
                FileKind::File => {
                    let _ = vol.read(e.id, 0, &mut buf);
                    let _ = vol.place(e.id, 0, 1 << 20, &mut vmsnapfs_io::Places::new());
                }
            }
        }
    }
});
