#![no_main]
//! The superblock parser, feature check and descriptor-location arithmetic.
use libfuzzer_sys::fuzz_target;
use vmsnapfs_ext4::superblock::{probe, Superblock};

fuzz_target!(|data: &[u8]| {
    if let Ok(sb) = Superblock::parse(data) {
        let _ = sb.check_features();
        let groups = sb.group_count();
        for g in [0, 1, 3, 25, groups.saturating_sub(1), groups] {
            let _ = sb.group_has_super(g);
            let _ = sb.descriptor_offset(g);
        }
        let _ = sb.label();
    }
    let mut b = vec![0u8; 2048];
    let n = data.len().min(1024);
    b[1024..1024 + n].copy_from_slice(&data[..n]);
    let _ = probe(&b);
});
