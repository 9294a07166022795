//! FILE records: the MFT entry header and the walk over its attribute records.

use crate::attribute_header::{self, Attribute, END};
use crate::fields::{ref_record, short};
use crate::fixup::apply_fixups;
use vmsnapfs_io::le::{u16_at, u32_at, u64_at};

pub const FLAG_IN_USE: u16 = 0x0001;
pub const FLAG_DIRECTORY: u16 = 0x0002;

#[derive(Debug, Clone)]
pub struct FileRecord {
    pub sequence: u16,
    pub link_count: u16,
    pub flags: u16,
    pub base_record: u64,
    pub attributes: Vec<Attribute>,
}

/// Parses a raw record (fixups not yet applied). Errors are strings; the caller adds the
/// record number.
pub fn parse(mut buf: Vec<u8>) -> Result<FileRecord, String> {
    match buf.get(0..4) {
        Some(b"FILE") => {}
        Some(b"BAAD") => return Err("record marked BAAD by chkdsk".into()),
        Some([0, 0, 0, 0]) => return Err("record is empty (never used)".into()),
        _ => return Err("no FILE signature".into()),
    }
    apply_fixups(&mut buf)?;
    let sequence = u16_at(&buf, 16).map_err(short("truncated"))?;
    let link_count = u16_at(&buf, 18).map_err(short("truncated"))?;
    let attrs_off = u16_at(&buf, 20).map_err(short("truncated"))? as usize;
    let flags = u16_at(&buf, 22).map_err(short("truncated"))?;
    let used = u32_at(&buf, 24).map_err(short("truncated"))? as usize;
    let base_record = ref_record(u64_at(&buf, 32).map_err(short("truncated"))?);
    if used > buf.len() || attrs_off >= used || attrs_off < 42 {
        return Err(format!(
            "bytes in use {used} / attribute offset {attrs_off} out of bounds"
        ));
    }
    let mut attributes = Vec::new();
    let mut pos = attrs_off;
    loop {
        let type_code = u32_at(&buf, pos).map_err(short("attribute list runs off the record"))?;
        if type_code == END {
            break;
        }
        let len = u32_at(&buf, pos + 4).map_err(short("attribute header truncated"))? as usize;
        if len < 24 || !len.is_multiple_of(8) || pos + len > used {
            return Err(format!("attribute at offset {pos} has bad length {len}"));
        }
        let a = attribute_header::parse(&buf[pos..pos + len])
            .map_err(|e| format!("attribute at offset {pos}: {e}"))?;
        attributes.push(a);
        pos += len;
    }
    Ok(FileRecord {
        sequence,
        link_count,
        flags,
        base_record,
        attributes,
    })
}
