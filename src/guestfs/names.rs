//! Guest names POSIX cannot carry as they are: `/` (legal in NTFS's POSIX namespace) and
//! NUL become `%u002F`/`%u0000`; a literal `%` that starts text shaped like such an escape
//! is itself escaped (`%u0025`). The mapping is reversible and stable, and ordinary names
//! (including ones with a plain `%`) are untouched. Invalid UTF-16 is already mapped
//! reversibly by the NTFS reader.
//!
//! Linux names are bytes: a byte that is not part of valid UTF-8 becomes `%xHH`
//! (`from_bytes`/`to_bytes`), and a `%` shaped like either escape is escaped, so a
//! backup of our tree restores the guest's exact names.

use std::borrow::Cow;

pub fn escape(name: &str) -> Cow<'_, str> {
    if !name.contains(['/', '\0', '%']) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for (i, c) in name.char_indices() {
        match c {
            '/' => out.push_str("%u002F"),
            '\0' => out.push_str("%u0000"),
            '%' if escape_shaped(&name[i + 1..]) => out.push_str("%u0025"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

pub fn unescape(name: &str) -> Cow<'_, str> {
    if !name.contains("%u") {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos + 1..];
        let decoded = escape_shaped(tail)
            .then(|| u32::from_str_radix(&tail[1..5], 16).ok())
            .flatten()
            .and_then(char::from_u32)
            .filter(|c| matches!(c, '/' | '\0' | '%'));
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[5..];
            }
            None => {
                out.push('%');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn escape_shaped(rest: &str) -> bool {
    let b = rest.as_bytes();
    b.len() >= 5 && b[0] == b'u' && b[1..5].iter().all(u8::is_ascii_hexdigit)
}

/// A Linux file name (any bytes but `/` and NUL) as a valid UTF-8 name.
pub fn from_bytes(name: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(name) {
        if !s.contains(['/', '\0', '%']) {
            return Cow::Borrowed(s);
        }
    }
    let mut out = String::with_capacity(name.len() + 8);
    for chunk in name.utf8_chunks() {
        let text = chunk.valid();
        for (i, c) in text.char_indices() {
            match c {
                '/' => out.push_str("%u002F"),
                '\0' => out.push_str("%u0000"),
                // A `%` at a chunk's end may be followed by an escaped byte, which
                // reads like `%xHH` too: escape it as if it were shaped.
                '%' if escape_shaped(&text[i + 1..])
                    || byte_escape_shaped(&text[i + 1..])
                    || (i + 1 == text.len() && !chunk.invalid().is_empty()) =>
                {
                    out.push_str("%u0025")
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("%x{b:02X}"));
        }
    }
    Cow::Owned(out)
}

/// The bytes `from_bytes` made `name` from; None when `name` is not a form `from_bytes`
/// gives (each guest name has exactly one name in our tree).
pub fn to_bytes(name: &str) -> Option<Vec<u8>> {
    // Every escape starts with `%`, and `from_bytes` keeps such names as they are.
    if !name.contains(['/', '\0', '%']) {
        return Some(name.as_bytes().to_vec());
    }
    let mut out = Vec::with_capacity(name.len());
    let mut rest = name;
    while let Some(pos) = rest.find('%') {
        out.extend_from_slice(&rest.as_bytes()[..pos]);
        let tail = &rest[pos + 1..];
        if escape_shaped(tail) {
            let c = u32::from_str_radix(&tail[1..5], 16)
                .ok()
                .and_then(char::from_u32);
            if let Some(c @ ('/' | '\0' | '%')) = c {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                rest = &tail[5..];
                continue;
            }
        } else if byte_escape_shaped(tail) {
            if let Ok(b) = u8::from_str_radix(&tail[1..3], 16) {
                out.push(b);
                rest = &tail[3..];
                continue;
            }
        }
        out.push(b'%');
        rest = tail;
    }
    out.extend_from_slice(rest.as_bytes());
    (from_bytes(&out) == name).then_some(out)
}

fn byte_escape_shaped(rest: &str) -> bool {
    let b = rest.as_bytes();
    b.len() >= 3 && b[0] == b'x' && b[1..3].iter().all(u8::is_ascii_hexdigit)
}

/// Case folding for `-o case_insensitive`: simple Unicode lowercase, close to the NTFS
/// upcase table for the names people actually type.
pub fn fold(name: &str) -> String {
    name.chars().flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip_and_plain_names_are_untouched() {
        for name in [
            "100% done.txt",
            "a/b",
            "a%u002Fb",
            "x\0y",
            "%u",
            "%uZZZZ",
            "é/%u0025",
        ] {
            let e = escape(name);
            assert!(!e.contains('/') && !e.contains('\0'), "{e}");
            assert_eq!(unescape(&e), name);
        }
        assert_eq!(escape("100% done.txt"), "100% done.txt");
        assert_eq!(escape("a/b"), "a%u002Fb");
        assert_eq!(escape("a%u002Fb"), "a%u0025u002Fb");
    }

    #[test]
    fn byte_names_round_trip_and_have_one_form() {
        let names: [&[u8]; 10] = [
            b"plain.txt",
            b"100% done",
            b"caf\xc3\xa9",
            b"latin1-\xe9t\xe9",
            b"\xff\xfe",
            b"%xFF",
            b"%\xff",
            b"a%u002Fb",
            b"trail\xc3",
            b"%",
        ];
        for name in names {
            let s = from_bytes(name);
            assert!(!s.contains('/') && !s.contains('\0'), "{s}");
            assert_eq!(to_bytes(&s).as_deref(), Some(name), "{s}");
        }
        assert_eq!(from_bytes(b"latin1-\xe9t"), "latin1-%xE9t");
        assert_eq!(from_bytes(b"%xFF"), "%u0025xFF");
        assert_eq!(from_bytes(b"caf\xc3\xa9"), "café");
        // Other spellings of a name are not that name.
        assert_eq!(to_bytes("%xC3%xA9"), None);
        assert_eq!(to_bytes("%x41"), None);
        assert_eq!(to_bytes("%xff"), None);
        assert_eq!(to_bytes("50%"), Some(b"50%".to_vec()));
    }
}
