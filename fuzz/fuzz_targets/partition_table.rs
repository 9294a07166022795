//! MBR (with EBR chains) and GPT (primary and backup) over an arbitrary disk image. The
//! input is the start of the disk; its last 16 KiB also stand at the end of a 1 MiB
//! disk, so the backup GPT header and entry array are reachable from small inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnapfs::partition::read_table;

fuzz_target!(|data: &[u8]| {
    const DISK: usize = 1 << 20;
    const TAIL: usize = 16 << 10;
    let mut disk = vec![0u8; DISK];
    let head = data.len().min(DISK - TAIL);
    disk[..head].copy_from_slice(&data[..head]);
    let tail = &data[data.len().saturating_sub(TAIL)..];
    disk[DISK - tail.len()..].copy_from_slice(tail);
    if let Ok((_, parts)) = read_table(&disk) {
        for p in parts {
            assert!(p.start + p.size <= DISK as u64, "partition past the disk: {p:?}");
        }
    }
});
