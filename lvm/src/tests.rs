//! Whole PVs built in memory (our own builders, our own metadata text: these test the
//! assembly and mapping logic where the LVM2 tools cannot run; tests/lvm2_tools.rs checks
//! against the real tools).

use std::sync::Arc;

use crate::crc::{calc_crc, INITIAL_CRC};
use crate::mda_header::RawLocn;
use crate::pv_header::DiskLocn;
use crate::{label_header, mda_header, probe_named, pv_header};
use crate::{Error, LvStatus, SegmentKind, VolumeGroup};
use vmsnapfs_io::ReadAt;

const SIZE: usize = 4 << 20;
const MDA: u64 = 4096;
const DATA: usize = 1 << 20;
const UUIDS: [&str; 2] = [
    "AAAAAAbbbbccccddddeeeeffffgggggg",
    "HHHHHHiiiijjjjkkkkllllmmmmnnnnnn",
];

fn dashed(u: &str) -> String {
    crate::pv::format_uuid(u)
}

/// A 4 MiB PV: label in sector 1, one metadata area at 4 KiB holding `text` at ring
/// offset `ring_at`, data from 1 MiB filled with bytes that name the PV and offset.
fn pv_image(pv: usize, text: &str, ring_at: u64) -> Vec<u8> {
    let mut img = vec![0u8; SIZE];
    for (i, b) in img[DATA..].iter_mut().enumerate() {
        *b = (i as u32)
            .wrapping_mul(2654435761)
            .rotate_left(pv as u32 * 8 + 3) as u8;
    }
    let mda_size = (DATA as u64) - MDA;
    let hdr = pv_header::build(
        UUIDS[pv],
        SIZE as u64,
        &[DiskLocn {
            offset: DATA as u64,
            size: 0,
        }],
        &[DiskLocn {
            offset: MDA,
            size: mda_size,
        }],
    );
    img[512..1024].copy_from_slice(&label_header::build(1, &hdr));
    let mut t = text.as_bytes().to_vec();
    t.push(0);
    let mut pos = ring_at;
    for &c in &t {
        if pos == mda_size {
            pos = 512;
        }
        img[(MDA + pos) as usize] = c;
        pos += 1;
    }
    let r = RawLocn {
        offset: ring_at,
        size: t.len() as u64,
        checksum: calc_crc(INITIAL_CRC, &t),
        flags: 0,
    };
    img[MDA as usize..MDA as usize + 512].copy_from_slice(&mda_header::build(MDA, mda_size, &[r]));
    img
}

fn lin(pv: &str, pe: u64, n: u64, start: u64) -> String {
    format!("start_extent = {start}\nextent_count = {n}\ntype = \"striped\"\nstripe_count = 1\nstripes = [\"{pv}\", {pe}]")
}

fn lv(name: &str, visible: bool, segs: &[String]) -> String {
    let status = if visible {
        "\"READ\", \"WRITE\", \"VISIBLE\""
    } else {
        "\"READ\", \"WRITE\""
    };
    let mut s = format!(
        "{name} {{\nid = \"{name}-id\"\nstatus = [{status}]\nsegment_count = {}\n",
        segs.len()
    );
    for (i, g) in segs.iter().enumerate() {
        s += &format!("segment{} {{\n{g}\n}}\n", i + 1);
    }
    s + "}\n"
}

fn text(seqno: u64, pv1_flags: &str, extra: &str) -> String {
    let mut lvs = String::new();
    lvs += &lv("lin", true, &[lin("pv0", 0, 4, 0)]);
    lvs += &lv("st", true, &["start_extent = 0\nextent_count = 8\ntype = \"striped\"\nstripe_count = 2\nstripe_size = 2\nstripes = [\"pv0\", 10, \"pv1\", 0]".into()]);
    lvs += &lv(
        "two-seg",
        true,
        &[lin("pv1", 10, 3, 2), lin("pv0", 20, 2, 0)],
    );
    lvs += &lv("only1", true, &[lin("pv1", 50, 2, 0)]);
    lvs += &lv("r1", true, &["start_extent = 0\nextent_count = 4\ntype = \"raid1\"\ndevice_count = 2\nraids = [\"r1_rmeta_0\", \"r1_rimage_0\", \"r1_rmeta_1\", \"r1_rimage_1\"]".into()]);
    lvs += &lv("r1_rmeta_0", false, &[lin("pv1", 29, 1, 0)]);
    lvs += &lv("r1_rimage_0", false, &[lin("pv1", 30, 4, 0)]);
    lvs += &lv("r1_rmeta_1", false, &[lin("pv0", 29, 1, 0)]);
    lvs += &lv("r1_rimage_1", false, &[lin("pv0", 30, 4, 0)]);
    lvs += &lv("m1", true, &["start_extent = 0\nextent_count = 3\ntype = \"mirror\"\nmirror_count = 2\nmirrors = [\"m1_mimage_0\", 1, \"m1_mimage_1\", 0]".into()]);
    lvs += &lv("m1_mimage_0", false, &[lin("pv0", 40, 4, 0)]);
    lvs += &lv("m1_mimage_1", false, &[lin("pv1", 40, 3, 0)]);
    lvs += &lv(
        "z",
        true,
        &["start_extent = 0\nextent_count = 2\ntype = \"zero\"".into()],
    );
    lvs += &lv(
        "thin1",
        true,
        &["start_extent = 0\nextent_count = 2\ntype = \"thin\"\nthin_pool = \"pool\"".into()],
    );
    lvs += &lv("cow", true, &[lin("pv0", 60, 2, 0)]);
    lvs += &lv("snapshot0", false, &["start_extent = 0\nextent_count = 4\ntype = \"snapshot\"\norigin = \"lin\"\ncow_store = \"cow\"".into()]);
    lvs += &lv("past-end", true, &[lin("pv0", 760, 20, 0)]);
    lvs += &lv("gap", true, &[lin("pv0", 70, 1, 0), lin("pv0", 71, 1, 2)]);
    lvs += &lv("r5", true, &["start_extent = 0\nextent_count = 2\ntype = \"raid5\"\ndevice_count = 3\nraids = [\"a\", \"b\", \"c\"]".into()]);
    lvs += extra;
    format!(
        "# comment\nvg-s {{\nid = \"VGUUID-1234\"\nseqno = {seqno}\nstatus = [\"READ\"]\nextent_size = 8\n\
         physical_volumes {{\npv0 {{\nid = \"{}\"\ndevice = \"/dev/sda\"\nflags = []\npe_start = 2048\npe_count = 768\n}}\n\
         pv1 {{\nid = \"{}\"\nflags = [{pv1_flags}]\npe_start = 2048\npe_count = 768\n}}\n}}\n\
         logical_volumes {{\n{lvs}}}\n}}\ncontents = \"Text Format Volume Group\"\nversion = 1\n",
        dashed(UUIDS[0]),
        dashed(UUIDS[1])
    )
}

fn dev(b: Vec<u8>) -> Arc<dyn ReadAt> {
    Arc::new(b)
}

/// Byte `off` of extent `pe` onward of PV `pv` (4 KiB extents from 1 MiB).
fn pv_byte(imgs: &[Vec<u8>], pv: usize, pe: u64, off: u64) -> u8 {
    imgs[pv][DATA + (pe * 4096 + off) as usize]
}

fn read_all(r: &dyn ReadAt) -> Vec<u8> {
    let mut v = vec![0u8; r.size() as usize];
    // In odd pieces, so reads straddle chunk and segment boundaries.
    let mut off = 0;
    while off < v.len() {
        let end = (off + 1537).min(v.len());
        r.read_at(off as u64, &mut v[off..end]).unwrap();
        off = end;
    }
    v
}

fn assemble(imgs: &[Vec<u8>], which: &[usize]) -> Vec<VolumeGroup> {
    let pvs = which
        .iter()
        .map(|&i| {
            let d = dev(imgs[i].clone());
            (probe_named(&*d, &format!("pv{i}")).unwrap().unwrap(), d)
        })
        .collect();
    VolumeGroup::assemble(pvs).unwrap()
}

#[test]
fn maps_every_segment_kind() {
    // pv1 holds older metadata (without `lin`); the newest seqno wins. Its ring text wraps.
    let imgs = vec![
        pv_image(0, &text(7, "", ""), 512),
        pv_image(
            1,
            &text(6, "", "").replace("lin {", "old {"),
            (DATA as u64 - MDA) - 100,
        ),
    ];
    let vgs = assemble(&imgs, &[0, 1]);
    assert_eq!(vgs.len(), 1);
    let g = &vgs[0];
    assert_eq!((g.name.as_str(), g.seqno, g.extent_size), ("vg-s", 7, 4096));
    assert!(g.is_complete());
    assert!(g.lv("old").is_none());
    let st = |n: &str| g.lv(n).unwrap().status.clone();
    assert_eq!(g.lv("two-seg").unwrap().dm_name, "vg--s-two--seg");

    let lin = read_all(&*g.open_name("lin").unwrap());
    assert_eq!(lin.len(), 4 * 4096);
    assert!((0..lin.len()).all(|i| lin[i] == pv_byte(&imgs, 0, 0, i as u64)));

    // 1 KiB chunks alternating between pv0 from extent 10 and pv1 from extent 0.
    let s = read_all(&*g.open_name("st").unwrap());
    assert_eq!(s.len(), 8 * 4096);
    for (i, &b) in s.iter().enumerate() {
        let (chunk, within) = (i as u64 / 1024, i as u64 % 1024);
        let (pv, pe) = if chunk % 2 == 0 { (0, 10) } else { (1, 0) };
        assert_eq!(
            b,
            pv_byte(&imgs, pv, pe, (chunk / 2) * 1024 + within),
            "byte {i}"
        );
    }

    // Segments listed out of order are put in extent order.
    let t = read_all(&*g.open_name("two-seg").unwrap());
    assert_eq!(t.len(), 5 * 4096);
    for (i, &b) in t.iter().enumerate() {
        let want = if i < 8192 {
            pv_byte(&imgs, 0, 20, i as u64)
        } else {
            pv_byte(&imgs, 1, 10, i as u64 - 8192)
        };
        assert_eq!(b, want, "byte {i}");
    }

    let r1 = read_all(&*g.open_name("r1").unwrap());
    assert!((0..r1.len()).all(|i| r1[i] == pv_byte(&imgs, 1, 30, i as u64)));
    match &g.lv("r1").unwrap().segments[0].kind {
        SegmentKind::Raid1 { legs } => {
            assert_eq!(legs.len(), 2);
            assert_eq!(legs[0].meta.as_deref(), Some("r1_rmeta_0"));
            assert_eq!(legs[1].image, "r1_rimage_1");
        }
        k => panic!("{k:?}"),
    }
    // Leg 0 of the mirror starts at its extent 1.
    let m1 = read_all(&*g.open_name("m1").unwrap());
    assert!((0..m1.len()).all(|i| m1[i] == pv_byte(&imgs, 0, 41, i as u64)));
    assert!(read_all(&*g.open_name("z").unwrap())
        .iter()
        .all(|&b| b == 0));

    assert!(matches!(st("thin1"), LvStatus::Unsupported(_)));
    assert!(matches!(st("r5"), LvStatus::Unsupported(_)));
    assert!(matches!(st("cow"), LvStatus::Unsupported(m) if m.contains("snapshot")));
    assert!(matches!(st("snapshot0"), LvStatus::Unsupported(_)));
    assert_eq!(st("lin"), LvStatus::Readable);
    assert!(
        matches!(st("past-end"), LvStatus::Damaged(_)),
        "{:?}",
        st("past-end")
    );
    assert!(matches!(st("gap"), LvStatus::Damaged(m) if m.contains("line")));
    assert!(matches!(
        g.open_name("thin1"),
        Err(Error::Unsupported { .. })
    ));
    assert!(matches!(g.open_name("gap"), Err(Error::Metadata { .. })));
    assert!(matches!(g.open_name("nope"), Err(Error::NoSuchLv { .. })));
}

#[test]
fn missing_pvs() {
    let imgs = vec![
        pv_image(0, &text(3, "", ""), 512),
        pv_image(1, &text(3, "", ""), 512),
    ];
    let vgs = assemble(&imgs, &[0]);
    let g = &vgs[0];
    assert!(!g.is_complete());
    assert!(!g.pv("pv1").unwrap().is_present());
    let missing = LvStatus::MissingPv(dashed(UUIDS[1]));
    for l in ["st", "two-seg", "only1", "r1_rimage_0"] {
        assert_eq!(g.lv(l).unwrap().status, missing, "{l}");
        assert!(matches!(g.open_name(l), Err(Error::MissingPv { .. })));
    }
    // Wholly on pv0: readable. raid1 and mirror: the leg on pv0.
    assert_eq!(g.lv("lin").unwrap().status, LvStatus::Readable);
    let r1 = read_all(&*g.open_name("r1").unwrap());
    assert!((0..r1.len()).all(|i| r1[i] == pv_byte(&imgs, 0, 30, i as u64)));
    let m1 = read_all(&*g.open_name("m1").unwrap());
    assert!((0..m1.len()).all(|i| m1[i] == pv_byte(&imgs, 0, 41, i as u64)));

    // Flagged MISSING by LVM2: not used even when given.
    let imgs = vec![
        pv_image(0, &text(4, "\"MISSING\"", ""), 512),
        pv_image(1, &text(4, "\"MISSING\"", ""), 512),
    ];
    let vgs = assemble(&imgs, &[0, 1]);
    assert!(!vgs[0].pv("pv1").unwrap().is_present());
    assert_eq!(
        vgs[0].lv("only1").unwrap().status,
        LvStatus::MissingPv(dashed(UUIDS[1]))
    );
}

#[test]
fn metadata_errors_name_device_offset_and_line() {
    let bad = text(1, "", "").replace("extent_count = 8\n", "extent_count = 8\n}\n");
    let img = pv_image(0, &bad, 512);
    let e = probe_named(&img, "disk0").unwrap_err();
    match &e {
        Error::Syntax {
            device,
            offset,
            line,
            ..
        } => {
            assert_eq!(device, "disk0");
            assert_eq!(*offset, MDA + 512);
            assert!(*line > 10);
        }
        e => panic!("{e}"),
    }
    // A VG without extent_size: an error of the VG, not a panic.
    let img = pv_image(
        0,
        &text(1, "", "").replace("extent_size = 8", "extent_size = \"x\""),
        512,
    );
    let d = dev(img);
    let pv = probe_named(&*d, "d").unwrap().unwrap();
    assert!(matches!(
        VolumeGroup::assemble(vec![(pv, d)]),
        Err(Error::Metadata { .. })
    ));
    // Nested LVs that refer to each other in a loop end at the depth bound.
    let loop_lvs = lv(
        "a",
        true,
        &["start_extent = 0\nextent_count = 1\ntype = \"mirror\"\nmirrors = [\"b\", 0]".into()],
    ) + &lv(
        "b",
        true,
        &["start_extent = 0\nextent_count = 1\ntype = \"mirror\"\nmirrors = [\"a\", 0]".into()],
    );
    let vgs = assemble(&[pv_image(0, &text(1, "", &loop_lvs), 512)], &[0]);
    assert!(
        matches!(&vgs[0].lv("a").unwrap().status, LvStatus::Damaged(m) if m.contains("deeper"))
    );
}

#[test]
fn garbage_never_panics() {
    let base = pv_image(0, &text(1, "", ""), 512);
    let mut x = 12345u32;
    for round in 0..300 {
        let mut b = base.clone();
        // Damage a few bytes in the label, the header or the text.
        for _ in 0..1 + round % 5 {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            let region = [(512, 512), (MDA as usize, 512), (MDA as usize + 512, 6000)]
                [(x >> 8) as usize % 3];
            let at = region.0 + (x >> 12) as usize % region.1;
            b[at] = (x >> 20) as u8;
        }
        let d = dev(b);
        if let Ok(Some(pv)) = probe_named(&*d, "g") {
            if let Ok(vgs) = VolumeGroup::assemble(vec![(pv, d)]) {
                for g in &vgs {
                    for l in &g.lvs {
                        if let Ok(r) = g.open(l) {
                            let mut buf = vec![0u8; (r.size() as usize).min(8192)];
                            let _ = r.read_at(0, &mut buf);
                        }
                    }
                }
            }
        }
    }
    // Truncated devices.
    for len in [0, 100, 512, 700, 1024, 4096, 4600] {
        let _ = probe_named(&base[..len].to_vec(), "short");
    }
}

#[test]
fn areas_on_lvs_and_mirror_legs_on_pvs_as_during_pvmove() {
    // While pvmove runs, the moved LV's segment points at LV pvmove0, a mirror whose
    // legs are PV areas (source first).
    let extra = lv("moving", true, &[lin("pvmove0", 1, 2, 0)])
        + &lv("pvmove0", false, &["start_extent = 0\nextent_count = 3\ntype = \"mirror\"\nmirror_count = 2\nmirrors = [\"pv0\", 80, \"pv1\", 80]".into()]);
    let imgs = vec![
        pv_image(0, &text(2, "", &extra), 512),
        pv_image(1, &text(2, "", &extra), 512),
    ];
    let g = &assemble(&imgs, &[0, 1])[0];
    let m = read_all(&*g.open_name("moving").unwrap());
    assert_eq!(m.len(), 2 * 4096);
    assert!((0..m.len()).all(|i| m[i] == pv_byte(&imgs, 0, 81, i as u64)));
    let g = &assemble(&imgs, &[1])[0];
    let m = read_all(&*g.open_name("moving").unwrap());
    assert!((0..m.len()).all(|i| m[i] == pv_byte(&imgs, 1, 81, i as u64)));
}

#[test]
fn lends_through_linear_parts() {
    let img = pv_image(0, &text(2, "", ""), 512);
    let want = img[DATA..DATA + 100].to_vec();
    let d: Arc<dyn ReadAt> = Arc::new(vmsnapfs_io::SharedBytes(Arc::new(img)));
    let pv = probe_named(&*d, "d").unwrap().unwrap();
    let g = &VolumeGroup::assemble(vec![(pv, d)]).unwrap()[0];
    let r = g.open_name("lin").unwrap();
    let lent = r.lend(0, 100).unwrap().unwrap();
    assert_eq!(lent.bytes(), &want[..]);
    assert!(r.lend(r.size(), 1).unwrap().is_err());
    // Through a mirror leg's LV down to the PV.
    let m1 = g.open_name("m1").unwrap().lend(10, 50).unwrap().unwrap();
    let at = DATA + 41 * 4096 + 10;
    assert_eq!(m1.bytes(), &m1.data[at..at + 50]);
    // Zeros are not a device's bytes: not lent, read instead.
    assert!(g.open_name("z").unwrap().lend(0, 100).is_none());
}

#[test]
fn many_failing_legs_nested_deep_stay_cheap() {
    // Ten levels of LVs, each a mirror of ten legs all naming the next level, the last
    // on the missing pv1: trying every leg would be 10^10 builds.
    let mut extra = String::new();
    for level in 0..10 {
        let legs: Vec<String> = (0..10).map(|_| format!("\"l{}\", 0", level + 1)).collect();
        let seg = format!(
            "start_extent = 0\nextent_count = 1\ntype = \"mirror\"\nmirrors = [{}]",
            legs.join(", ")
        );
        extra += &lv(&format!("l{level}"), true, &[seg]);
    }
    extra += &lv("l10", false, &[lin("pv1", 90, 1, 0)]);
    let imgs = vec![pv_image(0, &text(2, "", &extra), 512)];
    let t = std::time::Instant::now();
    let g = &assemble(&imgs, &[0])[0];
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    assert!(!matches!(g.lv("l0").unwrap().status, LvStatus::Readable));
    assert!(matches!(g.lv("l9").unwrap().status, LvStatus::MissingPv(_)));
}
