#![no_main]
use libfuzzer_sys::fuzz_target;

// One label sector: the label header, then the PV header at its contents offset.
fuzz_target!(|data: &[u8]| {
    if let Ok(Some(l)) = vmsnapfs_lvm::label_header::parse("fuzz", 1, data) {
        let _ = vmsnapfs_lvm::pv_header::parse("fuzz", 512, data, l.contents_offset as usize);
    }
    let _ = vmsnapfs_lvm::pv_header::parse("fuzz", 512, data, 32);
});
