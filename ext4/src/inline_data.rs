//! Inline data (the inline_data feature): a small file's, directory's or symlink's
//! bytes live in i_block (60 bytes) and continue in the in-inode xattr `system.data`.
//! An inline directory begins with the parent's inode number (4 bytes), followed by
//! entries (without `.` and `..`) in the rest of i_block, then in `system.data`.

/// The file's inline bytes: i_block then the `system.data` value, cut to `size`.
pub fn assemble(i_block: &[u8; 60], system_data: Option<&[u8]>, size: u64) -> Vec<u8> {
    let mut v = i_block.to_vec();
    if let Some(d) = system_data {
        v.extend_from_slice(d);
    }
    v.truncate(size.min(v.len() as u64) as usize);
    v
}

/// The parent inode number of an inline directory.
pub fn dir_parent(i_block: &[u8; 60]) -> u32 {
    u32::from_le_bytes([i_block[0], i_block[1], i_block[2], i_block[3]])
}
