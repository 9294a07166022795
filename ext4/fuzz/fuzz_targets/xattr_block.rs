#![no_main]
//! An xattr block (header, entries, values) and ACL conversion.
use libfuzzer_sys::fuzz_target;
use vmsnapfs_ext4::xattr;

fuzz_target!(|data: &[u8]| {
    let _ = xattr::check_block_header(data);
    if let Ok(entries) = xattr::parse_entries(data.get(xattr::BLOCK_HEADER..).unwrap_or_default()) {
        for e in entries {
            let _ = e.full_name();
            if let Ok(v) = xattr::inline_value(data, &e) {
                let _ = xattr::acl_to_xattr(v);
            }
        }
    }
    let _ = xattr::acl_to_xattr(data);
});
