//! The metadata text format (lib/format_text/import_vsn1.c reads it, LVM2's config
//! syntax): nested sections `name { ... }`, assignments `key = value` where a value is a
//! string `"..."` (backslash escapes the next character), an integer, a float, or a list
//! `[v, v, ...]` of those; `#` comments to end of line.
//!
//! [`parse`] builds a tree of [`Section`]s. Nesting is bounded ([`MAX_DEPTH`]), the
//! input is bounded by the caller ([`crate::mda_header::MAX_METADATA_TEXT`]), and every
//! node carries its line so errors about the volume group can say where.

/// Sections nest this deep at most (LVM2's own metadata nests four deep).
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub key: String,
    pub line: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Section {
    /// Empty for the top level.
    pub name: String,
    pub line: usize,
    pub values: Vec<Assignment>,
    pub sections: Vec<Section>,
}

impl Section {
    /// The first assignment to `key`.
    pub fn get(&self, key: &str) -> Option<&Assignment> {
        self.values.iter().find(|a| a.key == key)
    }
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.get(key).map(|a| &a.value)
    }
    pub fn int(&self, key: &str) -> Option<i64> {
        self.value(key).and_then(Value::as_int)
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.value(key).and_then(Value::as_str)
    }
    pub fn list(&self, key: &str) -> Option<&[Value]> {
        self.value(key).and_then(Value::as_list)
    }
    /// The first subsection called `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
    /// Whether the list `key` (a `status` or `flags`) holds the string `word`.
    pub fn has_flag(&self, key: &str, word: &str) -> bool {
        self.list(key)
            .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(word)))
    }
}

/// Where and why the text does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub msg: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Eq,
    Open,
    Close,
    LBracket,
    RBracket,
    Comma,
    End,
}

struct Lexer<'a> {
    b: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            line: self.line,
            msg: msg.into(),
        })
    }

    fn next(&mut self) -> Result<Tok, SyntaxError> {
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return Ok(Tok::End);
            };
            match c {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' | 0x0b | 0x0c => self.pos += 1,
                b'#' => {
                    while self.b.get(self.pos).is_some_and(|&c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
        let c = self.b[self.pos];
        self.pos += 1;
        Ok(match c {
            b'=' => Tok::Eq,
            b'{' => Tok::Open,
            b'}' => Tok::Close,
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b',' => Tok::Comma,
            b'"' => {
                let mut s = Vec::new();
                loop {
                    let Some(&c) = self.b.get(self.pos) else {
                        return self.err("unterminated string");
                    };
                    self.pos += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            let Some(&e) = self.b.get(self.pos) else {
                                return self.err("unterminated string");
                            };
                            self.pos += 1;
                            if e == b'\n' {
                                self.line += 1;
                            }
                            s.push(e);
                        }
                        b'\n' => {
                            self.line += 1;
                            s.push(c);
                        }
                        _ => s.push(c),
                    }
                }
                Tok::Str(String::from_utf8_lossy(&s).into_owned())
            }
            _ => {
                let start = self.pos - 1;
                while self
                    .b
                    .get(self.pos)
                    .is_some_and(|&c| !c.is_ascii_whitespace() && !b"#={}[],\"".contains(&c))
                {
                    self.pos += 1;
                }
                Tok::Word(String::from_utf8_lossy(&self.b[start..self.pos]).into_owned())
            }
        })
    }
}

fn scalar(word: &str) -> Option<Value> {
    if let Ok(i) = word.parse::<i64>() {
        return Some(Value::Int(i));
    }
    let numeric = word
        .bytes()
        .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
        && word.bytes().any(|c| c.is_ascii_digit());
    if numeric {
        return word.parse::<f64>().ok().map(Value::Float);
    }
    None
}

struct Parser<'a> {
    lex: Lexer<'a>,
    peeked: Option<Tok>,
}

impl Parser<'_> {
    fn next(&mut self) -> Result<Tok, SyntaxError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex.next(),
        }
    }

    fn value(&mut self, in_list: bool) -> Result<Value, SyntaxError> {
        match self.next()? {
            Tok::Str(s) => Ok(Value::Str(s)),
            Tok::Word(w) => match scalar(&w) {
                Some(v) => Ok(v),
                None => self.lex.err(format!("expected a value, found {w:?}")),
            },
            Tok::LBracket if !in_list => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        Tok::RBracket => return Ok(Value::List(items)),
                        t => {
                            self.peeked = Some(t);
                            items.push(self.value(true)?);
                        }
                    }
                    match self.next()? {
                        Tok::Comma => {}
                        Tok::RBracket => return Ok(Value::List(items)),
                        t => {
                            return self
                                .lex
                                .err(format!("expected , or ] in a list, found {t:?}"))
                        }
                    }
                }
            }
            Tok::LBracket => self.lex.err("lists do not nest"),
            t => self.lex.err(format!("expected a value, found {t:?}")),
        }
    }

    /// The items of a section up to its `}` (or the end of the text at the top level).
    fn body(&mut self, sect: &mut Section, depth: usize) -> Result<(), SyntaxError> {
        loop {
            let t = self.next()?;
            let name = match t {
                Tok::End if depth == 0 => return Ok(()),
                Tok::End => return self.lex.err(format!("section {:?} not closed", sect.name)),
                Tok::Close if depth > 0 => return Ok(()),
                Tok::Word(w) => w,
                t => return self.lex.err(format!("expected a name, found {t:?}")),
            };
            let line = self.lex.line;
            match self.next()? {
                Tok::Eq => {
                    let value = self.value(false)?;
                    sect.values.push(Assignment {
                        key: name,
                        line,
                        value,
                    });
                }
                Tok::Open => {
                    if depth + 1 > MAX_DEPTH {
                        return self
                            .lex
                            .err(format!("sections nest deeper than {MAX_DEPTH}"));
                    }
                    let mut sub = Section {
                        name,
                        line,
                        ..Section::default()
                    };
                    self.body(&mut sub, depth + 1)?;
                    sect.sections.push(sub);
                }
                t => {
                    return self
                        .lex
                        .err(format!("expected = or {{ after {name:?}, found {t:?}"))
                }
            }
        }
    }
}

/// The tree of `text` (a NUL ends it); the top level is a section with an empty name.
pub fn parse(text: &[u8]) -> Result<Section, SyntaxError> {
    let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
    let mut p = Parser {
        lex: Lexer {
            b: &text[..end],
            pos: 0,
            line: 1,
        },
        peeked: None,
    };
    let mut root = Section {
        line: 1,
        ..Section::default()
    };
    p.body(&mut root, 0)?;
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"vg0 {
id = "w4hvS6-k6xj"
seqno = 5
status = ["RESIZEABLE", "READ", "WRITE"]
flags = []
# a comment
physical_volumes {
pv0 {
pe_start = 2048	# trailing comment
}
}
}
contents = "Text Format Volume Group"
description = "with \"quotes\" and \\ backslash"
ratio = -1.5
"#;

    #[test]
    fn parses_lvm2_text() {
        let root = parse(TEXT.as_bytes()).unwrap();
        let vg = root.section("vg0").unwrap();
        assert_eq!(vg.str("id"), Some("w4hvS6-k6xj"));
        assert_eq!(vg.int("seqno"), Some(5));
        assert!(vg.has_flag("status", "READ"));
        assert_eq!(vg.list("flags"), Some(&[][..]));
        let pv = vg
            .section("physical_volumes")
            .unwrap()
            .section("pv0")
            .unwrap();
        assert_eq!(pv.int("pe_start"), Some(2048));
        assert_eq!(pv.line, 8);
        assert_eq!(
            root.str("description"),
            Some(r#"with "quotes" and \ backslash"#)
        );
        assert_eq!(root.value("ratio"), Some(&Value::Float(-1.5)));
        let l = parse(b"a = [\"x\", 1,\n\"y\", 2]").unwrap();
        assert_eq!(l.list("a").unwrap().len(), 4);
    }

    #[test]
    fn damage_is_a_syntax_error_with_its_line() {
        for (bad, line) in [
            ("vg {\nseqno = 1\n", 3),
            ("vg {\nid = \"open\n}", 3),
            ("vg {\n}\n}", 3),
            ("a = [1, [2]]", 1),
            ("a = ", 1),
            ("a = b", 1),
            ("a b", 1),
            ("= 1", 1),
            ("a = [1 2]", 1),
        ] {
            let e = parse(bad.as_bytes()).unwrap_err();
            assert_eq!(e.line, line, "{bad:?}: {e:?}");
        }
        let deep = "a {".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).unwrap_err().msg.contains("nest"));
        let ok = "a {".repeat(MAX_DEPTH) + &"}".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        // A NUL ends the text; what follows is the ring buffer's old contents.
        assert!(parse(b"a = 1\0garbage {").is_ok());
    }
}
