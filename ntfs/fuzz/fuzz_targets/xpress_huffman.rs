#![no_main]
//! One WOF XPRESS chunk; the first byte picks the chunk size.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let mut out = vec![0u8; [4096, 8192, 16384, 1 + sel as usize * 64][sel as usize % 4]];
    let _ = vmsnapfs_ntfs::xpress_huffman::decompress(rest, &mut out);
});
