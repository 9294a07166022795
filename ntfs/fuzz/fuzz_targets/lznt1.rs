#![no_main]
//! One LZNT1 compression unit (16 clusters of 4 KiB).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; 65536];
    let _ = vmsnapfs_ntfs::lznt1::decompress(data, &mut out);
});
