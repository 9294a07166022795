//! $UpCase: the volume's own case-folding table, which defines NTFS name collation.

use std::cmp::Ordering;

pub struct UpCase {
    table: Vec<u16>,
}

impl UpCase {
    /// From the 128 KiB $UpCase data; `None` when it has the wrong size.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != 131072 {
            return None;
        }
        let table = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Some(UpCase { table })
    }

    /// No case folding at all; a placeholder until $UpCase is read.
    pub fn identity() -> Self {
        UpCase { table: Vec::new() }
    }

    /// Used only when $UpCase itself is unreadable: Unicode simple upper-casing of the BMP
    /// is what Windows' table was generated from, so lookups still work for common names.
    pub fn fallback() -> Self {
        let table = (0..=0xFFFFu32)
            .map(|c| match char::from_u32(c) {
                Some(ch) => {
                    let mut up = ch.to_uppercase();
                    match (up.next(), up.next()) {
                        (Some(u), None) if (u as u32) <= 0xFFFF => u as u32 as u16,
                        _ => c as u16,
                    }
                }
                None => c as u16,
            })
            .collect();
        UpCase { table }
    }

    pub fn up(&self, c: u16) -> u16 {
        self.table.get(c as usize).copied().unwrap_or(c)
    }

    /// COLLATION_FILE_NAME: case-insensitive order, ties broken case-sensitively (which is
    /// how POSIX-namespace names differing only in case are ordered).
    pub fn collate(&self, a: &[u16], b: &[u16]) -> Ordering {
        self.cmp_ignore_case(a, b).then_with(|| a.cmp(b))
    }

    pub fn cmp_ignore_case(&self, a: &[u16], b: &[u16]) -> Ordering {
        a.iter()
            .map(|&c| self.up(c))
            .cmp(b.iter().map(|&c| self.up(c)))
    }

    pub fn eq_ignore_case(&self, a: &[u16], b: &[u16]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| self.up(x) == self.up(y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn collation_is_case_insensitive_first() {
        let up = UpCase::fallback();
        assert_eq!(up.collate(&u("abc"), &u("ABD")), Ordering::Less);
        assert_eq!(up.collate(&u("B"), &u("a")), Ordering::Greater);
        assert_eq!(
            up.cmp_ignore_case(&u("straße"), &u("STRAßE")),
            Ordering::Equal
        );
        assert_ne!(up.collate(&u("a"), &u("A")), Ordering::Equal);
        assert!(up.eq_ignore_case(&u("ΩΜΈΓΑ"), &u("ωμέγα")));
        assert_eq!(up.collate(&u("ab"), &u("abc")), Ordering::Less);
    }
}
