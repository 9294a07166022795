//! NTFS names are arbitrary sequences of UTF-16 code units, not necessarily valid UTF-16.
//!
//! Reversible mapping to `String`: valid UTF-16 decodes normally; each unpaired surrogate
//! code unit `u` (0xD800..=0xDFFF) becomes the private-use character
//! `U+F0000 + (u - 0xD800)` (plane 15, U+F0000..=U+F07FF). [`to_utf16`] inverts this.
//! The mapping is ambiguous only for names that genuinely contain characters in
//! U+F0000..=U+F07FF, which no Windows tool produces in practice.

const ESCAPE_BASE: u32 = 0xF0000;

pub fn from_utf16(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied())
        .map(|r| match r {
            Ok(c) => c,
            Err(e) => {
                let u = e.unpaired_surrogate() as u32;
                char::from_u32(ESCAPE_BASE + (u - 0xD800)).unwrap_or('\u{FFFD}')
            }
        })
        .collect()
}

pub fn to_utf16(s: &str) -> Vec<u16> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        let v = c as u32;
        if (ESCAPE_BASE..ESCAPE_BASE + 0x800).contains(&v) {
            out.push((v - ESCAPE_BASE + 0xD800) as u16);
        } else {
            let mut b = [0u16; 2];
            out.extend_from_slice(c.encode_utf16(&mut b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_roundtrip() {
        let raw = [0x61, 0xD800, 0x62, 0xDC01, 0xD83D, 0xDE00];
        let s = from_utf16(&raw);
        assert_eq!(s.chars().count(), 5);
        assert_eq!(to_utf16(&s), raw);
        assert_eq!(from_utf16(&to_utf16("héllo")), "héllo");
    }
}
