//! A physical volume found on a device: label, PV header, and the newest metadata among
//! its metadata areas.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::label_header::{self, LABEL_SCAN_SECTORS, SECTOR_SIZE};
use crate::mda_header::{self, MDA_HEADER_SIZE};
use crate::metadata::{self, Section};
use crate::pv_header::{self, DiskLocn};
use vmsnapfs_io::ReadAt;

/// The metadata text of one volume group as one metadata area held it.
#[derive(Debug, Clone, PartialEq)]
pub struct VgMetadata {
    pub vg_name: String,
    /// As the text spells it (with dashes).
    pub vg_uuid: String,
    pub seqno: u64,
    /// Where on the device the text starts (for error messages).
    pub text_offset: u64,
    /// The whole parsed text: the top level holds the VG section and
    /// `contents`/`version`/`description`/`creation_*`.
    pub root: Section,
}

impl VgMetadata {
    /// The section named after the VG.
    pub fn vg_section(&self) -> Option<&Section> {
        self.root.section(&self.vg_name)
    }

    /// Parses `text` (read at `text_offset` of `device`).
    pub fn from_text(device: &str, text_offset: u64, text: &[u8]) -> Result<Self> {
        let root = metadata::parse(text).map_err(|e| Error::Syntax {
            device: device.to_string(),
            offset: text_offset,
            line: e.line,
            msg: e.msg,
        })?;
        let bad = |line: usize, msg: String| Error::Syntax {
            device: device.to_string(),
            offset: text_offset,
            line,
            msg,
        };
        let vg = match root.sections.as_slice() {
            [vg] => vg,
            [] => return Err(bad(1, "no volume group section".into())),
            [_, second, ..] => {
                return Err(bad(second.line, "more than one top-level section".into()))
            }
        };
        let vg_uuid = vg
            .str("id")
            .ok_or_else(|| bad(vg.line, format!("volume group {:?} has no id", vg.name)))?
            .to_string();
        let seqno = vg
            .int("seqno")
            .and_then(|s| u64::try_from(s).ok())
            .ok_or_else(|| bad(vg.line, format!("volume group {:?} has no seqno", vg.name)))?;
        Ok(Self {
            vg_name: vg.name.clone(),
            vg_uuid,
            seqno,
            text_offset,
            root,
        })
    }
}

/// What [`probe`] found on a device.
#[derive(Debug, Clone, PartialEq)]
pub struct PhysicalVolume {
    /// The PV uuid in LVM2's display form (`xxxxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxxxx`).
    pub uuid: String,
    /// The device size the PV header records, in bytes.
    pub device_size: u64,
    /// Where physical extent 0 starts (the first data area), in bytes.
    pub pe_start: u64,
    pub label_sector: u64,
    pub data_areas: Vec<DiskLocn>,
    pub metadata_areas: Vec<DiskLocn>,
    /// The newest (highest seqno) metadata among this PV's metadata areas; `None` for an
    /// orphan PV or one without metadata areas (`--metadatacopies 0`).
    pub metadata: Option<Arc<VgMetadata>>,
    /// Metadata areas that could not be read while another one could.
    pub metadata_errors: Vec<String>,
}

/// `pv_uuid` as stored (32 characters) in display form: groups of 6-4-4-4-4-4-6.
pub fn format_uuid(raw: &str) -> String {
    let mut out = String::with_capacity(38);
    let mut pos = 0;
    for (i, n) in [6, 4, 4, 4, 4, 4, 6].into_iter().enumerate() {
        let Some(part) = raw.get(pos..pos + n) else {
            return raw.to_string();
        };
        if i > 0 {
            out.push('-');
        }
        out.push_str(part);
        pos += n;
    }
    if pos != raw.len() {
        return raw.to_string();
    }
    out
}

/// A uuid without its dashes, for comparing.
pub(crate) fn uuid_key(u: &str) -> String {
    u.chars().filter(|&c| c != '-').collect()
}

/// [`probe_named`] with the device called "device" in errors.
pub fn probe(dev: &dyn ReadAt) -> Result<Option<PhysicalVolume>> {
    probe_named(dev, "device")
}

/// The LVM2 physical volume on `dev`, `None` when none of its first four sectors holds a
/// label. `name` is how errors refer to the device.
pub fn probe_named(dev: &dyn ReadAt, name: &str) -> Result<Option<PhysicalVolume>> {
    let scan = (LABEL_SCAN_SECTORS * SECTOR_SIZE as u64).min(dev.size()) as usize;
    let mut head = vec![0u8; scan];
    dev.read_at(0, &mut head).map_err(|source| Error::Io {
        device: name.to_string(),
        offset: 0,
        len: scan,
        source,
    })?;
    let mut found = None;
    for s in 0..LABEL_SCAN_SECTORS {
        let from = s as usize * SECTOR_SIZE;
        let Some(sector) = head.get(from..) else {
            break;
        };
        let sector = &sector[..sector.len().min(SECTOR_SIZE)];
        if let Some(l) = label_header::parse(name, s, sector)? {
            found = Some((l, sector));
            break;
        }
    }
    let Some((label, sector)) = found else {
        return Ok(None);
    };
    let sector_at = label.sector * SECTOR_SIZE as u64;
    let h = pv_header::parse(name, sector_at, sector, label.contents_offset as usize)?;
    let pe_start = h.data_areas.first().map_or(0, |d| d.offset);

    let mut best: Option<VgMetadata> = None;
    let mut errors: Vec<Error> = Vec::new();
    for area in &h.metadata_areas {
        match read_area(dev, name, area) {
            Ok(Some(m)) => {
                if best.as_ref().is_none_or(|b| m.seqno > b.seqno) {
                    best = Some(m);
                }
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    if best.is_none() && !errors.is_empty() {
        return Err(errors.remove(0));
    }
    Ok(Some(PhysicalVolume {
        uuid: format_uuid(&h.uuid),
        device_size: h.device_size,
        pe_start,
        label_sector: label.sector,
        data_areas: h.data_areas,
        metadata_areas: h.metadata_areas,
        metadata: best.map(Arc::new),
        metadata_errors: errors.iter().map(|e| e.to_string()).collect(),
    }))
}

/// The committed metadata of one metadata area, `None` when it holds none.
fn read_area(dev: &dyn ReadAt, name: &str, area: &DiskLocn) -> Result<Option<VgMetadata>> {
    let mut hb = vec![0u8; MDA_HEADER_SIZE];
    dev.read_at(area.offset, &mut hb)
        .map_err(|source| Error::Io {
            device: name.to_string(),
            offset: area.offset,
            len: MDA_HEADER_SIZE,
            source,
        })?;
    let h = mda_header::parse(name, area.offset, area.size, &hb)?;
    let Some(r) = h.committed() else {
        return Ok(None);
    };
    let (text, at) = mda_header::read_text(name, dev, &h, r)?;
    VgMetadata::from_text(name, at, &text).map(Some)
}
