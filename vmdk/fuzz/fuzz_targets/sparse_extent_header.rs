//! A hosted sparse ("KDMV") file: header, embedded descriptor, grain directory and tables.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnapfs_vmdk::fuzzing::{open_and_read, SparseExtentHeader};

fuzz_target!(|data: &[u8]| {
    if let Some(b) = data.get(..512) {
        let mut h = [0u8; 512];
        h.copy_from_slice(b);
        if let Ok(h) = SparseExtentHeader::parse(&h) {
            let _ = h.validate();
        }
    }
    open_and_read(&[("m.vmdk", data.to_vec())], 1 << 20);
});
