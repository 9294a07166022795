#![no_main]
//! An extent tree node: as the 60-byte root in i_block and as a whole block.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vmsnapfs_ext4::extent_tree::parse_node(&data[..data.len().min(60)]);
    let _ = vmsnapfs_ext4::extent_tree::parse_node(data);
    let _ = vmsnapfs_ext4::block_map::parse_indirect(data);
    let _ = vmsnapfs_ext4::inode::Inode::parse(data).map(|i| (i.rdev(), i.ibody_xattr_range()));
});
