//! TEST-ONLY writers for the two formats no installed tool writes: COWD redo logs and
//! SEsparse deltas, laid out from the published structures (VMware's vmfsSparse header,
//! qemu's SEsparse reader). Tests first prove each generated file with qemu-img, which
//! reads both, and only then compare our reader with it. Not a general-purpose writer.

use std::io::Write;
use std::path::Path;

/// What one grain of a generated delta holds.
#[derive(Clone)]
pub enum G {
    /// Not in the delta: reads fall through to the parent.
    Unallocated,
    /// SEsparse only: explicitly unmapped (reads as zeros).
    Unmapped,
    /// SEsparse only: explicitly zero.
    Zero,
    Data(Vec<u8>),
}

pub fn descriptor(
    cid: u32,
    parent_cid: u32,
    parent: &str,
    create_type: &str,
    sectors: u64,
    kind: &str,
    extent: &str,
) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID={cid:08x}\nparentCID={parent_cid:08x}\ncreateType=\"{create_type}\"\nparentFileNameHint=\"{parent}\"\n# Extent description\nRW {sectors} {kind} \"{extent}\"\n\n# The Disk Data Base\n#DDB\n\nddb.longContentID = \"0123456789abcdef0123456789abcdef\"\n"
    )
}

/// A COWD file: 2048-byte header, grain directory at sector 4, 4096-entry grain tables,
/// then grains. `grains[i]` describes grain i; a table whose grains are all unallocated is
/// left out of the directory (entry 0).
pub fn cowd(path: &Path, capacity_sectors: u32, grain_sectors: u32, grains: &[G]) {
    let gb = grain_sectors as usize * 512;
    let per_gt = 4096usize;
    let n_gd = (capacity_sectors as usize).div_ceil(grain_sectors as usize * per_gt);
    let gd_sector = 4u32;
    let gd_sectors = (n_gd * 4).div_ceil(512) as u32;
    let mut next = gd_sector + gd_sectors;
    let mut gd = vec![0u32; n_gd];
    let mut tables: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut data: Vec<(u32, &[u8])> = Vec::new();
    for (t, gde) in gd.iter_mut().enumerate() {
        let chunk = &grains[(t * per_gt).min(grains.len())..((t + 1) * per_gt).min(grains.len())];
        if chunk.iter().all(|g| matches!(g, G::Unallocated)) {
            continue;
        }
        *gde = next;
        tables.push((next, vec![0u32; per_gt]));
        next += (per_gt * 4 / 512) as u32;
    }
    // Grains are written in reverse order so physical order differs from virtual order.
    for (i, g) in grains.iter().enumerate().rev() {
        if let G::Data(d) = g {
            assert_eq!(d.len(), gb);
            let t = gd[i / per_gt];
            let table = tables.iter_mut().find(|x| x.0 == t).unwrap();
            table.1[i % per_gt] = next;
            data.push((next, d));
            next += grain_sectors;
        } else {
            assert!(
                matches!(g, G::Unallocated),
                "COWD has only allocated and unallocated grains"
            );
        }
    }
    let mut f = vec![0u8; next as usize * 512];
    let mut h = Vec::new();
    h.extend_from_slice(b"COWD");
    for v in [
        1u32,
        3,
        capacity_sectors,
        grain_sectors,
        gd_sector,
        n_gd as u32,
        next,
    ] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    f[..h.len()].copy_from_slice(&h);
    for (i, v) in gd.iter().enumerate() {
        let at = gd_sector as usize * 512 + i * 4;
        f[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    for (at, t) in &tables {
        for (i, v) in t.iter().enumerate() {
            let o = *at as usize * 512 + i * 4;
            f[o..o + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    for (at, d) in data {
        let o = at as usize * 512;
        f[o..o + d.len()].copy_from_slice(d);
    }
    std::fs::write(path, f).unwrap();
}

/// SEsparse layout knobs the tests vary.
pub struct SeOpts {
    /// Order in which grain tables are placed in the tables area (a permutation of
    /// 0..number of present tables), so GD entries are not the identity.
    pub table_order_reversed: bool,
    /// First grain index used in the grains area: above 4096 exercises the split encoding.
    pub first_grain_index: u64,
    pub replay_journal: bool,
}

const SE_GRAIN: usize = 4096;
const SE_GTES: usize = 4096;

/// An SEsparse extent: constant header (sector 0), volatile header (sector 1), journal
/// header and journal, grain directory, grain tables (64 sectors each), grains (8 sectors).
pub fn sesparse(path: &Path, capacity_sectors: u64, grains: &[G], o: &SeOpts) {
    let n_gd = (capacity_sectors as usize * 512).div_ceil(SE_GRAIN * SE_GTES);
    let gd_off = 8u64;
    let gd_size = ((n_gd * 8).div_ceil(512) as u64).max(1);
    let present: Vec<usize> = (0..n_gd)
        .filter(|&t| {
            let c = &grains[(t * SE_GTES).min(grains.len())..((t + 1) * SE_GTES).min(grains.len())];
            !c.iter().all(|g| matches!(g, G::Unallocated))
        })
        .collect();
    let gt_off = gd_off + gd_size;
    let gt_size = (present.len() as u64).max(1) * 64;
    let bitmap_off = gt_off + gt_size;
    let bitmap_size = 8u64;
    let backmap_off = bitmap_off + bitmap_size;
    let backmap_size = 8u64;
    let grains_off = backmap_off + backmap_size;
    let n_data = grains.iter().filter(|g| matches!(g, G::Data(_))).count() as u64;
    let grains_size = (o.first_grain_index + n_data) * 8;
    let total = (grains_off + grains_size) as usize * 512;
    let mut f = vec![0u8; total];
    let put = |f: &mut Vec<u8>, at: usize, v: u64| f[at..at + 8].copy_from_slice(&v.to_le_bytes());
    let ch = [
        0xcafebabe,
        0x0000000200000001,
        capacity_sectors,
        8,
        64,
        0,
        0,
        0,
        0,
        0,
        1,
        1,
        2,
        1,
        3,
        5,
        gd_off,
        gd_size,
        gt_off,
        gt_size,
        bitmap_off,
        bitmap_size,
        backmap_off,
        backmap_size,
        grains_off,
        grains_size,
    ];
    for (i, v) in ch.iter().enumerate() {
        put(&mut f, i * 8, *v);
    }
    put(&mut f, 512, 0xcafecafe);
    put(&mut f, 512 + 8, 1);
    put(&mut f, 512 + 16, 1);
    put(&mut f, 512 + 24, o.replay_journal as u64);
    let mut slot_of = vec![None; n_gd];
    for (k, &t) in present.iter().enumerate() {
        let slot = if o.table_order_reversed {
            present.len() - 1 - k
        } else {
            k
        };
        slot_of[t] = Some(slot as u64);
        put(
            &mut f,
            gd_off as usize * 512 + t * 8,
            0x1000_0000_0000_0000 | slot as u64,
        );
    }
    let mut next_grain = o.first_grain_index;
    for (i, g) in grains.iter().enumerate() {
        let t = i / SE_GTES;
        let Some(slot) = slot_of[t] else { continue };
        let e: u64 = match g {
            G::Unallocated => 0,
            G::Unmapped => 0x1000_0000_0000_0000,
            G::Zero => 0x2000_0000_0000_0000,
            G::Data(d) => {
                assert_eq!(d.len(), SE_GRAIN);
                let idx = next_grain;
                next_grain += 1;
                let at = (grains_off + idx * 8) as usize * 512;
                f[at..at + SE_GRAIN].copy_from_slice(d);
                0x3000_0000_0000_0000 | ((idx & 0xfff) << 48) | (idx >> 12)
            }
        };
        put(
            &mut f,
            (gt_off + slot * 64) as usize * 512 + (i % SE_GTES) * 8,
            e,
        );
    }
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&f).unwrap();
}

/// The bytes a delta over `parent` should read as.
pub fn expected(parent: &[u8], grains: &[G], grain_bytes: usize) -> Vec<u8> {
    let mut v = parent.to_vec();
    for (i, g) in grains.iter().enumerate() {
        let r = i * grain_bytes..((i + 1) * grain_bytes).min(v.len());
        match g {
            G::Unallocated => {}
            G::Unmapped | G::Zero => v[r].fill(0),
            G::Data(d) => {
                let n = r.len();
                v[r].copy_from_slice(&d[..n]);
            }
        }
    }
    v
}
