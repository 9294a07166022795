#![no_main]
//! One inode (xfs_dinode core v1/v2/v3 and both forks); the first byte picks v4/v5 and
//! the inode size.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let size = 256usize << (sel & 3);
    let mut b = rest.to_vec();
    b.resize(size, 0);
    let v5 = sel & 4 != 0;
    if let Ok(d) = vmsnapfs_xfs::dinode::parse(&b, v5) {
        let _ = vmsnapfs_xfs::bmbt::parse_records(&d.data_fork, 0, (d.nextents as usize).min(1 << 16));
        let _ = vmsnapfs_xfs::bmbt::parse_root(&d.data_fork);
        let _ = vmsnapfs_xfs::dir2_sf::parse(&d.data_fork, d.size, sel & 8 != 0);
        let _ = vmsnapfs_xfs::attr_sf::parse(&d.attr_fork);
    }
});
