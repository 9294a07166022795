#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vmsnapfs_ntfs::attribute_list::parse(data);
    let _ = vmsnapfs_ntfs::attribute_header::parse(data);
});
