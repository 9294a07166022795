//! Structure-aware random inputs for the parsers: byte flips rarely produce the exact
//! values that matter (an LFN ordinal of 0x20, a set count of 18, a link to cluster
//! 1), so these draw fields from small sets of such values. Deterministic seeds.

use std::sync::Arc;

use crate::dir_data::{DirData, DirMap};
use crate::exfat::{self, entry_set, upcase_table};
use crate::fat::{FatTable, Want, Width};
use crate::fat_dir;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn fat_slot(rng: &mut Rng) -> [u8; 32] {
    let mut e = [0u8; 32];
    for b in e.iter_mut() {
        let r = rng.next() as u8;
        *b = rng.pick(&[0, 0x20, 0x41, b'A', 0xFF, r]);
    }
    e[0] = rng.pick(&[
        0x00, 0x01, 0x02, 0x05, 0x20, 0x2E, 0x40, 0x41, 0x42, 0x54, 0x55, 0x80, 0xC1, 0xE5, b'A',
    ]);
    e[11] = rng.pick(&[0x0F, 0x0F, 0x08, 0x10, 0x18, 0x20, 0x3F, 0x00]);
    e[12] = rng.pick(&[0, 0x08, 0x10, 0x18]);
    e[13] = rng.pick(&[0, 1, 0x55]);
    e
}

#[test]
fn fat_directories() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let n = 1 + rng.below(24) as usize;
        let bytes: Vec<u8> = (0..n).flat_map(|_| fat_slot(&mut rng)).collect();
        let data = DirData::new(bytes, DirMap::Linear(4096), 512, 4096);
        let _ = fat_dir::parse(&data, rng.below(2) == 0, true);
    }
}

fn exfat_slot(rng: &mut Rng) -> [u8; 32] {
    let mut e = [0u8; 32];
    for b in e.iter_mut() {
        let r = rng.next() as u8;
        *b = rng.pick(&[0, 1, 0xFF, 0x41, r]);
    }
    e[0] = rng.pick(&[
        0x00, 0x05, 0x81, 0x82, 0x83, 0x85, 0x85, 0xA0, 0xC0, 0xC0, 0xC1, 0xC1, 0xE0, 0x40,
    ]);
    e[1] = rng.pick(&[0, 1, 2, 3, 17, 18, 19, 0xFF, 0x03]);
    e[3] = rng.pick(&[0, 1, 14, 15, 16, 30, 255]);
    e
}

#[test]
fn exfat_directories_and_sets() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let x = exfat::ExFat::new(2);
    for _ in 0..20_000 {
        let n = 1 + rng.below(24) as usize;
        let mut bytes: Vec<u8> = (0..n).flat_map(|_| exfat_slot(&mut rng)).collect();
        if rng.below(2) == 0 {
            // Make the first set's checksum right half of the time.
            let count = usize::from(bytes[1]);
            if bytes[0] == 0x85 && (1 + count) * 32 <= bytes.len() {
                let sum = entry_set::set_checksum(&bytes[..(1 + count) * 32]);
                bytes[2..4].copy_from_slice(&sum.to_le_bytes());
            }
        }
        let data = DirData::new(bytes.clone(), DirMap::Linear(4096), 512, 4096);
        let _ = exfat::scan_root_metadata(&data, 0);
        for e in x.parse_dir(&data) {
            let _ = x.fold(&e.name);
        }
        let _ = entry_set::parse(&bytes, 4096);
        // Loading builds a 128 KiB table: too slow to do every time in debug builds.
        if rng.below(64) == 0 {
            let _ = upcase_table::UpcaseTable::load(&bytes, upcase_table::checksum(&bytes));
        }
    }
}

#[test]
fn fat_chains() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..5_000 {
        let width = rng.pick(&[Width::W12, Width::W16, Width::W32, Width::ExFat]);
        let entries = 3 + rng.below(40) as u32;
        let max = entries - 1;
        let values: Vec<u32> = (0..entries)
            .map(|_| {
                let end = match width {
                    Width::W12 => 0xFFF,
                    Width::W16 => 0xFFFF,
                    Width::W32 => 0x0FFF_FFFF,
                    Width::ExFat => 0xFFFF_FFFF,
                };
                match rng.below(6) {
                    0 => end,
                    1 => 0,
                    2 => rng.pick(&[1, max + 1, end - 8, 0xFFFF_FFF7]),
                    _ => 2 + rng.below(u64::from(max - 1)) as u32,
                }
            })
            .collect();
        let bytes: Vec<u8> = match width {
            Width::W12 => {
                let mut b = vec![0u8; (values.len() * 3).div_ceil(2) + 1];
                for (i, v) in values.iter().enumerate() {
                    let v = (v & 0xFFF) as u16;
                    let o = i * 3 / 2;
                    let cur = u16::from_le_bytes([b[o], b[o + 1]]);
                    let new = if i % 2 == 1 {
                        (cur & 0x000F) | (v << 4)
                    } else {
                        (cur & 0xF000) | v
                    };
                    b[o..o + 2].copy_from_slice(&new.to_le_bytes());
                }
                b
            }
            Width::W16 => values
                .iter()
                .flat_map(|v| (*v as u16).to_le_bytes())
                .collect(),
            _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        let len = bytes.len() as u64;
        let fat = FatTable::new(Arc::new(bytes), 0, len, width, entries - 2);
        let first = rng.below(u64::from(entries) + 2) as u32;
        let _ = fat.chain(first, Want::UntilEnd { max: rng.below(64) });
        if let Ok(c) = fat.chain(first, Want::Exactly(rng.below(50))) {
            for i in 0..c.clusters() {
                assert!(c.locate(i).is_some());
            }
        }
        let _ = fat.next(first);
        let _ = fat.count_free();
    }
}

/// `valid` most of the time, else one of the edge cases: a volume needs every field
/// sane at once to open, so uniform picks would almost never get past the boot sector.
fn edge<T: Copy>(rng: &mut Rng, valid: T, others: &[T]) -> T {
    if rng.below(8) < 7 {
        valid
    } else {
        rng.pick(others)
    }
}

/// Reads everything reachable from the root, a few levels deep.
fn walk(vol: &crate::Volume) {
    let mut stack = vec![(vol.root(), 0)];
    let mut buf = [0u8; 700];
    let mut budget = 200;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = vol.read_dir(dir) else {
            continue;
        };
        for e in entries {
            budget -= 1;
            if budget == 0 {
                return;
            }
            let _ = vol.lookup(dir, &e.name);
            if vol.stat(e.id).is_ok() {
                if e.kind == crate::FileKind::Directory && depth < 3 {
                    stack.push((e.id, depth + 1));
                } else {
                    let _ = vol.read(e.id, 0, &mut buf);
                    let _ = vol.extents(e.id);
                }
            }
        }
    }
}

#[test]
fn fat_boot_sectors_and_volumes() {
    let mut rng = Rng(0x8CB9_2BA7_2F3D_8DD7);
    let mut opened = 0;
    for _ in 0..3_000 {
        let mut img = vec![0u8; 96 * 1024];
        for b in img.iter_mut().skip(512) {
            if rng.below(8) == 0 {
                *b = rng.next() as u8;
            }
        }
        // Directory-looking slots here and there.
        for _ in 0..40 {
            let at = (rng.below(img.len() as u64 / 32) * 32) as usize;
            img[at..at + 32].copy_from_slice(&fat_slot(&mut rng));
        }
        let bs = &mut img[..512];
        bs[0] = 0xEB;
        bs[2] = 0x90;
        let bps: u16 = rng.pick(&[512, 512, 1024, 4096, 0, 513]);
        bs[11..13].copy_from_slice(&bps.to_le_bytes());
        bs[13] = rng.pick(&[1, 1, 2, 4, 64, 128, 0, 3]);
        let rsvd: u16 = rng.pick(&[1, 1, 4, 32, 0, 0xFFFF]);
        bs[14..16].copy_from_slice(&rsvd.to_le_bytes());
        bs[16] = rng.pick(&[1, 2, 2, 0, 255]);
        let root: u16 = rng.pick(&[0, 16, 224, 512, 0xFFFF]);
        bs[17..19].copy_from_slice(&root.to_le_bytes());
        let tot16: u16 = rng.pick(&[0, 192, 0xFFFF, 100]);
        bs[19..21].copy_from_slice(&tot16.to_le_bytes());
        bs[21] = rng.pick(&[0xF8, 0xF0, 0x00]);
        let fatsz16: u16 = rng.pick(&[0, 1, 2, 9, 0xFFFF]);
        bs[22..24].copy_from_slice(&fatsz16.to_le_bytes());
        let tot32: u32 = rng.pick(&[0, 192, 70_000, 0xFFFF_FFFF, 5_000_000]);
        bs[32..36].copy_from_slice(&tot32.to_le_bytes());
        let fatsz32: u32 = rng.pick(&[0, 1, 8, 600, 0xFFFF_FFFF]);
        bs[36..40].copy_from_slice(&fatsz32.to_le_bytes());
        bs[40] = rng.pick(&[0, 0x80, 0x81, 0x8F]);
        let rootclus: u32 = rng.pick(&[2, 3, 0, 1, 0x0FFF_FFFF]);
        bs[44..48].copy_from_slice(&rootclus.to_le_bytes());
        let fsinfo: u16 = rng.pick(&[1, 0, 0xFFFF]);
        bs[48..50].copy_from_slice(&fsinfo.to_le_bytes());
        bs[38] = 0x29;
        bs[66] = 0x29;
        bs[510] = 0x55;
        bs[511] = 0xAA;
        let _ = crate::probe(&img);
        if let Ok(vol) = crate::Volume::open(Arc::new(img)) {
            let _ = vol.info();
            walk(&vol);
            opened += 1;
        }
    }
    assert!(opened > 20, "only {opened} random volumes opened");
}

#[test]
fn exfat_boot_sectors_and_volumes() {
    let mut rng = Rng(0x94D0_49BB_1331_11EB);
    let mut opened = 0;
    for _ in 0..2_000 {
        let mut img = vec![0u8; 64 * 1024];
        for b in img.iter_mut().skip(6 * 1024) {
            if rng.below(8) == 0 {
                *b = rng.next() as u8;
            }
        }
        for _ in 0..60 {
            let at = 6 * 1024 + (rng.below((img.len() as u64 - 6 * 1024) / 32) * 32) as usize;
            img[at..at + 32].copy_from_slice(&exfat_slot(&mut rng));
        }
        let bs = &mut img[..512];
        bs[0] = 0xEB;
        bs[3..11].copy_from_slice(b"EXFAT   ");
        let vol_len: u64 = edge(&mut rng, 128, &[127, u64::MAX, 0]);
        bs[72..80].copy_from_slice(&vol_len.to_le_bytes());
        let fat_off: u32 = edge(&mut rng, 24, &[24, 0, 0xFFFF_FFFF]);
        bs[80..84].copy_from_slice(&fat_off.to_le_bytes());
        let fat_len: u32 = edge(&mut rng, 1, &[1, 2, 0, 0xFFFF_FFFF]);
        bs[84..88].copy_from_slice(&fat_len.to_le_bytes());
        let heap: u32 = edge(&mut rng, 26, &[32, 25, 0xFFFF_FFF0]);
        bs[88..92].copy_from_slice(&heap.to_le_bytes());
        let count: u32 = edge(&mut rng, 32, &[90, 100, 1, 0, 0xFFFF_FFFF]);
        bs[92..96].copy_from_slice(&count.to_le_bytes());
        let root: u32 = edge(&mut rng, 2, &[3, 4, 1, 0xFFFF_FFFF]);
        bs[96..100].copy_from_slice(&root.to_le_bytes());
        bs[106] = edge(&mut rng, 0, &[1, 2, 3]);
        bs[108] = edge(&mut rng, 9, &[9, 12, 8, 13]);
        bs[109] = edge(&mut rng, 0, &[0, 1, 16, 25]);
        bs[110] = edge(&mut rng, 1, &[2, 0, 3]);
        bs[510] = 0x55;
        bs[511] = 0xAA;
        // A FAT that mostly links or ends chains, where the common geometry puts it.
        for i in 0..130u32 {
            let v: u32 = rng.pick(&[0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, i + 1, 0, 0xFFFF_FFF7]);
            let at = 24 * 512 + 4 * i as usize;
            img[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        let sum = exfat::boot_sector::boot_checksum(&img[..11 * 512]);
        for i in 0..128 {
            img[11 * 512 + 4 * i..11 * 512 + 4 * i + 4].copy_from_slice(&sum.to_le_bytes());
        }
        let _ = crate::probe(&img);
        if let Ok(vol) = crate::Volume::open(Arc::new(img)) {
            let _ = vol.info();
            walk(&vol);
            opened += 1;
        }
    }
    assert!(opened > 20, "only {opened} random volumes opened");
}
