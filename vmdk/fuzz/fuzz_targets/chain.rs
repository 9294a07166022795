//! Two-link chains: the input is split into a head and a parent file, exercising parent
//! resolution, CID checks and loop detection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnapfs_vmdk::fuzzing::open_and_read;

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |&b| b as usize * data.len() / 256);
    let (a, b) = data.split_at(cut.min(data.len()));
    open_and_read(&[("a.vmdk", a.to_vec()), ("b.vmdk", b.to_vec())], 1 << 20);
});
