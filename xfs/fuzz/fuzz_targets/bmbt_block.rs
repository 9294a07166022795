#![no_main]
//! A long-form block-mapping B+tree block (BMAP / BMA3) and an in-inode root.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let mut b = rest.to_vec();
    b.resize(512usize << (sel & 3), 0);
    let _ = vmsnapfs_xfs::bmbt::parse_block(&b, sel & 4 != 0, 131);
    let _ = vmsnapfs_xfs::bmbt::parse_root(rest);
});
