#![no_main]
//! A whole (tiny) volume: open it and read everything reachable, bounded.
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(vol) = vmsnapfs_xfs::Volume::open(Arc::new(data.to_vec())) else { return };
    let _ = vol.info();
    let mut stack = vec![vol.root()];
    let mut visited = 0;
    let mut buf = vec![0u8; 65536];
    while let Some(d) = stack.pop() {
        let Ok(ents) = vol.read_dir(d) else { continue };
        for e in ents {
            visited += 1;
            if visited > 10_000 {
                return;
            }
            let _ = vol.xattrs(e.ino);
            let _ = vol.read_link(e.ino);
            let _ = vol.read(e.ino, 0, &mut buf);
            let _ = vol.place(e.ino, 0, 1 << 20, &mut vmsnapfs_io::Places::new());
            let _ = vol.data_ranges(e.ino);
            if e.kind == vmsnapfs_xfs::FileKind::Dir {
                stack.push(e.ino);
            }
        }
    }
});
