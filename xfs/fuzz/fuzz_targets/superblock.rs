#![no_main]
//! The primary superblock (xfs_sb), CRC and geometry checks included, and the same
//! bytes as an AGF sector.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vmsnapfs_xfs::sb::parse(data);
    let _ = vmsnapfs_xfs::agf::parse(data, true);
    let _ = vmsnapfs_xfs::agf::parse(data, false);
});
