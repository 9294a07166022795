#![no_main]
//! A FILE record: update-sequence fixups, header, and every attribute header and
//! runlist in it.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Records are 1 KiB or 4 KiB on real volumes; pad or cut the input to one of them.
    let size = if data.first().is_some_and(|b| b & 1 == 1) { 4096 } else { 1024 };
    let mut rec = data.get(1..).unwrap_or_default().to_vec();
    rec.resize(size, 0);
    let _ = vmsnapfs_ntfs::file_record::parse(rec);
});
