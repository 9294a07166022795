#![no_main]
//! One WOF LZX chunk (32 KiB window).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let mut out = vec![0u8; if sel & 1 == 0 { 32768 } else { 1 + sel as usize * 100 }];
    let _ = vmsnapfs_ntfs::lzx::decompress(rest, &mut out);
});
