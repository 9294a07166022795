#![no_main]
//! A whole (small) volume image through the public API.
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use vmsnapfs_ext4::Volume;
use vmsnapfs_io::SharedBytes;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = Volume::open(Arc::new(SharedBytes(Arc::new(data.to_vec())))) else { return };
    let _ = v.info();
    let mut buf = vec![0u8; 4096];
    if let Ok(entries) = v.read_dir(v.root()) {
        for e in entries.iter().take(16) {
            let _ = v.stat(e.ino);
            let _ = v.read(e.ino, 0, &mut buf);
            let _ = v.place(e.ino, 0, 1 << 20, &mut vmsnapfs_io::Places::new());
            let _ = v.read_link(e.ino);
            let _ = v.xattrs(e.ino);
            let _ = v.data_ranges(e.ino);
            let _ = v.read_dir(e.ino);
        }
    }
});
