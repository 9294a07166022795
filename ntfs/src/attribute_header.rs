//! Attribute records inside a file record: the common header, then either the resident
//! value or the non-resident sizes and runlist.

use crate::fields::short;
use crate::runlist::{self, Run};
use vmsnapfs_io::le::{bytes_at, u16_at, u16s_at, u32_at, u64_at, u8_at};

pub const STANDARD_INFORMATION: u32 = 0x10;
pub const ATTRIBUTE_LIST: u32 = 0x20;
pub const FILE_NAME: u32 = 0x30;
pub const SECURITY_DESCRIPTOR: u32 = 0x50;
pub const VOLUME_NAME: u32 = 0x60;
pub const VOLUME_INFORMATION: u32 = 0x70;
pub const DATA: u32 = 0x80;
pub const INDEX_ROOT: u32 = 0x90;
pub const INDEX_ALLOCATION: u32 = 0xA0;
pub const REPARSE_POINT: u32 = 0xC0;
pub const EA_INFORMATION: u32 = 0xD0;
pub const EA: u32 = 0xE0;
pub const END: u32 = 0xFFFF_FFFF;

pub const FLAG_COMPRESSED: u16 = 0x00FF;
pub const FLAG_ENCRYPTED: u16 = 0x4000;
pub const FLAG_SPARSE: u16 = 0x8000;

#[derive(Debug, Clone)]
pub struct NonResident {
    pub start_vcn: u64,
    pub last_vcn: u64,
    pub compression_unit: u8,
    pub allocated_size: u64,
    pub data_size: u64,
    pub initialized_size: u64,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone)]
pub enum Value {
    Resident(Vec<u8>),
    NonResident(NonResident),
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub type_code: u32,
    pub name: Vec<u16>,
    pub flags: u16,
    pub instance: u16,
    pub value: Value,
}

/// Parses one attribute record; `b` is exactly the record's `length` bytes.
pub fn parse(b: &[u8]) -> Result<Attribute, String> {
    let type_code = u32_at(b, 0).map_err(short("truncated header"))?;
    let non_resident = u8_at(b, 8).map_err(short("truncated header"))?;
    let name_len = u8_at(b, 9).map_err(short("truncated header"))? as usize;
    let name_off = u16_at(b, 10).map_err(short("truncated header"))? as usize;
    let flags = u16_at(b, 12).map_err(short("truncated header"))?;
    let instance = u16_at(b, 14).map_err(short("truncated header"))?;
    let name = if name_len == 0 {
        Vec::new()
    } else {
        u16s_at(b, name_off, name_len).map_err(short("name out of bounds"))?
    };
    let value = match non_resident {
        0 => {
            let len = u32_at(b, 16).map_err(short("truncated resident header"))? as usize;
            let off = u16_at(b, 20).map_err(short("truncated resident header"))? as usize;
            let v = bytes_at(b, off, len).map_err(short("resident value out of bounds"))?;
            Value::Resident(v.to_vec())
        }
        1 => {
            let start_vcn = u64_at(b, 16).map_err(short("truncated non-resident header"))?;
            let last_vcn = u64_at(b, 24).map_err(short("truncated non-resident header"))?;
            let runs_off = u16_at(b, 32).map_err(short("truncated non-resident header"))? as usize;
            let cu = u16_at(b, 34).map_err(short("truncated non-resident header"))?;
            let allocated_size = u64_at(b, 40).map_err(short("truncated non-resident header"))?;
            let data_size = u64_at(b, 48).map_err(short("truncated non-resident header"))?;
            let initialized_size = u64_at(b, 56).map_err(short("truncated non-resident header"))?;
            let run_bytes = b.get(runs_off..).ok_or("runlist offset out of bounds")?;
            if runs_off < 64 {
                return Err(format!("runlist offset {runs_off} inside the header"));
            }
            let runs = runlist::decode(run_bytes, start_vcn)?;
            if cu > 16 {
                return Err(format!("compression unit 2^{cu}"));
            }
            Value::NonResident(NonResident {
                start_vcn,
                last_vcn,
                compression_unit: cu as u8,
                allocated_size,
                data_size,
                initialized_size,
                runs,
            })
        }
        x => return Err(format!("non-resident flag {x}")),
    };
    Ok(Attribute {
        type_code,
        name,
        flags,
        instance,
        value,
    })
}
