#![no_main]
//! A shortform directory fork.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let _ = vmsnapfs_xfs::dir2_sf::parse(rest, rest.len() as u64, sel & 1 != 0);
});
