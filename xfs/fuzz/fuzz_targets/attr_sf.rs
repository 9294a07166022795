#![no_main]
//! A shortform attribute fork.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vmsnapfs_xfs::attr_sf::parse(data);
});
