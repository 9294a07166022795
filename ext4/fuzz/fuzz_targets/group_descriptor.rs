#![no_main]
//! Group descriptors, 32- and 64-byte.
use libfuzzer_sys::fuzz_target;
use vmsnapfs_ext4::group_descriptor::GroupDescriptor;

fuzz_target!(|data: &[u8]| {
    let _ = GroupDescriptor::parse(data, 32);
    let _ = GroupDescriptor::parse(data, 64);
});
