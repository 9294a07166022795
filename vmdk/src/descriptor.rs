//! The text descriptor: a separate `.vmdk` file or a block embedded in a sparse extent.

/// How the disk may be accessed through an extent. Read-only views read every kind alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
    NoAccess,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtentType {
    Flat,
    Sparse,
    Zero,
    Vmfs,
    VmfsSparse,
    VmfsRdm,
    VmfsRaw,
    SeSparse,
    Other(String),
}

impl ExtentType {
    fn parse(s: &str) -> Self {
        match s.to_ascii_uppercase().as_str() {
            "FLAT" => ExtentType::Flat,
            "SPARSE" => ExtentType::Sparse,
            "ZERO" => ExtentType::Zero,
            "VMFS" => ExtentType::Vmfs,
            "VMFSSPARSE" => ExtentType::VmfsSparse,
            "VMFSRDM" | "VMFSRDMP" => ExtentType::VmfsRdm,
            "VMFSRAW" => ExtentType::VmfsRaw,
            "SESPARSE" => ExtentType::SeSparse,
            _ => ExtentType::Other(s.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentLine {
    pub access: Access,
    /// Size in 512-byte sectors.
    pub sectors: u64,
    pub kind: ExtentType,
    pub file: Option<String>,
    /// Start inside the file, in sectors (FLAT/VMFS only).
    pub offset: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    pub version: Option<u32>,
    pub cid: Option<u32>,
    pub parent_cid: Option<u32>,
    pub create_type: Option<String>,
    pub parent_file_name_hint: Option<String>,
    pub extents: Vec<ExtentLine>,
    /// Every other `key = value` line (DDB entries and unknown header keys), in file order.
    pub entries: Vec<(String, String)>,
}

/// A CID of all ones means "no parent".
pub const NO_PARENT_CID: u32 = 0xffff_ffff;

impl Descriptor {
    /// Parses descriptor text. Lines that are neither extents nor `key=value` are skipped, as
    /// VMware and qemu do; the caller decides whether what was found makes a disk.
    pub fn parse(text: &str) -> Result<Descriptor, String> {
        let mut d = Descriptor::default();
        // Embedded descriptors are padded with NULs up to their sector count.
        let text = text.split('\0').next().unwrap_or("");
        for (lineno, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let first = line.split_whitespace().next().unwrap_or("");
            let access = match first {
                "RW" => Some(Access::ReadWrite),
                "RDONLY" => Some(Access::ReadOnly),
                "NOACCESS" => Some(Access::NoAccess),
                _ => None,
            };
            if let Some(access) = access {
                if !line.contains('=') || line.contains('"') {
                    let e = parse_extent(access, line)
                        .map_err(|r| format!("line {}: {r}: {line}", lineno + 1))?;
                    d.extents.push(e);
                    continue;
                }
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            let value = unquote(value.trim());
            match key {
                "version" => d.version = value.parse().ok(),
                "CID" => d.cid = Some(parse_cid(value, lineno)?),
                "parentCID" => d.parent_cid = Some(parse_cid(value, lineno)?),
                "createType" => d.create_type = Some(value.to_string()),
                "parentFileNameHint" => d.parent_file_name_hint = Some(value.to_string()),
                _ => d.entries.push((key.to_string(), value.to_string())),
            }
        }
        Ok(d)
    }

    /// Whether this text looked like a descriptor at all.
    pub fn is_plausible(&self) -> bool {
        !self.extents.is_empty() || self.create_type.is_some()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The parent to follow, if this link has one.
    pub fn parent(&self) -> Option<&str> {
        let hint = self.parent_file_name_hint.as_deref()?.trim();
        if hint.is_empty() || self.parent_cid == Some(NO_PARENT_CID) {
            return None;
        }
        Some(hint)
    }
}

fn parse_cid(value: &str, lineno: usize) -> Result<u32, String> {
    u32::from_str_radix(value.trim(), 16)
        .map_err(|_| format!("line {}: CID {value:?} is not 8 hex digits", lineno + 1))
}

fn unquote(v: &str) -> &str {
    let v = v.strip_prefix('"').unwrap_or(v);
    v.strip_suffix('"').unwrap_or(v)
}

fn parse_extent(access: Access, line: &str) -> Result<ExtentLine, &'static str> {
    let rest = line
        .split_once(char::is_whitespace)
        .map(|x| x.1)
        .unwrap_or("")
        .trim_start();
    let (sectors, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let sectors: u64 = sectors
        .parse()
        .map_err(|_| "bad sector count in extent line")?;
    let rest = rest.trim_start();
    let (kind, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if kind.is_empty() {
        return Err("extent line has no type");
    }
    let kind = ExtentType::parse(kind);
    let rest = rest.trim();
    let (file, rest) = if let Some(q) = rest.strip_prefix('"') {
        // File names may contain spaces, so only a closing quote ends them.
        let end = q.find('"').ok_or("unterminated quote in extent line")?;
        (Some(q[..end].to_string()), q[end + 1..].trim())
    } else if rest.is_empty() {
        (None, "")
    } else {
        let (f, r) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        (Some(f.to_string()), r.trim())
    };
    let offset = if rest.is_empty() {
        0
    } else {
        let tok = rest.split_whitespace().next().unwrap_or("");
        tok.parse().map_err(|_| "bad offset in extent line")?
    };
    Ok(ExtentLine {
        access,
        sectors,
        kind,
        file,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_esxi_style() {
        let t = "# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\nCID=8f67ca74\r\nparentCID=0172e8a4\r\ncreateType=\"vmfsSparse\"\r\nparentFileNameHint=\"/vmfs/volumes/ds 1/vm/base.vmdk\"\r\n# Extent description\r\nRW 4096 VMFSSPARSE \"my disk-000001-delta.vmdk\"\r\nRDONLY 100 FLAT \"f.vmdk\" 7\r\nNOACCESS 8 ZERO\r\n\r\n#DDB\r\nddb.uuid = \"60 00\"\r\nddb.weird.key = \"x\"\r\n";
        let d = Descriptor::parse(t).unwrap();
        assert_eq!(d.cid, Some(0x8f67ca74));
        assert_eq!(d.parent_cid, Some(0x0172e8a4));
        assert_eq!(d.create_type.as_deref(), Some("vmfsSparse"));
        assert_eq!(d.parent(), Some("/vmfs/volumes/ds 1/vm/base.vmdk"));
        assert_eq!(d.extents.len(), 3);
        assert_eq!(
            d.extents[0].file.as_deref(),
            Some("my disk-000001-delta.vmdk")
        );
        assert_eq!(d.extents[0].kind, ExtentType::VmfsSparse);
        assert_eq!(d.extents[1].offset, 7);
        assert_eq!(d.extents[1].access, Access::ReadOnly);
        assert_eq!(d.extents[2].kind, ExtentType::Zero);
        assert_eq!(d.extents[2].file, None);
        assert_eq!(d.get("ddb.weird.key"), Some("x"));
    }

    #[test]
    fn no_parent_when_cid_all_ones() {
        let d = Descriptor::parse("CID=1\nparentCID=ffffffff\nparentFileNameHint=\"x\"\n").unwrap();
        assert_eq!(d.parent(), None);
    }

    #[test]
    fn rejects_bad_numbers() {
        assert!(Descriptor::parse("RW abc SPARSE \"x\"").is_err());
        assert!(Descriptor::parse("RW 1 FLAT \"x\" zz").is_err());
        assert!(Descriptor::parse("RW 1 FLAT \"x").is_err());
        assert!(Descriptor::parse("CID=xyz").is_err());
    }
}
