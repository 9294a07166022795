//! Bounds-checked little-endian field access: every on-disk offset goes through these so a
//! corrupt length can only produce `None`, never a panic.

pub(crate) fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

pub(crate) fn slice(b: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    b.get(off..off.checked_add(len)?)
}

/// UTF-16LE code units of `len` characters at `off`.
pub(crate) fn utf16_at(b: &[u8], off: usize, len: usize) -> Option<Vec<u16>> {
    let s = slice(b, off, len.checked_mul(2)?)?;
    Some(
        s.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect(),
    )
}

/// The 48-bit record number of a file reference (the top 16 bits are the sequence number).
pub(crate) fn ref_record(r: u64) -> u64 {
    r & 0x0000_FFFF_FFFF_FFFF
}
