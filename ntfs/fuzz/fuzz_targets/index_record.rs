#![no_main]
//! An INDX block (fixups + node + entries), as file-name and as view index, and the
//! same bytes as an $INDEX_ROOT value.
use libfuzzer_sys::fuzz_target;
use vmsnapfs_ntfs::index_allocation::index_record;

fuzz_target!(|data: &[u8]| {
    let mut block = data.to_vec();
    block.resize(4096, 0);
    let vcn = u64::from_le_bytes(block[16..24].try_into().unwrap());
    let _ = index_record::parse(block.clone(), vcn, false);
    let _ = index_record::parse(block, vcn, true);
    let _ = vmsnapfs_ntfs::index_root::parse(data, false);
    if let Ok(entries) = vmsnapfs_ntfs::index_entry::parse_node(data, 0, false) {
        for e in entries {
            let _ = vmsnapfs_ntfs::file_name::parse(&e.key);
        }
    }
});
