#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vmsnapfs_ntfs::interix::parse(data, false);
    let _ = vmsnapfs_ntfs::interix::parse(data, true);
    let _ = vmsnapfs_ntfs::reparse_point::parse_link(data);
});
