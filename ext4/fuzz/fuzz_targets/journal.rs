#![no_main]
//! A jbd2 log: the first 1 KiB is the journal superblock, the rest (in 1 KiB blocks)
//! the log, replayed in memory.
use libfuzzer_sys::fuzz_target;
use vmsnapfs_ext4::journal::{self, JournalSuperblock};

fuzz_target!(|data: &[u8]| {
    const BS: usize = 1024;
    let blocks: Vec<&[u8]> = data.chunks(BS).collect();
    let Some(first) = blocks.first() else { return };
    if let Ok(jsb) = JournalSuperblock::parse(first) {
        for b in &blocks {
            let _ = journal::parse_descriptor(b, &jsb);
            let _ = journal::parse_revoke(b, &jsb);
        }
        let _ = journal::replay(&jsb, |n| {
            let mut v = blocks.get(n as usize).map(|b| b.to_vec()).ok_or("past the log")?;
            v.resize(BS, 0);
            Ok(v)
        });
    }
});
