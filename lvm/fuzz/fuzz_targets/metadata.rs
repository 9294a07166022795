#![no_main]
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::Arc;

// Metadata text: the parser, then a VG built from it (no devices: every PV missing).
fuzz_target!(|data: &[u8]| {
    let _ = vmsnapfs_lvm::metadata::parse(data);
    if let Ok(m) = vmsnapfs_lvm::VgMetadata::from_text("fuzz", 0, data) {
        if let Ok(vg) = vmsnapfs_lvm::VolumeGroup::from_metadata(Arc::new(m), &BTreeMap::new()) {
            for lv in &vg.lvs {
                let _ = vg.open(lv);
            }
        }
    }
});
