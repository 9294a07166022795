#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vmsnapfs_ntfs::boot_sector::BootSector::parse(data);
});
