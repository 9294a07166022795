//! The .vmx parser, disk listing and disk-name rewriting over arbitrary text; a rewritten
//! file must parse back to the names written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnapfs::vmx::Vmx;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let vmx = Vmx::parse(&text);
    let disks = vmx.disks();
    let renames: Vec<(String, String)> = disks
        .iter()
        .enumerate()
        .map(|(i, d)| (d.key.clone(), format!("disks/disk{i}.vmdk")))
        .collect();
    let again = Vmx::parse(&vmx.rewrite_disk_files(&renames));
    for (key, name) in &renames {
        let found = again.disks().into_iter().find(|d| &d.key == key);
        assert_eq!(found.map(|d| d.file_name).as_deref(), Some(name.as_str()));
    }
});
