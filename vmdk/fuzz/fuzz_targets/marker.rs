//! streamOptimized markers and footers, then the whole stream (grains are inflated).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnapfs_vmdk::fuzzing::{check_footer, open_and_read, Marker};

fuzz_target!(|data: &[u8]| {
    let _ = Marker::parse(data);
    if let Some(b) = data.get(..1536) {
        let mut t = [0u8; 1536];
        t.copy_from_slice(b);
        let _ = check_footer(&t);
    }
    // Give the mutated bytes a KDMV stream header so they reach the grain path.
    let mut f = b"KDMV\x03\x00\x00\x00\x01\x00\x03\x00".to_vec();
    f.extend_from_slice(data);
    open_and_read(&[("s.vmdk", f)], 1 << 20);
});
