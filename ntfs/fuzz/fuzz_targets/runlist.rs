#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(runs) = vmsnapfs_ntfs::runlist::decode(data, 0) {
        for r in &runs {
            let _ = vmsnapfs_ntfs::runlist::find(&runs, r.vcn);
        }
    }
});
