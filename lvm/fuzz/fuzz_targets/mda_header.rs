#![no_main]
use libfuzzer_sys::fuzz_target;

// A metadata area at offset 0 of the input: its header, then the text its first
// raw_locn points at (the wrap-around and every bound).
fuzz_target!(|data: &[u8]| {
    let size = data.len() as u64;
    let h = vmsnapfs_lvm::mda_header::parse("fuzz", 0, size, data);
    if let Ok(h) = h {
        for r in &h.raw_locns {
            let _ = vmsnapfs_lvm::mda_header::read_text("fuzz", &data, &h, r);
        }
    }
});
