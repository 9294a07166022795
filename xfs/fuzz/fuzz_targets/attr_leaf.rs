#![no_main]
//! An attribute leaf or dabtree node block, a remote value block, and an xfs_acl value.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let mut b = rest.to_vec();
    b.resize(512usize << (sel & 7).min(7), 0);
    let _ = vmsnapfs_xfs::attr_leaf::parse(&b, sel & 8 != 0, 131);
    let _ = vmsnapfs_xfs::attr_leaf::rmt_payload(&b, 131);
    let _ = vmsnapfs_xfs::acl::to_linux(rest);
});
