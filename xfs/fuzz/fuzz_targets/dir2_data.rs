#![no_main]
//! A directory block (XD2B / XD2D / XDB3 / XDD3) of 4 KiB to 64 KiB.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let mut b = rest.to_vec();
    b.resize(4096usize << (sel & 3), 0);
    let _ = vmsnapfs_xfs::dir2_data::parse(&b, sel & 4 != 0, sel & 8 != 0, 128);
});
