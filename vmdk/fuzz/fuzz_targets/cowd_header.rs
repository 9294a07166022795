//! COWD redo logs: header, 4096-entry grain tables.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnapfs_vmdk::fuzzing::{open_and_read, CowdHeader};

fuzz_target!(|data: &[u8]| {
    let mut f = b"COWD".to_vec();
    f.extend_from_slice(data);
    if let Some(b) = f.get(..44) {
        let mut h = [0u8; 44];
        h.copy_from_slice(b);
        let _ = CowdHeader::parse(&h);
    }
    open_and_read(&[("c.vmdk", f)], 1 << 20);
});
