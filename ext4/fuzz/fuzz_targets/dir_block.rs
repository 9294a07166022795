#![no_main]
//! A directory block (with and without the filetype feature) and an htree root.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vmsnapfs_ext4::dir_entry::parse_block(data, true);
    let _ = vmsnapfs_ext4::dir_entry::parse_block(data, false);
    let _ = vmsnapfs_ext4::htree::parse_root(data, false);
    let _ = vmsnapfs_ext4::htree::parse_root(data, true);
});
