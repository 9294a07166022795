//! What NTFS adds to the shared little-endian readers of `vmsnapfs_io::le`: file
//! references, and how a field that does not fit becomes a parser's message.

use vmsnapfs_io::ShortBuffer;

/// Turns a short field into the parser's message: `what` says which structure, the
/// buffer error says where in it. Callers add the MFT record the structure came from.
pub(crate) fn short(what: &'static str) -> impl Fn(ShortBuffer) -> String {
    move |e| format!("{what}: {e}")
}

/// The 48-bit record number of a file reference (the top 16 bits are the sequence number).
pub(crate) fn ref_record(r: u64) -> u64 {
    r & 0x0000_FFFF_FFFF_FFFF
}
