//! Short (8.3) names are bytes in the OEM code page. We decode with code page 437, the
//! Linux vfat default, because nothing on the volume records which page was used.

const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐\
└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

pub(crate) fn decode_byte(b: u8) -> char {
    if b < 0x80 {
        char::from(b)
    } else {
        CP437_HIGH
            .chars()
            .nth(usize::from(b - 0x80))
            .unwrap_or('\u{fffd}')
    }
}

/// Unicode *simple* upper-casing (one char to one char), which is what Windows applies
/// to long names; full mappings such as ß → SS would make names collide that NTFS and
/// FAT keep apart.
pub(crate) fn simple_upper(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

pub(crate) fn fold_key(name: &str) -> String {
    name.chars().map(simple_upper).collect()
}

/// Names come from untrusted bytes: a '/' or NUL would break any path-based consumer.
pub(crate) fn sanitize(name: String) -> String {
    if name.contains(['/', '\0']) {
        name.replace(['/', '\0'], "\u{fffd}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_is_complete() {
        assert_eq!(super::CP437_HIGH.chars().count(), 128);
        assert_eq!(super::decode_byte(0x81), 'ü');
        assert_eq!(super::decode_byte(0xff), '\u{a0}');
    }
}
