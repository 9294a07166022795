//! An $MFT whose own $DATA is split across its base record and an extension record,
//! described by an $ATTRIBUTE_LIST (as on large, long-lived Windows volumes). mkntfs never
//! makes one, so the test rewrites records 0 and 20 of a real volume, then checks that
//! the listing is unchanged and still agrees with Sleuth Kit.

mod common;
use common::*;
use vmsnapfs_io::le;
use vmsnapfs_ntfs::runlist::{self, Run};

const RS: usize = 1024;
const CS: usize = 4096;
const EXT: u64 = 20;
const SPLIT_VCN: u64 = 8;

// A field past the end of the image fails the test, saying where.
fn le16(b: &[u8], o: usize) -> usize {
    le::u16_at(b, o).unwrap().into()
}
fn le32(b: &[u8], o: usize) -> usize {
    le::u32_at(b, o).unwrap() as usize
}
fn le64(b: &[u8], o: usize) -> u64 {
    le::u64_at(b, o).unwrap()
}

fn encode_runs(runs: &[Run]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = 0i64;
    for r in runs {
        let lcn = r.lcn.unwrap() as i64;
        let delta = lcn - prev;
        prev = lcn;
        let len_bytes: Vec<u8> = r.len.to_le_bytes().into_iter().collect();
        let ln = (1..=8).find(|&n| r.len >> (8 * n) == 0).unwrap();
        let on = (1..=8)
            .find(|&n| {
                let bits = 8 * n;
                bits == 64 || (delta >= -(1i64 << (bits - 1)) && delta < (1i64 << (bits - 1)))
            })
            .unwrap();
        out.push(((on as u8) << 4) | ln as u8);
        out.extend_from_slice(&len_bytes[..ln]);
        out.extend_from_slice(&delta.to_le_bytes()[..on]);
    }
    out.push(0);
    out
}

fn pad8(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
}

fn data_extent(start: u64, last: u64, sizes: [u64; 3], runs: &[Run], instance: u16) -> Vec<u8> {
    let mut a = vec![0u8; 0x40];
    a[0..4].copy_from_slice(&0x80u32.to_le_bytes());
    a[8] = 1;
    a[10..12].copy_from_slice(&0x40u16.to_le_bytes());
    a[14..16].copy_from_slice(&instance.to_le_bytes());
    a[16..24].copy_from_slice(&start.to_le_bytes());
    a[24..32].copy_from_slice(&last.to_le_bytes());
    a[32..34].copy_from_slice(&0x40u16.to_le_bytes());
    for (i, s) in sizes.iter().enumerate() {
        a[40 + 8 * i..48 + 8 * i].copy_from_slice(&s.to_le_bytes());
    }
    a.extend(encode_runs(runs));
    pad8(&mut a);
    let len = a.len() as u32;
    a[4..8].copy_from_slice(&len.to_le_bytes());
    a
}

fn list_entry(type_code: u32, start_vcn: u64, reference: u64, instance: u16) -> Vec<u8> {
    named_list_entry(type_code, &[], start_vcn, reference, instance)
}

fn named_list_entry(
    type_code: u32,
    name: &[u8],
    start_vcn: u64,
    reference: u64,
    instance: u16,
) -> Vec<u8> {
    let mut e = vec![0u8; 26];
    e.extend_from_slice(name);
    pad8(&mut e);
    let len = e.len() as u16;
    e[0..4].copy_from_slice(&type_code.to_le_bytes());
    e[4..6].copy_from_slice(&len.to_le_bytes());
    e[6] = (name.len() / 2) as u8;
    e[7] = 0x1A;
    e[8..16].copy_from_slice(&start_vcn.to_le_bytes());
    e[16..24].copy_from_slice(&reference.to_le_bytes());
    e[24..26].copy_from_slice(&instance.to_le_bytes());
    e
}

/// Writes `attrs` into a record after its header and re-applies update sequence fixups.
fn finish_record(mut header: Vec<u8>, attrs: &[Vec<u8>]) -> Vec<u8> {
    let attrs_off = le16(&header, 20);
    header.truncate(attrs_off);
    let mut rec = header;
    for a in attrs {
        rec.extend_from_slice(a);
    }
    rec.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    rec.extend_from_slice(&[0; 4]);
    let used = rec.len() as u32;
    assert!(rec.len() <= RS, "record overflow");
    rec.resize(RS, 0);
    rec[24..28].copy_from_slice(&used.to_le_bytes());
    rec[28..32].copy_from_slice(&(RS as u32).to_le_bytes());
    let usa = le16(&rec, 4);
    let usn = (le16(&rec, usa) as u16).wrapping_add(1).max(1);
    rec[usa..usa + 2].copy_from_slice(&usn.to_le_bytes());
    for i in 0..RS / 512 {
        let end = (i + 1) * 512 - 2;
        let (saved0, saved1) = (rec[end], rec[end + 1]);
        rec[usa + 2 + 2 * i] = saved0;
        rec[usa + 3 + 2 * i] = saved1;
        rec[end..end + 2].copy_from_slice(&usn.to_le_bytes());
    }
    rec
}

#[test]
fn mft_data_split_over_an_extension_record() {
    let tmp = tempfile::tempdir().unwrap();
    let img_path = tmp.path().join("vol.img");
    mkntfs(&img_path, 24 << 20, CS as u32, 512, "mftlist");
    {
        let m = Mount::new(&img_path, &tmp.path().join("mnt"), "");
        std::fs::create_dir(m.dir.join("d")).unwrap();
        // Enough files that records past the split point are in use.
        for i in 0..60 {
            std::fs::write(
                m.dir.join(format!("d/f{i}")),
                prng_bytes(i, 1500 + i as usize),
            )
            .unwrap();
        }
    }
    let before_ours = walk(&open(&img_path));
    let before_tsk = sleuthkit_listing(&img_path);
    assert_listing_eq(&before_ours, &before_tsk, "before");

    let mut img = std::fs::read(&img_path).unwrap();
    let mft = le64(&img, 0x30) as usize * CS;
    let mut rec0 = img[mft..mft + RS].to_vec();
    vmsnapfs_ntfs::fixup::apply_fixups(&mut rec0).unwrap();
    let seq0 = le16(&rec0, 16) as u64;
    let ext_off = mft + EXT as usize * RS;
    assert_eq!(img[ext_off + 22] & 1, 0, "record {EXT} must be free");

    // Split the original attributes; take $MFT's $DATA apart at SPLIT_VCN.
    let mut pos = le16(&rec0, 20);
    let mut others = Vec::new();
    let mut data = None;
    while le32(&rec0, pos) != 0xFFFF_FFFF {
        let len = le32(&rec0, pos + 4);
        let a = rec0[pos..pos + len].to_vec();
        if le32(&a, 0) == 0x80 {
            data = Some(a);
        } else {
            others.push(a);
        }
        pos += len;
    }
    let data = data.unwrap();
    let runs = runlist::decode(&data[le16(&data, 32)..], 0).unwrap();
    let sizes = [le64(&data, 40), le64(&data, 48), le64(&data, 56)];
    let total = runs.last().unwrap().end_vcn();
    assert!(
        total > SPLIT_VCN + 2,
        "MFT too small to split: {total} clusters"
    );
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for r in runs {
        let lcn = r.lcn.unwrap();
        if r.end_vcn() <= SPLIT_VCN {
            first.push(r);
        } else if r.vcn >= SPLIT_VCN {
            second.push(r);
        } else {
            let k = SPLIT_VCN - r.vcn;
            first.push(Run {
                vcn: r.vcn,
                lcn: Some(lcn),
                len: k,
            });
            second.push(Run {
                vcn: SPLIT_VCN,
                lcn: Some(lcn + k),
                len: r.len - k,
            });
        }
    }
    let base_ref = seq0 << 48;
    let ext_ref = EXT | (1u64 << 48);
    let ext_data = data_extent(SPLIT_VCN, total - 1, sizes, &second, 0);
    let base_data = data_extent(0, SPLIT_VCN - 1, sizes, &first, le16(&data, 14) as u16);

    let mut list_value = Vec::new();
    for a in &others {
        if le32(a, 0) < 0x80 {
            list_value.extend(list_entry(
                le32(a, 0) as u32,
                0,
                base_ref,
                le16(a, 14) as u16,
            ));
        }
    }
    list_value.extend(list_entry(0x80, 0, base_ref, le16(&data, 14) as u16));
    list_value.extend(list_entry(0x80, SPLIT_VCN, ext_ref, 0));
    for a in &others {
        if le32(a, 0) > 0x80 {
            list_value.extend(list_entry(
                le32(a, 0) as u32,
                0,
                base_ref,
                le16(a, 14) as u16,
            ));
        }
    }
    let mut list_attr = vec![0u8; 0x18];
    list_attr[0..4].copy_from_slice(&0x20u32.to_le_bytes());
    list_attr[10..12].copy_from_slice(&0x18u16.to_le_bytes());
    list_attr[14..16].copy_from_slice(&0x30u16.to_le_bytes());
    list_attr[16..20].copy_from_slice(&(list_value.len() as u32).to_le_bytes());
    list_attr[20..22].copy_from_slice(&0x18u16.to_le_bytes());
    list_attr.extend(list_value);
    pad8(&mut list_attr);
    let l = list_attr.len() as u32;
    list_attr[4..8].copy_from_slice(&l.to_le_bytes());

    let mut attrs: Vec<Vec<u8>> = Vec::new();
    for a in &others {
        if le32(a, 0) == 0x30 {
            attrs.push(list_attr.clone());
        }
        if le32(a, 0) > 0x80 && !attrs.iter().any(|x| le32(x, 0) == 0x80) {
            attrs.push(base_data.clone());
        }
        attrs.push(a.clone());
    }
    if !attrs.iter().any(|x| le32(x, 0) == 0x80) {
        attrs.push(base_data.clone());
    }
    let new0 = finish_record(rec0.clone(), &attrs);

    let mut ext_header = rec0[..le16(&rec0, 20)].to_vec();
    ext_header[16..18].copy_from_slice(&1u16.to_le_bytes()); // sequence
    ext_header[18..20].copy_from_slice(&0u16.to_le_bytes()); // links
    ext_header[22..24].copy_from_slice(&1u16.to_le_bytes()); // in use, not a directory
    ext_header[32..40].copy_from_slice(&base_ref.to_le_bytes());
    ext_header[40..42].copy_from_slice(&1u16.to_le_bytes());
    if ext_header.len() >= 48 {
        ext_header[44..48].copy_from_slice(&(EXT as u32).to_le_bytes());
    }
    let new_ext = finish_record(ext_header, &[ext_data]);
    img[mft..mft + RS].copy_from_slice(&new0);
    img[ext_off..ext_off + RS].copy_from_slice(&new_ext);
    std::fs::write(&img_path, &img).unwrap();

    let istat = String::from_utf8(run("istat", &[img_path.to_str().unwrap(), "0"])).unwrap();
    assert!(istat.contains("$ATTRIBUTE_LIST"), "{istat}");
    let vol = open(&img_path);
    let after = walk(&vol);
    assert_listing_eq(&after, &before_ours, "after split");
    assert_listing_eq(
        &after,
        &sleuthkit_listing(&img_path),
        "after split vs Sleuth Kit",
    );
    // Records past the split are reached through the extension record's runs.
    let d = vol.lookup(vol.root(), "d").unwrap().unwrap();
    assert!(vol
        .read_dir(d)
        .unwrap()
        .iter()
        .any(|e| e.id.0 as usize * RS >= SPLIT_VCN as usize * CS));
}

fn resident_list_attribute(value: Vec<u8>, instance: u16) -> Vec<u8> {
    let mut a = vec![0u8; 0x18];
    a[0..4].copy_from_slice(&0x20u32.to_le_bytes());
    a[10..12].copy_from_slice(&0x18u16.to_le_bytes());
    a[14..16].copy_from_slice(&instance.to_le_bytes());
    a[16..20].copy_from_slice(&(value.len() as u32).to_le_bytes());
    a[20..22].copy_from_slice(&0x18u16.to_le_bytes());
    a.extend(value);
    pad8(&mut a);
    let l = a.len() as u32;
    a[4..8].copy_from_slice(&l.to_le_bytes());
    a
}

/// Moves the attributes of `types` from base record `base` into free record `ext` and
/// gives the base an $ATTRIBUTE_LIST describing where everything is.
fn move_to_extension(img: &mut [u8], mft: usize, base: u64, ext: u64, types: &[u32]) {
    let off = mft + base as usize * RS;
    let mut rec = img[off..off + RS].to_vec();
    vmsnapfs_ntfs::fixup::apply_fixups(&mut rec).unwrap();
    let seq = le16(&rec, 16) as u64;
    let ext_off = mft + ext as usize * RS;
    assert_eq!(img[ext_off + 22] & 1, 0, "record {ext} must be free");
    let mut pos = le16(&rec, 20);
    let mut all = Vec::new();
    while le32(&rec, pos) != 0xFFFF_FFFF {
        let len = le32(&rec, pos + 4);
        all.push(rec[pos..pos + len].to_vec());
        pos += len;
    }
    let base_ref = base | (seq << 48);
    let ext_ref = ext | (1u64 << 48);
    let mut list = Vec::new();
    let (mut kept, mut moved) = (Vec::new(), Vec::new());
    for a in &all {
        let t = le32(a, 0) as u32;
        let name = &a[le16(a, 10)..le16(a, 10) + 2 * a[9] as usize];
        let start_vcn = if a[8] == 1 { le64(a, 16) } else { 0 };
        let to_ext = types.contains(&t);
        let r = if to_ext { ext_ref } else { base_ref };
        list.extend(named_list_entry(t, name, start_vcn, r, le16(a, 14) as u16));
        if to_ext {
            moved.push(a.clone());
        } else {
            kept.push(a.clone());
        }
    }
    let list_attr = resident_list_attribute(list, 0x3F);
    let mut attrs = Vec::new();
    for a in kept {
        if le32(&a, 0) > 0x20 && !attrs.iter().any(|x: &Vec<u8>| le32(x, 0) == 0x20) {
            attrs.push(list_attr.clone());
        }
        attrs.push(a);
    }
    let new_base = finish_record(rec.clone(), &attrs);
    let mut ext_header = rec[..le16(&rec, 20)].to_vec();
    ext_header[16..18].copy_from_slice(&1u16.to_le_bytes());
    ext_header[18..20].copy_from_slice(&0u16.to_le_bytes());
    ext_header[22..24].copy_from_slice(&1u16.to_le_bytes());
    ext_header[32..40].copy_from_slice(&base_ref.to_le_bytes());
    if ext_header.len() >= 48 {
        ext_header[44..48].copy_from_slice(&(ext as u32).to_le_bytes());
    }
    let new_ext = finish_record(ext_header, &moved);
    img[off..off + RS].copy_from_slice(&new_base);
    img[ext_off..ext_off + RS].copy_from_slice(&new_ext);
}

/// The C:\Windows case: a directory whose $INDEX_ROOT and $INDEX_ALLOCATION live in an
/// extension record.
#[test]
fn directory_index_in_an_extension_record() {
    let tmp = tempfile::tempdir().unwrap();
    let img_path = tmp.path().join("vol.img");
    mkntfs(&img_path, 16 << 20, CS as u32, 512, "dirlist");
    {
        let m = Mount::new(&img_path, &tmp.path().join("mnt"), "");
        std::fs::create_dir(m.dir.join("Windows")).unwrap();
        for i in 0..150 {
            let p = m.dir.join(format!("Windows/file {i}"));
            if i % 10 == 0 {
                std::fs::write(p, prng_bytes(i, 700 + i as usize)).unwrap();
            } else {
                std::fs::File::create(p).unwrap();
            }
        }
    }
    let vol = open(&img_path);
    let dir = vol.lookup(vol.root(), "Windows").unwrap().unwrap();
    let before = walk(&vol);
    let names_before = vol.read_dir(dir).unwrap();
    drop(vol);
    let mut img = std::fs::read(&img_path).unwrap();
    let mft = le64(&img, 0x30) as usize * CS;
    move_to_extension(&mut img, mft, dir.0, 21, &[0x90, 0xA0]);
    std::fs::write(&img_path, &img).unwrap();
    let istat = String::from_utf8(run(
        "istat",
        &[img_path.to_str().unwrap(), &dir.0.to_string()],
    ))
    .unwrap();
    assert!(istat.contains("MFT Entry: 21"), "{istat}");
    let vol = open(&img_path);
    assert_eq!(vol.read_dir(dir).unwrap(), names_before);
    for e in names_before.iter().step_by(7) {
        assert_eq!(vol.lookup(dir, &e.name).unwrap(), Some(e.id));
    }
    let after = walk(&vol);
    assert_listing_eq(&after, &before, "index in extension record");
    assert_listing_eq(&after, &sleuthkit_listing(&img_path), "vs Sleuth Kit");
}
