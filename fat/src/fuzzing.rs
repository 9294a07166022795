//! Entry points into the internal parsers for the fuzz targets (feature `fuzzing`).
//! Each takes raw bytes and must neither panic nor run unboundedly on any input.

use std::sync::Arc;

use crate::dir_data::DirData;
use crate::fat::{FatTable, Want, Width};
use crate::{bpb, exfat, fat_dir, fsinfo};

pub fn boot_sector(data: &[u8]) {
    let _ = crate::probe(data);
    if let Ok(b) = bpb::parse(data) {
        let _ = (b.cluster_size(), b.root_dir_offset(), b.active_fat());
        let _ = fsinfo::parse(data, b.cluster_count);
    }
    if let Ok(b) = exfat::boot_sector::parse(data) {
        let _ = (b.cluster_size(), b.fat_offset_bytes(b.active_fat()));
    }
    let _ = exfat::boot_sector::boot_checksum(data);
}

pub fn fat_directory(data: &[u8]) {
    let fat32 = data.first().is_some_and(|b| b & 1 == 1);
    let dir = DirData::linear(data.get(1..).unwrap_or_default().to_vec(), 4096, 512);
    let _ = fat_dir::parse(&dir, fat32, true);
}

pub fn exfat_directory(data: &[u8]) {
    let x = exfat::ExFat::new(2);
    let dir = DirData::linear(data.to_vec(), 4096, 512);
    let _ = exfat::scan_root_metadata(&dir, 0);
    for e in x.parse_dir(&dir) {
        let _ = x.fold(&e.name);
    }
    let _ = exfat::entry_set::parse(data, 0);
}

pub fn upcase_table(data: &[u8]) {
    let sum = exfat::upcase_table::checksum(data);
    if let Some(t) = exfat::upcase_table::UpcaseTable::load(data, sum) {
        let _ = t.fold("Grüße, ΩΜΈΓΑ");
    }
}

/// First byte picks the entry width and the first cluster, the rest is the table.
pub fn fat_table(data: &[u8]) {
    let Some((&sel, table)) = data.split_first() else {
        return;
    };
    let width = match sel & 3 {
        0 => Width::W12,
        1 => Width::W16,
        2 => Width::W32,
        _ => Width::ExFat,
    };
    let bits = match width {
        Width::W12 => 12,
        Width::W16 => 16,
        _ => 32,
    };
    let entries = (table.len() as u64 * 8 / bits) as u32;
    if entries < 3 {
        return;
    }
    let len = table.len() as u64;
    let fat = FatTable::new(Arc::new(table.to_vec()), 0, len, width, entries - 2);
    let first = u32::from(sel >> 2);
    let _ = fat.count_free();
    let _ = fat.chain(first, Want::UntilEnd { max: 1 << 20 });
    let _ = fat.chain(first, Want::Exactly(u64::from(sel >> 4)));
}
