//! Descriptor text, separate or embedded: parse it, then open it as a disk whose extents
//! are small in-memory files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnapfs_vmdk::fuzzing::open_and_read;
use vmsnapfs_vmdk::Descriptor;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = Descriptor::parse(&text) {
        let _ = d.is_plausible();
        let _ = d.parent();
    }
    open_and_read(
        &[
            ("d.vmdk", data.to_vec()),
            ("f.vmdk", vec![0x5a; 8192]),
            (
                "p.vmdk",
                b"CID=1\ncreateType=\"monolithicFlat\"\nRW 16 FLAT \"f.vmdk\" 0\n".to_vec(),
            ),
        ],
        1 << 20,
    );
});
