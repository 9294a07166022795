//! The VMware `.vmx` configuration file: `key = "value"` lines.
//!
//! Only what a backup needs is interpreted (which disks are attached, in which order);
//! every other line is kept verbatim so the frozen copy we present is the VM's own file
//! with nothing but disk paths changed.

/// Bus types in the order their disks are numbered: the order VMware's own UI lists them.
const BUSES: [&str; 4] = ["scsi", "sata", "ide", "nvme"];

#[derive(Debug, Clone)]
pub struct Vmx {
    lines: Vec<Line>,
}

#[derive(Debug, Clone)]
enum Line {
    Entry {
        key: String,
        value: String,
        raw: String,
    },
    Other(String),
}

/// A disk attached to the VM: `key` is the device (`scsi0:1`), `file_name` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmxDisk {
    pub key: String,
    pub file_name: String,
    /// What is odd about its lines though the disk is attached (for status.json).
    pub note: Option<String>,
}

/// Built into the virtual chipset: VMware writes no `ide0.present` for them.
const BUILT_IN: [&str; 1] = ["ide"];

impl Vmx {
    pub fn parse(text: &str) -> Vmx {
        let lines = text
            .lines()
            .map(|raw| {
                let raw = raw.trim_end_matches('\r');
                match parse_entry(raw) {
                    Some((key, value)) => Line::Entry {
                        key,
                        value,
                        raw: raw.to_string(),
                    },
                    None => Line::Other(raw.to_string()),
                }
            })
            .collect();
        Vmx { lines }
    }

    /// Keys are case-insensitive in VMware's parser; the last occurrence wins, as there.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines.iter().rev().find_map(|l| match l {
            Line::Entry { key: k, value, .. } if k.eq_ignore_ascii_case(key) => {
                Some(value.as_str())
            }
            _ => None,
        })
    }

    fn is_true(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// The VM's virtual disks, in controller order (bus type, controller, unit).
    /// CD-ROMs, floppies and devices marked not present are left out, and so are disks on
    /// a controller marked not present (VMware does not attach them). A disk on a
    /// controller with no `.present` line at all is kept, with a note: a hand-edited or
    /// copied .vmx loses such lines, and a backup must not lose the disk with them.
    pub fn disks(&self) -> Vec<VmxDisk> {
        let mut found: Vec<((usize, u32, u32), VmxDisk)> = Vec::new();
        for line in &self.lines {
            let Line::Entry { key, value, .. } = line else {
                continue;
            };
            let lower = key.to_ascii_lowercase();
            let Some(device) = lower.strip_suffix(".filename") else {
                continue;
            };
            let Some((rank, controller, unit)) = parse_device(device) else {
                continue;
            };
            let bus = BUSES[rank];
            let controller_key = format!("{bus}{controller}.present");
            let note = match self.get(&controller_key) {
                Some(_) if !self.is_true(&controller_key) => continue,
                Some(_) => None,
                None if BUILT_IN.contains(&bus) => None,
                None => Some(format!(
                    "{device}: controller {bus}{controller} is not declared (no \
                     {controller_key} line); served in its place in controller order"
                )),
            };
            if !self.is_true(&format!("{device}.present")) {
                continue;
            }
            let device_type = self
                .get(&format!("{device}.deviceType"))
                .unwrap_or("")
                .to_ascii_lowercase();
            if device_type.contains("cdrom") || device_type.contains("atapi") {
                continue;
            }
            if !value.to_ascii_lowercase().ends_with(".vmdk") {
                continue;
            }
            let disk = VmxDisk {
                key: device.to_string(),
                file_name: value.clone(),
                note,
            };
            // A key repeated later overrides the earlier one.
            found.retain(|(_, d)| d.key != disk.key);
            found.push(((rank, controller, unit), disk));
        }
        found.sort_by_key(|(order, _)| *order);
        found.into_iter().map(|(_, d)| d).collect()
    }

    /// The file's text with the given devices' `fileName` values replaced; everything else
    /// is left byte for byte as it was.
    pub fn rewrite_disk_files(&self, new_names: &[(String, String)]) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Entry { key, raw, .. } => {
                    let lower = key.to_ascii_lowercase();
                    let replacement = lower.strip_suffix(".filename").and_then(|device| {
                        new_names
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(device))
                            .map(|(_, name)| name)
                    });
                    match replacement {
                        Some(name) => {
                            out.push_str(&format!("{key} = \"{}\"", escape(name)));
                        }
                        None => out.push_str(raw),
                    }
                }
                Line::Other(raw) => out.push_str(raw),
            }
            out.push('\n');
        }
        out
    }
}

fn parse_entry(raw: &str) -> Option<(String, String)> {
    let trimmed = raw.trim_start();
    if trimmed.starts_with('#') || trimmed.starts_with(".encoding") && !trimmed.contains('=') {
        return None;
    }
    let (key, value) = trimmed.split_once('=')?;
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    let value = value.trim();
    let value = match value.strip_prefix('"') {
        Some(rest) => unescape(rest.strip_suffix('"').unwrap_or(rest)),
        None => value.to_string(),
    };
    Some((key.to_string(), value))
}

/// VMware escapes special characters in values as `|XX` (hex), e.g. `|22` for a quote.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'|' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '|' | '#' => out.push_str(&format!("|{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `scsi0:1` → (bus rank, controller 0, unit 1).
fn parse_device(device: &str) -> Option<(usize, u32, u32)> {
    let rank = BUSES.iter().position(|b| device.starts_with(b))?;
    let rest = &device[BUSES[rank].len()..];
    let (controller, unit) = rest.split_once(':')?;
    Some((rank, controller.parse().ok()?, unit.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
.encoding = \"UTF-8\"\r
config.version = \"8\"\r
displayName = \"Web |22prod|22\"\r
# a comment\r
scsi0.present = \"TRUE\"\r
scsi0:1.present = \"TRUE\"\r
scsi0:1.fileName = \"data.vmdk\"\r
scsi0:0.present = \"TRUE\"\r
scsi0:0.fileName = \"web-000002.vmdk\"\r
sata0.present = \"TRUE\"\r
sata0:0.present = \"TRUE\"\r
sata0:0.deviceType = \"cdrom-image\"\r
sata0:0.fileName = \"/iso/debian.iso\"\r
ide0:0.present = \"TRUE\"\r
ide0:0.fileName = \"legacy.vmdk\"\r
scsi1:0.present = \"TRUE\"\r
scsi1:0.fileName = \"orphan.vmdk\"\r
nvme0.present = \"TRUE\"\r
nvme0:10.present = \"TRUE\"\r
nvme0:10.fileName = \"ten.vmdk\"\r
nvme0:2.present = \"TRUE\"\r
nvme0:2.fileName = \"two.vmdk\"\r
nvme0:3.present = \"FALSE\"\r
nvme0:3.fileName = \"gone.vmdk\"\r
";

    #[test]
    fn disks_in_controller_order_without_cdroms_or_absent_devices() {
        let vmx = Vmx::parse(SAMPLE);
        let names: Vec<_> = vmx.disks().into_iter().map(|d| d.file_name).collect();
        // scsi1 has no `scsi1.present`: still attached, after scsi0, with a note; ide0
        // is built in and needs no line.
        assert_eq!(
            names,
            [
                "web-000002.vmdk",
                "data.vmdk",
                "orphan.vmdk",
                "legacy.vmdk",
                "two.vmdk",
                "ten.vmdk"
            ]
        );
        let notes: Vec<_> = vmx.disks().into_iter().map(|d| d.note.is_some()).collect();
        assert_eq!(notes, [false, false, true, false, false, false]);
        assert_eq!(vmx.get("DISPLAYNAME"), Some("Web \"prod\""));
    }

    #[test]
    fn controller_marked_absent_detaches_its_disks() {
        let one = "ide0:0.present = \"TRUE\"\nide0:0.fileName = \"a.vmdk\"\n";
        assert_eq!(Vmx::parse(one).disks().len(), 1);
        let off = format!("ide0.present = \"FALSE\"\n{one}");
        assert!(Vmx::parse(&off).disks().is_empty());
        let sata = "sata0:0.present = \"TRUE\"\nsata0:0.fileName = \"b.vmdk\"\n";
        let d = &Vmx::parse(sata).disks()[0];
        assert!(
            d.note.as_deref().unwrap().contains("sata0.present"),
            "{d:?}"
        );
    }

    #[test]
    fn rewrite_changes_only_disk_names() {
        let vmx = Vmx::parse(SAMPLE);
        let text = vmx.rewrite_disk_files(&[
            ("scsi0:0".into(), "disks/disk0.vmdk".into()),
            ("scsi0:1".into(), "disks/disk1.vmdk".into()),
        ]);
        assert!(text.contains("scsi0:0.fileName = \"disks/disk0.vmdk\"\n"));
        assert!(text.contains("scsi0:1.fileName = \"disks/disk1.vmdk\"\n"));
        assert!(text.contains("displayName = \"Web |22prod|22\"\n"));
        assert!(text.contains("ide0:0.fileName = \"legacy.vmdk\"\n"));
        let again = Vmx::parse(&text);
        assert_eq!(again.disks()[0].file_name, "disks/disk0.vmdk");
    }

    #[test]
    fn garbage_lines_are_kept_not_fatal() {
        let vmx = Vmx::parse("=\n\u{0}\u{1}\nnot a line\nx = \"unterminated\n|\n");
        assert!(vmx.disks().is_empty());
        assert_eq!(vmx.get("x"), Some("unterminated"));
    }
}
