//! Guest names POSIX cannot carry as they are: `/` (legal in NTFS's POSIX namespace) and
//! NUL become `%u002F`/`%u0000`; a literal `%` that starts text shaped like such an escape
//! is itself escaped (`%u0025`). The mapping is reversible and stable, and ordinary names
//! (including ones with a plain `%`) are untouched. Invalid UTF-16 is already mapped
//! reversibly by the NTFS reader.

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
}
