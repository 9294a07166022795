#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use vmsnapfs_io::ReadAt;

// A whole device: probe, assemble, open and read every LV.
fuzz_target!(|data: &[u8]| {
    let dev: Arc<dyn ReadAt> = Arc::new(data.to_vec());
    if let Ok(Some(pv)) = vmsnapfs_lvm::probe(&*dev) {
        if let Ok(vgs) = vmsnapfs_lvm::VolumeGroup::assemble(vec![(pv, dev)]) {
            for vg in &vgs {
                for lv in &vg.lvs {
                    if let Ok(r) = vg.open(lv) {
                        let mut buf = vec![0u8; 4096.min(r.size() as usize)];
                        let _ = r.read_at(0, &mut buf);
                        let _ = r.place(0, r.size(), &mut vmsnapfs_io::Places::new());
                    }
                }
            }
        }
    }
});
