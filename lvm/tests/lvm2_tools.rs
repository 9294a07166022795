//! Volume groups made by the real LVM2 tools on loop devices, read back by us, checked
//! against what `lvs`/`pvs`/`vgs` report and against patterns written where those
//! reports say each extent lives.
//!
//! Needs root, /dev/loop-control and lvm2 installed; without them every test prints
//! `SKIP` and passes. Device-mapper is not needed: LVs are made with `-an -Zn
//! --driverloaded n` (raid1 and mirror LVs, which lvcreate refuses to make without
//! device-mapper, are written into the metadata with `vgcfgrestore`). The tests run one
//! at a time (loop devices and LVM's locks are shared) and every VG and loop device is
//! removed in a guard's `Drop`, also when a test fails.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};
use vmsnapfs_io::{FileSource, ReadAt};
use vmsnapfs_lvm::mda_header;
use vmsnapfs_lvm::{probe_named, Error, LvStatus, SegmentKind, VolumeGroup};

static SERIAL: Mutex<()> = Mutex::new(());

struct Lab {
    dir: tempfile::TempDir,
    images: Vec<PathBuf>,
    loops: Vec<String>,
    vgs: Vec<String>,
}

fn why_skip() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (loop devices need it)".into());
    }
    if !std::path::Path::new("/dev/loop-control").exists() {
        return Some("no /dev/loop-control".into());
    }
    if Command::new("pvcreate").arg("--version").output().is_err() {
        return Some("lvm2 is not installed (apt-get install lvm2)".into());
    }
    None
}

impl Lab {
    /// Image files of `sizes_mib` attached to loop devices, or `None` (printed) when this
    /// machine cannot.
    fn new(test: &str, sizes_mib: &[u64]) -> Option<Lab> {
        if let Some(why) = why_skip() {
            skipped(&format!("{test}: {why}"));
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/lvm.conf"), "").unwrap();
        let mut lab = Lab {
            dir,
            images: Vec::new(),
            loops: Vec::new(),
            vgs: Vec::new(),
        };
        for (i, &mib) in sizes_mib.iter().enumerate() {
            let img = lab.dir.path().join(format!("pv{i}.img"));
            let f = std::fs::File::create(&img).unwrap();
            f.set_len(mib << 20).unwrap();
            let out = Command::new("losetup")
                .args(["-f", "--show"])
                .arg(&img)
                .output()
                .unwrap();
            if !out.status.success() {
                skipped(&format!(
                    "{test}: losetup failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
                return None;
            }
            lab.images.push(img);
            lab.loops
                .push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        Some(lab)
    }

    /// Only our loop devices are seen; no udev, no backups in /etc.
    fn config(&self) -> String {
        let accept: String = self
            .loops
            .iter()
            .map(|l| format!("\"a|^{l}$|\","))
            .collect();
        format!(
            "devices {{ filter=[{accept}\"r|.*|\"] global_filter=[{accept}\"r|.*|\"] obtain_device_list_from_udev=0 }} \
             global {{ use_lvmetad=0 }} activation {{ udev_sync=0 udev_rules=0 }} backup {{ backup=0 archive=0 }}"
        )
    }

    fn try_lvm(&self, cmd: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new(cmd)
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env("LVM_SYSTEM_DIR", self.dir.path().join("etc"))
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{cmd} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn lvm(&self, cmd: &str, args: &[&str]) -> String {
        self.try_lvm(cmd, args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn vgcreate(&mut self, args: &[&str]) {
        self.lvm("vgcreate", args);
        self.vgs
            .push(args.last().map(|s| s.to_string()).unwrap_or_default());
    }

    fn lvcreate(&self, args: &[&str]) {
        let mut a = vec!["--driverloaded", "n", "-an", "-Zn"];
        a.extend_from_slice(args);
        self.lvm("lvcreate", &a);
    }

    fn report(&self, cmd: &str, fields: &str, vg: &str, all: bool) -> Vec<HashMap<String, String>> {
        let mut args = vec![
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            fields,
        ];
        if all {
            args.push("-a");
        }
        if !vg.is_empty() {
            args.push(vg);
        }
        let out = self.lvm(cmd, &args);
        let v: Value = serde_json::from_str(&out).unwrap();
        let key = &cmd[..cmd.len() - 1];
        v["report"][0][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .collect()
    }

    fn lvs(&self, vg: &str) -> Vec<HashMap<String, String>> {
        self.report(
            "lvs",
            "lv_name,vg_name,lv_size,segtype,seg_start_pe,seg_pe_ranges,stripes,stripe_size,devices",
            vg,
            true,
        )
    }

    fn dev(&self, i: usize) -> Arc<dyn ReadAt> {
        Arc::new(FileSource::open(&self.images[i]).unwrap())
    }

    fn loop_index(&self, path: &str) -> usize {
        self.loops.iter().position(|l| l == path).unwrap()
    }

    /// Probes the chosen devices and assembles them.
    fn assemble(&self, which: &[usize]) -> Vec<VolumeGroup> {
        let pvs = which
            .iter()
            .map(|&i| {
                let d = self.dev(i);
                let pv = probe_named(&*d, &self.loops[i])
                    .unwrap()
                    .expect("an LVM2 label");
                (pv, d)
            })
            .collect();
        VolumeGroup::assemble(pvs).unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for vg in &self.vgs {
            let _ = self.try_lvm("vgremove", &["-ff", "-y", vg]);
        }
        for l in &self.loops {
            let _ = Command::new("losetup").args(["-d", l]).output();
        }
    }
}

/// What we write into LV `lv`: every 512-byte sector names the LV and its number.
fn pattern(lv: &str, size: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(size as usize);
    for s in 0..size / 512 {
        let line = format!("{lv} sector {s:08}|");
        while v.len() % 512 + line.len() <= 512 {
            v.extend_from_slice(line.as_bytes());
        }
        v.resize(v.len() + (512 - v.len() % 512) % 512, b'.');
    }
    v
}

struct Layout {
    extent: u64,
    pe_start: HashMap<String, u64>,
    rows: Vec<HashMap<String, String>>,
}

fn n(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

fn bare(name: &str) -> &str {
    name.trim_start_matches('[').trim_end_matches(']')
}

impl Layout {
    fn of(lab: &Lab, vg: &str) -> Layout {
        let vgs = lab.report("vgs", "vg_name,vg_extent_size", vg, false);
        let pvs = lab.report("pvs", "pv_name,pe_start,vg_name", "", false);
        Layout {
            extent: n(&vgs[0]["vg_extent_size"]),
            pe_start: pvs
                .iter()
                .filter(|p| p["vg_name"] == vg)
                .map(|p| (p["pv_name"].clone(), n(&p["pe_start"])))
                .collect(),
            rows: lab.lvs(vg),
        }
    }

    fn segs(&self, lv: &str) -> Vec<&HashMap<String, String>> {
        self.rows
            .iter()
            .filter(|r| bare(&r["lv_name"]) == lv)
            .collect()
    }

    /// Writes `data` (the whole LV) where `lvs` says its extents are, through sub-LVs
    /// for mirror and raid1 legs (each leg gets the same bytes unless `leg_data` says
    /// otherwise for a leg LV).
    fn write(&self, lab: &Lab, lv: &str, data: &[u8], leg_data: &HashMap<&str, Vec<u8>>) {
        for r in self.segs(lv) {
            let start = n(&r["seg_start_pe"]) * self.extent;
            match r["segtype"].as_str() {
                "linear" | "striped" => {
                    let ranges: Vec<(usize, u64, u64)> = r["seg_pe_ranges"]
                        .split_whitespace()
                        .map(|rg| {
                            let (dev, pes) = rg.rsplit_once(':').unwrap();
                            let (a, b) = pes.split_once('-').unwrap();
                            let at = self.pe_start[dev] + n(a) * self.extent;
                            (lab.loop_index(dev), at, (n(b) - n(a) + 1) * self.extent)
                        })
                        .collect();
                    let stripes = ranges.len() as u64;
                    let total: u64 = ranges.iter().map(|r| r.2).sum();
                    let chunk = if stripes == 1 {
                        total
                    } else {
                        n(&r["stripe_size"])
                    };
                    let mut off = 0u64;
                    while off < total {
                        let c = off / chunk;
                        let (dev, at, _) = ranges[(c % stripes) as usize];
                        let f = OpenOptions::new()
                            .write(true)
                            .open(&lab.images[dev])
                            .unwrap();
                        let pos = at + (c / stripes) * chunk;
                        let from = (start + off) as usize;
                        f.write_all_at(&data[from..from + chunk as usize], pos)
                            .unwrap();
                        off += chunk;
                    }
                }
                "mirror" | "raid1" => {
                    for leg in r["devices"].split(',') {
                        let (sub, le) = leg.trim_end_matches(')').split_once('(').unwrap();
                        let sub_size = self
                            .segs(sub)
                            .iter()
                            .map(|s| n(&s["lv_size"]))
                            .next()
                            .unwrap();
                        let mut buf = vec![0u8; sub_size as usize];
                        let src = leg_data.get(sub).map_or(data, |v| v.as_slice());
                        let len = n(&r["lv_size"]).min(sub_size) as usize;
                        let at = (n(le) * self.extent) as usize;
                        buf[at..at + len - start as usize]
                            .copy_from_slice(&src[start as usize..len]);
                        self.write(lab, sub, &buf, leg_data);
                    }
                }
                other => panic!("cannot write a {other} segment"),
            }
        }
    }
}

fn sha(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

/// Reads the whole LV in 1 MiB + 3 byte pieces (so pieces straddle every boundary) and
/// at each `boundaries` offset across it, comparing with `want`.
fn check_bytes(r: &dyn ReadAt, want: &[u8], boundaries: &[u64]) {
    assert_eq!(r.size(), want.len() as u64);
    let mut got = vec![0u8; want.len()];
    let piece = (1 << 20) + 3;
    let mut off = 0;
    while off < got.len() {
        let end = (off + piece).min(got.len());
        r.read_at(off as u64, &mut got[off..end]).unwrap();
        off = end;
    }
    assert!(sha(&got) == sha(want), "LV bytes differ from the pattern");
    for &b in boundaries {
        let from = b.saturating_sub(1000).min(want.len() as u64 - 1);
        let len = 3000.min(want.len() as u64 - from) as usize;
        let mut buf = vec![0u8; len];
        r.read_at(from, &mut buf).unwrap();
        assert!(
            buf == want[from as usize..from as usize + len],
            "read across {b}"
        );
    }
    let mut one = [0u8; 1];
    assert!(r.read_at(want.len() as u64, &mut one).is_err());
    // Placed on the PV images in the same pieces, and across each boundary.
    let mut placed = Vec::with_capacity(want.len());
    let mut p = vmsnapfs_io::Places::new();
    for at in (0..want.len()).step_by(piece) {
        p.clear();
        let len = piece.min(want.len() - at) as u64;
        assert!(r.place(at as u64, len, &mut p), "place {len} at {at}");
        assert_eq!(p.len(), len);
        placed.extend(p.gather().unwrap());
    }
    assert!(
        sha(&placed) == sha(want),
        "placed LV bytes differ from the pattern"
    );
    for &b in boundaries {
        let from = b.saturating_sub(1000).min(want.len() as u64 - 1);
        let len = 3000.min(want.len() as u64 - from);
        p.clear();
        assert!(r.place(from, len, &mut p));
        assert!(
            p.gather().unwrap() == want[from as usize..(from + len) as usize],
            "placed across {b}"
        );
    }
    assert!(!r.place(want.len() as u64 - 1, 2, &mut p), "past the end");
}

/// Our VG against `vgs`, `pvs` and `lvs`: names, uuid, seqno, pe_start, LV sizes and
/// every segment's type, start and ranges.
fn check_structure(lab: &Lab, vg: &VolumeGroup, layout: &Layout) {
    let vgs = lab.report("vgs", "vg_name,vg_uuid,vg_seqno", &vg.name, false);
    assert_eq!(vg.uuid, vgs[0]["vg_uuid"]);
    assert_eq!(vg.seqno, n(&vgs[0]["vg_seqno"]));
    assert_eq!(vg.extent_size, layout.extent);
    let pvs = lab.report("pvs", "pv_name,pv_uuid,pe_start,vg_name", "", false);
    let mut dev_of = HashMap::new();
    for slot in &vg.pvs {
        let row = pvs
            .iter()
            .find(|p| p["pv_uuid"] == slot.uuid)
            .expect("pvs lists our PV");
        assert_eq!(slot.pe_start, n(&row["pe_start"]));
        dev_of.insert(slot.name.clone(), row["pv_name"].clone());
    }
    let names: std::collections::BTreeSet<&str> =
        layout.rows.iter().map(|r| bare(&r["lv_name"])).collect();
    let ours: std::collections::BTreeSet<&str> = vg.lvs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ours);
    for lv in &vg.lvs {
        let rows = layout.segs(&lv.name);
        assert_eq!(lv.size, n(&rows[0]["lv_size"]), "{}", lv.name);
        assert_eq!(lv.segments.len(), rows.len(), "{}", lv.name);
        for (seg, r) in lv.segments.iter().zip(rows) {
            assert_eq!(seg.start_extent, n(&r["seg_start_pe"]), "{}", lv.name);
            let range =
                |pv: &str, pe: u64, count: u64| format!("{}:{}-{}", dev_of[pv], pe, pe + count - 1);
            match &seg.kind {
                SegmentKind::Linear { pv, pe } => {
                    assert_eq!(r["segtype"], "linear");
                    assert_eq!(r["seg_pe_ranges"], range(pv, *pe, seg.extent_count));
                }
                SegmentKind::Striped {
                    stripe_size,
                    stripes,
                } => {
                    assert_eq!(r["segtype"], "striped");
                    assert_eq!(n(&r["stripes"]), stripes.len() as u64);
                    assert_eq!(n(&r["stripe_size"]), stripe_size * 512);
                    let per = seg.extent_count / stripes.len() as u64;
                    let want: Vec<String> =
                        stripes.iter().map(|(pv, pe)| range(pv, *pe, per)).collect();
                    assert_eq!(r["seg_pe_ranges"], want.join(" "));
                }
                SegmentKind::Mirror { legs, .. } => {
                    assert_eq!(r["segtype"], "mirror");
                    let want: Vec<String> =
                        legs.iter().map(|(l, le)| format!("{l}({le})")).collect();
                    assert_eq!(r["devices"], want.join(","));
                }
                SegmentKind::Raid1 { legs } => {
                    assert_eq!(r["segtype"], "raid1");
                    let want: Vec<String> =
                        legs.iter().map(|l| format!("{}(0)", l.image)).collect();
                    assert_eq!(r["devices"], want.join(","));
                }
                SegmentKind::Unsupported { type_name, .. } => assert_eq!(&r["segtype"], type_name),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn one_pv_linear() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut lab) = Lab::new("one_pv_linear", &[64]) else {
        return;
    };
    let vg = "vmsnap-lvm1";
    lab.lvm("pvcreate", &[&lab.loops[0]]);
    lab.vgcreate(&[vg, &lab.loops[0].clone()]);
    lab.lvcreate(&["-L", "20M", "-n", "root", vg]);
    lab.lvcreate(&["-L", "12M", "-n", "data-x", vg]);
    // root grows past data-x: two segments, apart on the PV.
    lab.lvm(
        "lvextend",
        &["--driverloaded", "n", "-L", "+8M", &format!("{vg}/root")],
    );
    let layout = Layout::of(&lab, vg);
    assert_eq!(layout.segs("root").len(), 2, "{:?}", layout.segs("root"));
    let patterns: Vec<(&str, Vec<u8>)> = ["root", "data-x"]
        .iter()
        .map(|&l| (l, pattern(l, n(&layout.segs(l)[0]["lv_size"]))))
        .collect();
    for (l, p) in &patterns {
        layout.write(&lab, l, p, &HashMap::new());
    }
    let vgs = lab.assemble(&[0]);
    assert_eq!(vgs.len(), 1);
    let g = &vgs[0];
    assert_eq!(g.name, vg);
    assert!(g.is_complete());
    check_structure(&lab, g, &layout);
    assert_eq!(g.lv("data-x").unwrap().dm_name, "vmsnap--lvm1-data--x");
    for (l, p) in &patterns {
        let lv = g.lv(l).unwrap();
        assert!(lv.visible);
        assert_eq!(lv.status, LvStatus::Readable);
        let bounds: Vec<u64> = lv
            .segments
            .iter()
            .map(|s| s.start_extent * g.extent_size)
            .collect();
        check_bytes(&*g.open(lv).unwrap(), p, &bounds);
    }
}

#[test]
fn two_pvs_striped_spanning_and_a_missing_pv() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut lab) = Lab::new("two_pvs_striped_spanning_and_a_missing_pv", &[48, 48]) else {
        return;
    };
    let vg = "vmsnaplvm2";
    let (a, b) = (lab.loops[0].clone(), lab.loops[1].clone());
    lab.lvm("pvcreate", &[&a, &b]);
    lab.vgcreate(&[vg, &a, &b]);
    lab.lvcreate(&["-L", "8M", "-n", "solo", vg, &a]);
    lab.lvcreate(&["-i", "2", "-I", "64k", "-L", "16M", "-n", "stripe", vg]);
    lab.lvcreate(&["-l", "100%FREE", "-n", "span", vg]);
    let layout = Layout::of(&lab, vg);
    assert!(
        layout.segs("span").len() >= 2,
        "span should cross both PVs: {:?}",
        layout.segs("span")
    );
    let mut patterns = HashMap::new();
    for l in ["solo", "stripe", "span"] {
        let p = pattern(l, n(&layout.segs(l)[0]["lv_size"]));
        layout.write(&lab, l, &p, &HashMap::new());
        patterns.insert(l, p);
    }
    let vgs = lab.assemble(&[0, 1]);
    let g = &vgs[0];
    check_structure(&lab, g, &layout);
    let span_bounds: Vec<u64> = g
        .lv("span")
        .unwrap()
        .segments
        .iter()
        .map(|s| s.start_extent * g.extent_size)
        .collect();
    check_bytes(
        &*g.open_name("span").unwrap(),
        &patterns["span"],
        &span_bounds,
    );
    let chunk_bounds: Vec<u64> = (1..40).map(|i| i * 65536).collect();
    check_bytes(
        &*g.open_name("stripe").unwrap(),
        &patterns["stripe"],
        &chunk_bounds,
    );
    check_bytes(&*g.open_name("solo").unwrap(), &patterns["solo"], &[]);

    // Readers are shared by threads.
    let r = g.open_name("stripe").unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let r = r.clone();
            let want = &patterns["stripe"];
            s.spawn(move || {
                for i in 0..64u64 {
                    let at = (i * 262_147 + t * 7919) % (want.len() as u64 - 5000);
                    let mut buf = vec![0u8; 5000];
                    r.read_at(at, &mut buf).unwrap();
                    assert!(buf == want[at as usize..at as usize + 5000]);
                }
            });
        }
    });

    // Only the first PV: the LV wholly on it reads, the others need the missing one.
    for (given, missing) in [(0usize, 1usize), (1, 0)] {
        let vgs = lab.assemble(&[given]);
        let g = &vgs[0];
        assert!(!g.is_complete());
        let gone = g.pvs.iter().find(|p| !p.is_present()).unwrap();
        let pvs = lab.report("pvs", "pv_name,pv_uuid", "", false);
        let row = pvs.iter().find(|p| p["pv_uuid"] == gone.uuid).unwrap();
        assert_eq!(row["pv_name"], lab.loops[missing]);
        for l in ["stripe", "span"] {
            assert_eq!(
                g.lv(l).unwrap().status,
                LvStatus::MissingPv(gone.uuid.clone()),
                "{l}"
            );
            assert!(matches!(g.open_name(l), Err(Error::MissingPv { .. })));
        }
        if given == 0 {
            check_bytes(&*g.open_name("solo").unwrap(), &patterns["solo"], &[]);
        } else {
            assert!(matches!(
                g.lv("solo").unwrap().status,
                LvStatus::MissingPv(_)
            ));
        }
    }
}

/// The committed raw_locn of the first metadata area of device `i`, and the area size.
fn ring_position(lab: &Lab, i: usize) -> (mda_header::RawLocn, u64) {
    let d = lab.dev(i);
    let pv = probe_named(&*d, "d").unwrap().unwrap();
    let area = pv.metadata_areas[0];
    let mut hb = vec![0u8; 512];
    d.read_at(area.offset, &mut hb).unwrap();
    let h = mda_header::parse("d", area.offset, area.size, &hb).unwrap();
    (*h.committed().unwrap(), h.size)
}

#[test]
fn metadata_ring_buffer_wraps() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut lab) = Lab::new("metadata_ring_buffer_wraps", &[64]) else {
        return;
    };
    let vg = "vmsnaplvm3";
    let a = lab.loops[0].clone();
    lab.lvm(
        "pvcreate",
        &["--metadatasize", "64k", "--dataalignment", "64k", &a],
    );
    lab.vgcreate(&["-s", "1m", vg, &a]);
    for i in 0..6 {
        lab.lvcreate(&["-L", "2M", "-n", &format!("lv{i}"), vg]);
    }
    let mut wraps = 0;
    for i in 0..3000 {
        let tag = format!("t{i}");
        lab.lvm("vgchange", &["--driverloaded", "n", "--addtag", &tag, vg]);
        if i % 3 == 2 {
            for j in i - 2..=i {
                lab.lvm(
                    "vgchange",
                    &["--driverloaded", "n", "--deltag", &format!("t{j}"), vg],
                );
            }
        }
        let (r, size) = ring_position(&lab, 0);
        if r.offset + r.size > size {
            wraps += 1;
            // Read (and check) the wrapped text as it stands.
            let vgs = lab.assemble(&[0]);
            assert_eq!(
                vgs[0].seqno,
                n(&lab.report("vgs", "vg_seqno", vg, false)[0]["vg_seqno"])
            );
            if wraps == 3 {
                break;
            }
        }
    }
    assert!(
        wraps >= 3,
        "the metadata text never wrapped around its ring buffer"
    );
    let layout = Layout::of(&lab, vg);
    let p = pattern("lv3", 2 << 20);
    layout.write(&lab, "lv3", &p, &HashMap::new());
    let vgs = lab.assemble(&[0]);
    check_structure(&lab, &vgs[0], &layout);
    check_bytes(&*vgs[0].open_name("lv3").unwrap(), &p, &[]);
}

/// A VG section written with vgcfgbackup, LV sections added, and restored with
/// vgcfgrestore (which checks it and writes it in its own on-disk format).
fn restore_with(lab: &Lab, vg: &str, lvs: &str, force: bool) -> Result<(), String> {
    let file = lab.dir.path().join(format!("{vg}.vg"));
    let f = file.to_str().unwrap();
    lab.lvm("vgcfgbackup", &["-f", f, vg]);
    let text = std::fs::read_to_string(&file).unwrap();
    let at = text.find("physical_volumes {").unwrap();
    let text = format!(
        "{}logical_volumes {{\n{lvs}\n}}\n{}",
        &text[..at],
        &text[at..]
    );
    std::fs::write(&file, text).unwrap();
    let mut args = vec!["--driverloaded", "n", "-f", f];
    if force {
        args.push("--force");
    }
    args.push(vg);
    lab.try_lvm("vgcfgrestore", &args).map(|_| ())
}

fn lv_text(name: &str, visible: bool, segs: &[String]) -> String {
    let alnum: String = Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| char::from(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789"[(*b as usize) % 46]))
        .collect();
    let u = &alnum[..32];
    let id = format!(
        "{}-{}-{}-{}-{}-{}-{}",
        &u[..6],
        &u[6..10],
        &u[10..14],
        &u[14..18],
        &u[18..22],
        &u[22..26],
        &u[26..32]
    );
    let status = if visible {
        r#""READ", "WRITE", "VISIBLE""#
    } else {
        r#""READ", "WRITE""#
    };
    let mut s = format!(
        "{name} {{\nid = \"{id}\"\nstatus = [{status}]\nflags = []\nsegment_count = {}\n",
        segs.len()
    );
    for (i, g) in segs.iter().enumerate() {
        s += &format!("segment{} {{\n{g}\n}}\n", i + 1);
    }
    s + "}\n"
}

fn linear(pv: &str, pe: u64, count: u64) -> String {
    format!("start_extent = 0\nextent_count = {count}\ntype = \"striped\"\nstripe_count = 1\nstripes = [\n\"{pv}\", {pe}\n]")
}

#[test]
fn raid1_and_mirror_legs() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut lab) = Lab::new("raid1_and_mirror_legs", &[32, 32]) else {
        return;
    };
    let vg = "vmsnaplvm4";
    let (a, b) = (lab.loops[0].clone(), lab.loops[1].clone());
    lab.lvm("pvcreate", &[&a, &b]);
    lab.vgcreate(&["-s", "1m", vg, &a, &b]);
    let mut lvs = String::new();
    lvs += &lv_text("r1", true, &["start_extent = 0\nextent_count = 4\ntype = \"raid1\"\ndevice_count = 2\nregion_size = 1024\nraids = [\n\"r1_rmeta_0\", \"r1_rimage_0\",\n\"r1_rmeta_1\", \"r1_rimage_1\"\n]".into()]);
    lvs += &lv_text("r1_rmeta_0", false, &[linear("pv0", 0, 1)]);
    lvs += &lv_text("r1_rimage_0", false, &[linear("pv0", 1, 4)]);
    lvs += &lv_text("r1_rmeta_1", false, &[linear("pv1", 0, 1)]);
    lvs += &lv_text("r1_rimage_1", false, &[linear("pv1", 1, 4)]);
    lvs += &lv_text("m1", true, &["start_extent = 0\nextent_count = 3\ntype = \"mirror\"\nmirror_count = 2\nregion_size = 1024\nmirrors = [\n\"m1_mimage_0\", 0,\n\"m1_mimage_1\", 0\n]".into()]);
    lvs += &lv_text("m1_mimage_0", false, &[linear("pv0", 5, 3)]);
    lvs += &lv_text("m1_mimage_1", false, &[linear("pv1", 5, 3)]);
    restore_with(&lab, vg, &lvs, false).unwrap();
    let layout = Layout::of(&lab, vg);
    // Different bytes in each leg show which leg is read.
    let mut legs = HashMap::new();
    for (l, size) in [
        ("r1_rimage_0", 4u64),
        ("r1_rimage_1", 4),
        ("m1_mimage_0", 3),
        ("m1_mimage_1", 3),
    ] {
        legs.insert(l, pattern(l, size << 20));
    }
    layout.write(&lab, "r1", &pattern("r1", 4 << 20), &legs);
    layout.write(&lab, "m1", &pattern("m1", 3 << 20), &legs);
    let vgs = lab.assemble(&[0, 1]);
    let g = &vgs[0];
    check_structure(&lab, g, &layout);
    assert!(!g.lv("r1_rimage_0").unwrap().visible);
    check_bytes(&*g.open_name("r1").unwrap(), &legs["r1_rimage_0"], &[]);
    check_bytes(&*g.open_name("m1").unwrap(), &legs["m1_mimage_0"], &[]);
    // Leg 0's PV missing: leg 1 is read.
    let vgs = lab.assemble(&[1]);
    let g = &vgs[0];
    check_bytes(&*g.open_name("r1").unwrap(), &legs["r1_rimage_1"], &[]);
    check_bytes(&*g.open_name("m1").unwrap(), &legs["m1_mimage_1"], &[]);
    assert!(matches!(
        g.lv("r1_rimage_0").unwrap().status,
        LvStatus::MissingPv(_)
    ));
}

#[test]
fn thin_pool_and_snapshot_are_unsupported() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut lab) = Lab::new("thin_pool_and_snapshot_are_unsupported", &[32]) else {
        return;
    };
    let vg = "vmsnaplvm5";
    let a = lab.loops[0].clone();
    lab.lvm("pvcreate", &[&a]);
    lab.vgcreate(&["-s", "1m", vg, &a]);
    lab.lvcreate(&["-L", "4M", "-n", "origin", vg]);
    let mut lvs = String::new();
    lvs += &lv_text("origin", true, &[linear("pv0", 0, 4)]);
    lvs += &lv_text("snap", true, &[linear("pv0", 4, 2)]);
    lvs += &lv_text("snapshot0", false, &["start_extent = 0\nextent_count = 4\ntype = \"snapshot\"\nchunk_size = 8\norigin = \"origin\"\ncow_store = \"snap\"".into()]);
    lvs += &lv_text("pool", true, &["start_extent = 0\nextent_count = 8\ntype = \"thin-pool\"\nmetadata = \"pool_tmeta\"\npool = \"pool_tdata\"\ntransaction_id = 1\nchunk_size = 128\ndiscards = \"passdown\"\nzero_new_blocks = 1".into()]);
    lvs += &lv_text("pool_tmeta", false, &[linear("pv0", 6, 2)]);
    lvs += &lv_text("pool_tdata", false, &[linear("pv0", 8, 8)]);
    lvs += &lv_text("thin1", true, &["start_extent = 0\nextent_count = 16\ntype = \"thin\"\nthin_pool = \"pool\"\ntransaction_id = 0\ndevice_id = 1".into()]);
    // The VG must already hold 'origin' for the restore to keep its extents; replace it.
    lab.lvm(
        "lvremove",
        &["--driverloaded", "n", "-f", &format!("{vg}/origin")],
    );
    if let Err(e) = restore_with(&lab, vg, &lvs, true) {
        skipped(&format!(
            "thin_pool_and_snapshot_are_unsupported: vgcfgrestore refused: {e}"
        ));
        return;
    }
    let layout = Layout::of(&lab, vg);
    let vgs = lab.assemble(&[0]);
    let g = &vgs[0];
    let types: HashMap<&str, &str> = layout
        .rows
        .iter()
        .map(|r| (bare(&r["lv_name"]), r["segtype"].as_str()))
        .collect();
    assert_eq!(types["pool"], "thin-pool");
    assert_eq!(types["thin1"], "thin");
    for l in ["pool", "thin1", "snap"] {
        let lv = g.lv(l).unwrap();
        assert!(
            matches!(lv.status, LvStatus::Unsupported(_)),
            "{l}: {:?}",
            lv.status
        );
        assert!(matches!(g.open(lv), Err(Error::Unsupported { .. })));
    }
    assert_eq!(g.lv("origin").unwrap().status, LvStatus::Readable);
    let p = pattern("origin", 4 << 20);
    layout.write(&lab, "origin", &p, &HashMap::new());
    check_bytes(&*g.open_name("origin").unwrap(), &p, &[]);
}

/// One PV image made by the tools, damaged in memory in each way in turn: an error that
/// says what and where, never a panic.
#[test]
fn damaged_pv_is_a_clear_error() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut lab) = Lab::new("damaged_pv_is_a_clear_error", &[16]) else {
        return;
    };
    let vg = "vmsnaplvm6";
    let a = lab.loops[0].clone();
    lab.lvm("pvcreate", &[&a]);
    lab.vgcreate(&[vg, &a]);
    lab.lvcreate(&["-L", "4M", "-n", "lv", vg]);
    let mut img = std::fs::read(&lab.images[0]).unwrap();
    img.truncate(1 << 20);
    let pv = probe_named(&img, "img").unwrap().unwrap();
    let area = pv.metadata_areas[0];
    let (r, _) = ring_position(&lab, 0);
    let hdr = area.offset as usize;
    let text = hdr + r.offset as usize;
    let fix_mda_crc = move |b: &mut Vec<u8>| {
        let crc = vmsnapfs_lvm::calc_crc(0xf597a6cf, &b[hdr + 4..hdr + 512]);
        b[hdr..hdr + 4].copy_from_slice(&crc.to_le_bytes());
    };
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Damage)> = vec![
        ("label byte", Box::new(|b: &mut Vec<u8>| b[512 + 40] ^= 1)),
        (
            "garbage label",
            Box::new(|b: &mut Vec<u8>| {
                for (i, x) in b[512 + 8..1024].iter_mut().enumerate() {
                    *x = (i * 7 + 3) as u8;
                }
            }),
        ),
        (
            "mda header byte",
            Box::new(move |b: &mut Vec<u8>| b[hdr + 100] ^= 1),
        ),
        (
            "metadata text byte",
            Box::new(move |b: &mut Vec<u8>| b[text + 10] ^= 1),
        ),
        (
            "raw_locn offset outside the area",
            Box::new(move |b: &mut Vec<u8>| {
                b[hdr + 40..hdr + 48].copy_from_slice(&(area.size + 4096).to_le_bytes());
                fix_mda_crc(b);
            }),
        ),
        (
            "overlong metadata text",
            Box::new(move |b: &mut Vec<u8>| {
                b[hdr + 48..hdr + 56].copy_from_slice(&area.size.to_le_bytes());
                fix_mda_crc(b);
            }),
        ),
        (
            "truncated metadata text",
            Box::new(move |b: &mut Vec<u8>| {
                let half = r.size / 2;
                let crc = vmsnapfs_lvm::calc_crc(0xf597a6cf, &b[text..text + half as usize]);
                b[hdr + 48..hdr + 56].copy_from_slice(&half.to_le_bytes());
                b[hdr + 56..hdr + 60].copy_from_slice(&crc.to_le_bytes());
                fix_mda_crc(b);
            }),
        ),
    ];
    for (what, damage) in cases {
        let mut b = img.clone();
        damage(&mut b);
        let e = probe_named(&b, "img").expect_err(what);
        let msg = e.to_string();
        println!("{what}: {msg}");
        assert!(msg.starts_with("img: "), "{what}: {msg}");
        match what {
            "label byte" | "mda header byte" | "metadata text byte" => {
                assert!(matches!(e, Error::Checksum { .. }), "{what}: {msg}")
            }
            "truncated metadata text" => assert!(
                matches!(e, Error::Syntax { line, .. } if line > 1),
                "{what}: {msg}"
            ),
            _ => assert!(matches!(e, Error::Corrupt { .. }), "{what}: {msg}"),
        }
    }
    // The image with its first sector all LABELONE copies is not a panic either.
    let mut b = img.clone();
    for s in 0..4 {
        b[s * 512..s * 512 + 8].copy_from_slice(b"LABELONE");
    }
    assert!(probe_named(&b, "img").is_err());
    // And no label at all is not an error.
    assert!(probe_named(&vec![0u8; 4096], "zeros").unwrap().is_none());
}

/// A PV with two metadata areas (start and end of the device) and its label in sector 2,
/// and a PV with none: the VG is found through the first, and one damaged area of two is
/// survived.
#[test]
fn two_metadata_copies_none_and_another_label_sector() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut lab) = Lab::new(
        "two_metadata_copies_none_and_another_label_sector",
        &[32, 32],
    ) else {
        return;
    };
    let vg = "vmsnaplvm7";
    let (a, b) = (lab.loops[0].clone(), lab.loops[1].clone());
    lab.lvm(
        "pvcreate",
        &["--pvmetadatacopies", "2", "--labelsector", "2", &a],
    );
    lab.lvm("pvcreate", &["--pvmetadatacopies", "0", &b]);
    lab.vgcreate(&[vg, &a, &b]);
    lab.lvcreate(&["-l", "100%FREE", "-n", "all", vg]);
    let layout = Layout::of(&lab, vg);
    let p = pattern("all", n(&layout.segs("all")[0]["lv_size"]));
    layout.write(&lab, "all", &p, &HashMap::new());

    let d0 = lab.dev(0);
    let pv0 = probe_named(&*d0, &a).unwrap().unwrap();
    assert_eq!(pv0.label_sector, 2);
    assert_eq!(pv0.metadata_areas.len(), 2);
    assert!(
        pv0.metadata_areas[1].offset > 16 << 20,
        "second copy at the end"
    );
    let pv1 = probe_named(&*lab.dev(1), &b).unwrap().unwrap();
    assert!(pv1.metadata_areas.is_empty());
    assert!(pv1.metadata.is_none());

    let vgs = lab.assemble(&[0, 1]);
    assert!(vgs[0].is_complete());
    check_structure(&lab, &vgs[0], &layout);
    let all = vgs[0].lv("all").unwrap();
    let bounds: Vec<u64> = all
        .segments
        .iter()
        .map(|s| s.start_extent * vgs[0].extent_size)
        .collect();
    assert!(bounds.len() >= 2);
    check_bytes(&*vgs[0].open(all).unwrap(), &p, &bounds);

    // The PV without metadata alone: no VG can be known from it.
    assert!(lab.assemble(&[1]).is_empty());

    // The first area's header damaged: the second copy serves, the damage is recorded.
    let mut img = std::fs::read(&lab.images[0]).unwrap();
    let first = pv0.metadata_areas[0].offset as usize;
    img[first + 200] ^= 0xff;
    let pv = probe_named(&img, "copy").unwrap().unwrap();
    assert_eq!(pv.metadata.as_ref().unwrap().seqno, vgs[0].seqno);
    assert_eq!(pv.metadata_errors.len(), 1, "{:?}", pv.metadata_errors);
    assert!(pv.metadata_errors[0].contains("checksum"));
}

/// A cached LV (dm-cache): the LV and its origin sub-LV are both unsupported, the pool's
/// hidden data LV is only a linear sub-LV.
#[test]
fn cache_is_unsupported() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut lab) = Lab::new("cache_is_unsupported", &[32]) else {
        return;
    };
    let vg = "vmsnaplvm8";
    let a = lab.loops[0].clone();
    lab.lvm("pvcreate", &[&a]);
    lab.vgcreate(&["-s", "1m", vg, &a]);
    let mut lvs = String::new();
    lvs += &lv_text("data", true, &["start_extent = 0\nextent_count = 8\ntype = \"cache\"\ncache_pool = \"cpool\"\norigin = \"data_corig\"".into()]);
    lvs += &lv_text("data_corig", false, &[linear("pv0", 0, 8)]);
    lvs += &lv_text("cpool", false, &["start_extent = 0\nextent_count = 4\ntype = \"cache-pool\"\ndata = \"cpool_cdata\"\nmetadata = \"cpool_cmeta\"\nchunk_size = 128\ncache_mode = \"writethrough\"\npolicy = \"smq\"\nmetadata_format = 2".into()]);
    lvs += &lv_text("cpool_cdata", false, &[linear("pv0", 8, 4)]);
    lvs += &lv_text("cpool_cmeta", false, &[linear("pv0", 12, 2)]);
    lvs += &lv_text("plain", true, &[linear("pv0", 14, 2)]);
    if let Err(e) = restore_with(&lab, vg, &lvs, true) {
        println!("SKIP cache_is_unsupported: vgcfgrestore refused: {e}");
        return;
    }
    let layout = Layout::of(&lab, vg);
    let types: HashMap<&str, &str> = layout
        .rows
        .iter()
        .map(|r| (bare(&r["lv_name"]), r["segtype"].as_str()))
        .collect();
    assert_eq!(types["data"], "cache");
    let vgs = lab.assemble(&[0]);
    let g = &vgs[0];
    for l in ["data", "data_corig", "cpool"] {
        let lv = g.lv(l).unwrap();
        assert!(
            matches!(lv.status, LvStatus::Unsupported(_)),
            "{l}: {:?}",
            lv.status
        );
    }
    assert_eq!(g.lv("plain").unwrap().status, LvStatus::Readable);
}

/// A skipped test says so where cargo's capture does not hide it, and in the suite's
/// skip log (scripts/test.sh lists it after the run).
fn skipped(why: &str) {
    use std::io::Write;
    let line = format!("SKIPPED: lvm2_tools {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(log) = std::env::var_os("VMSNAPFS_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}
