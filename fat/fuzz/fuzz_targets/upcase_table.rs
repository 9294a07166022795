#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vmsnapfs_fat::fuzzing::upcase_table(data);
});
