#![no_main]
use libfuzzer_sys::fuzz_target;
use vmsnapfs_ntfs::ea;

fuzz_target!(|data: &[u8]| {
    let _ = ea::parse_information(data);
    if let Ok(eas) = ea::parse(data) {
        let _ = ea::LxMetadata::from_eas(&eas);
    }
});
