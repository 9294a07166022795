#![no_main]
//! The primary superblock (xfs_sb), CRC and geometry checks included.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vmsnapfs_xfs::sb::parse(data);
});
