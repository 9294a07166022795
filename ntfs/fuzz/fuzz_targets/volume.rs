#![no_main]
//! A whole (small) volume image: open it and touch every file reachable from the root.
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use vmsnapfs_ntfs::{FileKind, Volume};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = Volume::open(Arc::new(data.to_vec())) else { return };
    let mut queue = vec![v.root()];
    let mut budget = 200usize;
    let mut buf = vec![0u8; 8192];
    while let Some(dir) = queue.pop() {
        let Ok(entries) = v.read_dir(dir) else { continue };
        for e in entries {
            if budget == 0 {
                return;
            }
            budget -= 1;
            let _ = v.lookup(dir, &e.name);
            if let Ok(md) = v.stat(e.id) {
                let _ = v.read(e.id, None, 0, &mut buf);
                // An in-memory source places nothing but holes: this walks the runs.
                let _ = v.place(e.id, None, 0, 1 << 20, &mut vmsnapfs_io::Places::new());
                let _ = v.streams(e.id);
                let _ = v.security_descriptor(e.id);
                let _ = v.allocated_ranges(e.id, None);
                let _ = v.lx_metadata(e.id);
                match md.kind {
                    FileKind::Directory if e.id != dir => queue.push(e.id),
                    FileKind::Symlink => {
                        let _ = v.read_link(e.id);
                    }
                    _ => {}
                }
            }
        }
    }
});
