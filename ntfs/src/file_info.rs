//! A file's attributes gathered from its base record and any extension records, with
//! non-resident attributes split across records merged into one runlist.

use crate::attribute_header::{
    Attribute, Value, DATA, FILE_NAME, REPARSE_POINT, STANDARD_INFORMATION,
};
use crate::file_name::{self, FileName};
use crate::standard_information::{self, StandardInformation};

pub struct FileInfo {
    pub record: u64,
    pub sequence: u16,
    pub flags: u16,
    pub attrs: Vec<Attribute>,
}

impl FileInfo {
    pub fn find(&self, type_code: u32, name: &[u16]) -> Option<&Attribute> {
        self.attrs
            .iter()
            .find(|a| a.type_code == type_code && a.name == name)
    }

    pub fn standard_information(&self) -> Result<StandardInformation, String> {
        match self.find(STANDARD_INFORMATION, &[]).map(|a| &a.value) {
            Some(Value::Resident(v)) => standard_information::parse(v),
            Some(Value::NonResident(_)) => Err("non-resident $STANDARD_INFORMATION".into()),
            None => Err("no $STANDARD_INFORMATION".into()),
        }
    }

    pub fn file_names(&self) -> Vec<FileName> {
        self.attrs
            .iter()
            .filter(|a| a.type_code == FILE_NAME)
            .filter_map(|a| match &a.value {
                Value::Resident(v) => file_name::parse(v).ok(),
                Value::NonResident(_) => None,
            })
            .collect()
    }

    pub fn has_reparse_point(&self) -> bool {
        self.find(REPARSE_POINT, &[]).is_some()
    }

    pub fn data(&self) -> Option<&Attribute> {
        self.find(DATA, &[])
    }
}

/// Combines the extents of each non-resident (type, name) into one attribute, in VCN
/// order. Resident attributes are kept as they are (a file has one $FILE_NAME per link).
pub fn merge(attrs: Vec<Attribute>) -> Result<Vec<Attribute>, String> {
    let mut out = Vec::with_capacity(attrs.len());
    let mut nonres: Vec<Attribute> = Vec::new();
    for a in attrs {
        match a.value {
            Value::Resident(_) => out.push(a),
            Value::NonResident(_) => nonres.push(a),
        }
    }
    let start = |a: &Attribute| match &a.value {
        Value::NonResident(n) => n.start_vcn,
        Value::Resident(_) => 0,
    };
    nonres.sort_by(|a, b| (a.type_code, &a.name, start(a)).cmp(&(b.type_code, &b.name, start(b))));
    let mut merged: Vec<Attribute> = Vec::new();
    for a in nonres {
        if let Some(prev) = merged.last_mut() {
            if prev.type_code == a.type_code && prev.name == a.name {
                if let (Value::NonResident(b), Value::NonResident(n)) = (&mut prev.value, a.value) {
                    if let Some(last) = b.runs.last() {
                        if n.runs.first().is_some_and(|f| f.vcn < last.end_vcn()) {
                            return Err(format!(
                                "attribute {:#x} extents overlap at VCN {}",
                                prev.type_code, n.start_vcn
                            ));
                        }
                    }
                    b.runs.extend(n.runs);
                    b.last_vcn = b.last_vcn.max(n.last_vcn);
                }
                continue;
            }
        }
        merged.push(a);
    }
    out.extend(merged);
    Ok(out)
}
