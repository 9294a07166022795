//! SEsparse: constant and volatile headers, typed GD/GT entries, through a descriptor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnapfs_vmdk::fuzzing::{
    decode_gte, gd_entry_table_index, open_and_read, SeSparseConstHeader, SeSparseVolatileHeader,
};

fuzz_target!(|data: &[u8]| {
    let mut f = 0xcafe_babe_u64.to_le_bytes().to_vec();
    f.extend_from_slice(data);
    if let Some(b) = f.get(..512) {
        let mut h = [0u8; 512];
        h.copy_from_slice(b);
        let _ = SeSparseConstHeader::parse(&h);
        let _ = SeSparseVolatileHeader::parse(&h);
    }
    for c in data.chunks_exact(8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        let v = u64::from_le_bytes(a);
        let _ = decode_gte(v);
        let _ = gd_entry_table_index(v);
    }
    let desc = b"CID=1\nparentCID=ffffffff\ncreateType=\"seSparse\"\nRW 8192 SESPARSE \"s-sesparse.vmdk\"\n";
    open_and_read(
        &[("s.vmdk", desc.to_vec()), ("s-sesparse.vmdk", f)],
        1 << 20,
    );
});
