//! A Linux VM made by the real tools (fixtures/build.sh --linux: sgdisk, LVM2 on loop
//! devices, mke2fs -d, mkfs.xfs -p, mkswap, a debugfs journal transaction in a qemu-io
//! snapshot delta) mounted through FUSE, every volume compared with readers nobody here
//! wrote: qemu-img for the disks, LVM2's own report for where each LV lies, e2fsck and
//! debugfs (rdump, ea_get) and Sleuth Kit fls for ext4, the kernel's XFS (a read-only
//! loop mount) and xfs_repair -n for XFS.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

struct Linux {
    dir: PathBuf,
    raw0: PathBuf,
    raw1: PathBuf,
    layout: serde_json::Value,
}

/// The VM folder, built once per test binary; None (with a SKIPPED line) where this
/// machine cannot attach the loop devices LVM2's tools need.
fn linux() -> Option<&'static Linux> {
    static L: OnceLock<Option<Linux>> = OnceLock::new();
    let l = L.get_or_init(|| {
        let probe = Command::new("losetup").arg("-f").output();
        if !probe.is_ok_and(|o| o.status.success()) {
            return None;
        }
        let out = scratch("linux");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/build.sh");
        run(Command::new("bash").arg(script).arg(&out).arg("--linux"));
        let dir = out.join("linuxvm");
        let raw0 = qemu_raw(&dir.join("linuxvm-disk0-000001.vmdk"));
        let raw1 = qemu_raw(&dir.join("linuxvm-disk1.vmdk"));
        let layout =
            serde_json::from_slice(&fs::read(dir.join("lvm-layout.json")).unwrap()).unwrap();
        Some(Linux {
            dir,
            raw0,
            raw1,
            layout,
        })
    });
    if l.is_none() {
        skipped("no free loop device (losetup -f failed): LVM2's tools cannot build linuxvm");
    }
    l.as_ref()
}

fn mounted(l: &Linux, opts: &[&str]) -> (Mount, PathBuf) {
    let m = Mount::new(l.dir.parent().unwrap(), opts);
    let vm = m.mp.join("linuxvm");
    (m, vm)
}

/// One segment of an LV as LVM2 reports it: where it starts in the LV, how long it is,
/// and which disk (0 or 1) holds it from which byte.
struct Segment {
    lv_start: u64,
    len: u64,
    disk: usize,
    disk_offset: u64,
}

fn segments(l: &Linux, lv: &str) -> Vec<Segment> {
    let ext = l.layout["extent_size"].as_u64().unwrap();
    let pe_start = |pv: &str| {
        l.layout["pvs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pv"] == pv)
            .unwrap()["pe_start"]
            .as_u64()
            .unwrap()
    };
    let mut out = Vec::new();
    for seg in l.layout["lvs"].as_array().unwrap() {
        if seg["lv"] != lv {
            continue;
        }
        let pv = seg["pv"].as_str().unwrap();
        let (disk, base) = match pv {
            "disk0p2" => (0, partition(&l.raw0, 2).0),
            "disk1" => (1, 0),
            other => panic!("unknown PV {other}"),
        };
        let first: u64 = seg["pe_range"]
            .as_str()
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        out.push(Segment {
            lv_start: seg["seg_start_pe"].as_u64().unwrap() * ext,
            len: seg["seg_size_pe"].as_u64().unwrap() * ext,
            disk,
            disk_offset: base + pe_start(pv) + first * ext,
        });
    }
    out
}

/// An LV's bytes put together from the qemu-img reading of the disks, where LVM2's
/// report says each segment's extents are.
fn lv_image(l: &Linux, lv: &str) -> PathBuf {
    let out = scratch("lv").join(format!("{lv}.img"));
    let o = fs::File::create(&out).unwrap();
    for seg in segments(l, lv) {
        let raw = [&l.raw0, &l.raw1][seg.disk];
        let part = extract(raw, seg.disk_offset, seg.len);
        let mut buf = vec![0u8; seg.len as usize];
        fs::File::open(&part)
            .unwrap()
            .read_exact_at(&mut buf, 0)
            .unwrap();
        o.write_all_at(&buf, seg.lv_start).unwrap();
    }
    out
}

fn debugfs(img: &Path, req: &str) -> String {
    run(Command::new("debugfs").arg("-R").arg(req).arg(img))
}

/// debugfs rdump of a whole ext volume (contents, link targets; owners, modes and
/// times are restored by rdump when run as root).
fn rdump(img: &Path) -> PathBuf {
    require("debugfs");
    let out = scratch("rdump");
    debugfs(img, &format!("rdump / {}", out.display()));
    out
}

/// Owner, mode, mtime and device of every path. `exact` oracles (the kernel, an rsync
/// copy) also give symlinks' owners and times and nanoseconds; debugfs rdump restores
/// neither, so without `exact` those are left out.
#[derive(Debug, PartialEq, Eq)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: (i64, i64),
    rdev: u64,
}

fn metadata(root: &Path, exact: bool) -> BTreeMap<String, Meta> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            let rel = rel_key(p.strip_prefix(root).unwrap());
            let meta = if m.file_type().is_symlink() && !exact {
                Meta {
                    uid: 0,
                    gid: 0,
                    mode: 0o120000,
                    mtime: (0, 0),
                    rdev: 0,
                }
            } else {
                Meta {
                    uid: m.uid(),
                    gid: m.gid(),
                    mode: m.mode(),
                    mtime: (m.mtime(), if exact { m.mtime_nsec() } else { 0 }),
                    rdev: m.rdev(),
                }
            };
            out.insert(rel, meta);
        }
    }
    out
}

/// Paths sharing an inode, as sorted groups of two or more.
fn link_groups(paths: impl IntoIterator<Item = (String, u64)>) -> Vec<Vec<String>> {
    let mut by: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (p, ino) in paths {
        by.entry(ino).or_default().push(p);
    }
    let mut g: Vec<Vec<String>> = by.into_values().filter(|v| v.len() > 1).collect();
    g.iter_mut().for_each(|v| v.sort());
    g.sort();
    g
}

fn our_link_groups(root: &Path) -> Vec<Vec<String>> {
    link_groups(
        walk(root)
            .into_iter()
            .filter(|(_, e)| matches!(e, Entry::File { .. }))
            .map(|(p, _)| {
                let ino = inode(&at(root, &p));
                (p, ino)
            }),
    )
}

/// Sleuth Kit's hard-link groups of regular files (fls -r -p: inode per path).
fn fls_link_groups(img: &Path) -> Vec<Vec<String>> {
    require("fls");
    let out = run(Command::new("fls").args(["-r", "-p", "-u"]).arg(img));
    link_groups(out.lines().filter_map(|l| {
        let (head, name) = l.split_once('\t')?;
        if !head.starts_with("r/r") {
            return None;
        }
        let ino = head
            .split_whitespace()
            .nth(1)?
            .trim_end_matches(':')
            .parse()
            .ok()?;
        Some((name.to_owned(), ino))
    }))
}

/// Every xattr of every path (getfattr -d -m -, not following links), hex values.
fn xattrs(root: &Path) -> BTreeMap<String, String> {
    let out = Command::new("getfattr")
        .args([
            "-R",
            "-P",
            "-h",
            "-d",
            "-m",
            "-",
            "-e",
            "hex",
            "--absolute-names",
        ])
        .arg(root)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut map = BTreeMap::new();
    let mut file = String::new();
    for l in text.lines() {
        if let Some(f) = l.strip_prefix("# file: ") {
            file = Path::new(f)
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
        } else if let Some((k, v)) = l.split_once('=') {
            map.insert(format!("{file} {k}"), v.to_owned());
        }
    }
    map
}

/// A copy of ext4 image `dirty` with its journal replayed by `e2fsck -fy` (exit 0 or 1:
/// nothing or only fixes were needed): the oracle for what a frozen, unclean ext4 holds.
fn recovered(dirty: &Path) -> PathBuf {
    let fixed = scratch("fixed").join("boot.img");
    fs::copy(dirty, &fixed).unwrap();
    let code = Command::new("e2fsck")
        .arg("-fy")
        .arg(&fixed)
        .output()
        .unwrap();
    assert!(code.status.code().unwrap_or(8) <= 1, "e2fsck -fy: {code:?}");
    fixed
}

/// A read-only kernel mount of an image (the reference XFS and ext4 drivers); None,
/// after a SKIPPED line, where the kernel lacks the file system or loop mounts.
struct KernelMount(PathBuf);

impl KernelMount {
    fn new(img: &Path, fs: &str) -> Option<KernelMount> {
        let known = fs::read_to_string("/proc/filesystems")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split_whitespace().last() == Some(fs));
        let mp = scratch("kernel");
        // norecovery/noload: never let the oracle replay or write anything. nouuid:
        // tests running at once mount copies of the same XFS, which the kernel
        // otherwise refuses as a duplicate UUID.
        let opts = if fs == "xfs" {
            "ro,loop,norecovery,nouuid"
        } else {
            "ro,loop,noload"
        };
        let why = if !known {
            "not in /proc/filesystems".to_owned()
        } else {
            match Command::new("mount")
                .args(["-t", fs, "-o", opts])
                .arg(img)
                .arg(&mp)
                .output()
            {
                Ok(o) if o.status.success() => String::new(),
                Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                Err(e) => e.to_string(),
            }
        };
        if !why.is_empty() {
            skipped(&format!(
                "the kernel cannot mount {fs} from a loop device here ({why})"
            ));
            return None;
        }
        Some(KernelMount(mp))
    }
}

impl Drop for KernelMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn status(vm: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(vm.join("status.json")).unwrap()).unwrap()
}

/// The entry of volume `name` in a status.json.
fn volume<'a>(st: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    let vols = st["volumes"].as_array().unwrap();
    vols.iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume {name} in {vols:?}"))
}

#[test]
fn volumes_follow_lvm2s_layout_and_swap_is_listed_not_mounted() {
    let Some(l) = linux() else { return };
    let (_m, vm) = mounted(l, &[]);
    let st = status(&vm);
    let vols = st["volumes"].as_array().unwrap();
    let by = |name: &str| volume(&st, name);
    assert_eq!(by("disk0p1")["fs"], "ext4");
    assert_eq!(by("disk0p1")["label"], "boot");
    assert_eq!(by("disk0p2")["fs"], "lvm2_pv");
    assert_eq!(by("disk1")["fs"], "lvm2_pv");
    // Each LV LVM2 reports, with its segments in order and its size.
    let mut lvs: BTreeMap<&str, Vec<&serde_json::Value>> = BTreeMap::new();
    for seg in l.layout["lvs"].as_array().unwrap() {
        lvs.entry(seg["lv"].as_str().unwrap())
            .or_default()
            .push(seg);
    }
    for (lv, segs) in &lvs {
        let v = by(&format!("vg0-{lv}"));
        assert_eq!(v["lvm"]["vg"], "vg0");
        assert_eq!(v["lvm"]["lv"], *lv);
        assert_eq!(v["lvm"]["status"], "readable", "{v}");
        let types: Vec<&str> = segs
            .iter()
            .map(|s| s["segtype"].as_str().unwrap())
            .collect();
        assert_eq!(v["lvm"]["segments"], serde_json::json!(types));
        if *lv != "swap" {
            assert_eq!(v["total_bytes"], segs[0]["size"], "{lv}");
        }
    }
    assert_eq!(lvs["home"].len(), 2, "home spans both disks' PVs");
    assert_eq!(by("vg0-root")["fs"], "xfs");
    assert_eq!(by("vg0-root")["log_dirty"], false);
    assert_eq!(by("vg0-home")["fs"], "ext4");
    assert_eq!(by("vg0-home")["journal_replayed"], false);
    let swap = by("vg0-swap");
    assert_eq!(swap["fs"], "swap");
    assert!(swap["path"].is_null(), "swap is never mounted: {swap}");
    let mut listed: Vec<String> = fs::read_dir(vm.join("volumes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, ["disk0p1", "vg0-home", "vg0-root"]);
    for v in vols {
        assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    }
}

#[test]
fn dirty_boot_journal_reads_as_e2fsck_recovers_it() {
    let Some(l) = linux() else { return };
    let (start, size) = partition(&l.raw0, 1);
    let dirty = extract(&l.raw0, start, size);
    // The snapshot as the guest left it: needs recovery, old grub.cfg in place.
    assert!(run(Command::new("dumpe2fs").arg("-h").arg(&dirty)).contains("needs_recovery"));
    let unreplayed = debugfs(&dirty, "cat /grub/grub.cfg");
    let fixed = recovered(&dirty);
    let oracle = rdump(&fixed);
    let (_m, vm) = mounted(l, &[]);
    let ours = vm.join("volumes/disk0p1");
    assert_same_tree(&walk(&ours), &walk(&oracle));
    let cfg = fs::read_to_string(ours.join("grub/grub.cfg")).unwrap();
    assert_ne!(
        cfg, unreplayed,
        "the journal's transaction must be replayed"
    );
    let recorded: serde_json::Value =
        serde_json::from_slice(&fs::read(l.dir.join("boot-replayed.json")).unwrap()).unwrap();
    assert_eq!(cfg, recorded["grub/grub.cfg"]);
    let st = status(&vm);
    let boot = volume(&st, "disk0p1");
    assert_eq!(boot["journal_replayed"], true);
    assert_eq!(boot["dirty"], true);
    // Nothing was written to the source: the delta is still dirty.
    let after = extract(
        &qemu_raw(&l.dir.join("linuxvm-disk0-000001.vmdk")),
        start,
        size,
    );
    assert!(run(Command::new("dumpe2fs").arg("-h").arg(after)).contains("needs_recovery"));
    // Hard links as Sleuth Kit sees them on the recovered volume.
    assert_eq!(our_link_groups(&ours), fls_link_groups(&fixed));
}

#[test]
fn ext4_home_across_two_disks_equals_debugfs_with_guest_owners_and_xattrs() {
    let Some(l) = linux() else { return };
    let img = lv_image(l, "home");
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&img)
        .output()
        .unwrap();
    assert!(fsck.status.success(), "e2fsck -fn: {fsck:?}");
    let oracle = rdump(&img);
    let (_m, vm) = mounted(l, &["owners=guest"]);
    let ours = vm.join("volumes/vg0-home");
    assert_same_tree(&walk(&ours), &walk(&oracle));
    assert_eq!(
        metadata(&ours, false),
        metadata(&oracle, false),
        "owners, modes, mtimes (rdump restores them)"
    );
    // Names are the guest's bytes, also where they are not UTF-8, and open by them.
    use std::os::unix::ffi::OsStrExt;
    let bob: Vec<Vec<u8>> = fs::read_dir(ours.join("bob"))
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    for name in [&b"caf\xe9.txt"[..], b"100%xE9.txt"] {
        assert!(bob.contains(&name.to_vec()), "{bob:?}");
        let p = ours.join("bob").join(std::ffi::OsStr::from_bytes(name));
        assert!(fs::read(&p).unwrap().ends_with(b"\n"));
    }
    assert!(
        fs::metadata(ours.join("bob/caf%xE9.txt")).is_err(),
        "one name per file"
    );
    let groups = our_link_groups(&ours);
    assert_eq!(groups, fls_link_groups(&img));
    assert_eq!(
        groups,
        [["alice/Documents/notes-link.txt", "alice/notes.txt"]]
    );
    // xattrs against debugfs's own reading (ACLs in the kernel's posix_acl_xattr form).
    let ours_x = xattrs(&ours);
    assert!(ours_x.len() >= 5, "{ours_x:?}");
    for (key, hex) in &ours_x {
        let (path, name) = key.rsplit_once(' ').unwrap();
        let out = scratch("ea").join("value");
        debugfs(&img, &format!("ea_get -f {} /{path} {name}", out.display()));
        let mut want = fs::read(&out).unwrap();
        let mut got: Vec<u8> = (2..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        if name.starts_with("system.posix_acl_") {
            // debugfs writes 0 where the kernel writes ACL_UNDEFINED_ID (-1): the
            // id of an entry that is not for a named user or group means nothing.
            unnamed_ids_zero(&mut want);
            unnamed_ids_zero(&mut got);
        }
        assert_eq!(got, want, "{key}");
    }
    if let Some(k) = KernelMount::new(&img, "ext4") {
        assert_eq!(
            ours_x,
            xattrs(&k.0),
            "xattrs as the kernel's ext4 reads them"
        );
    }
}

/// A posix_acl_xattr value (4-byte header, 8-byte entries: tag, perm, id) with the
/// ids of entries other than ACL_USER (2) and ACL_GROUP (8) set to 0.
fn unnamed_ids_zero(v: &mut [u8]) {
    for e in v.get_mut(4..).unwrap_or_default().chunks_exact_mut(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        if tag != 2 && tag != 8 {
            e[4..8].fill(0);
        }
    }
}

#[test]
fn xfs_root_equals_the_kernels_xfs() {
    let Some(l) = linux() else { return };
    let img = lv_image(l, "root");
    require("xfs_repair");
    let repair = Command::new("xfs_repair")
        .args(["-n", "-f"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(repair.status.success(), "xfs_repair -n: {repair:?}");
    let (_m, vm) = mounted(l, &["owners=guest"]);
    let ours = vm.join("volumes/vg0-root");
    let Some(k) = KernelMount::new(&img, "xfs") else {
        return;
    };
    assert_same_tree(&walk(&ours), &walk(&k.0));
    let mine = metadata(&ours, true);
    assert_eq!(mine, metadata(&k.0, true));
    // The protofile's devices, setuid bit and owners came through.
    assert_eq!(mine["dev/null"].rdev, libc::makedev(1, 3));
    assert_eq!(mine["bin/su"].mode, 0o104755);
    assert_eq!(
        (mine["etc/shadow-dir"].gid, mine["home/alice"].uid),
        (42, 1000)
    );
    assert_eq!(xattrs(&ours), xattrs(&k.0));
}

#[test]
fn rsync_with_guest_owners_reproduces_every_volume() {
    let Some(l) = linux() else { return };
    require("rsync");
    let (_m, vm) = mounted(l, &["owners=guest"]);
    for (vol, lv, fs) in [("vg0-home", "home", "ext4"), ("vg0-root", "root", "xfs")] {
        let img = lv_image(l, lv);
        let Some(k) = KernelMount::new(&img, fs) else {
            continue;
        };
        let copy = scratch("rsync").join(vol);
        run(Command::new("rsync")
            .args(["-aHAX", "--numeric-ids"])
            .arg(format!("{}/", vm.join("volumes").join(vol).display()))
            .arg(&copy));
        assert_same_tree(&walk(&copy), &walk(&k.0));
        assert_eq!(
            metadata(&copy, true),
            metadata(&k.0, true),
            "{vol}: owners, modes, times, devices"
        );
        assert_eq!(
            our_link_groups(&copy),
            our_link_groups(&k.0),
            "{vol}: hard links"
        );
        assert_eq!(xattrs(&copy), xattrs(&k.0), "{vol}: xattrs and ACLs");
    }
}

/// Copies the VM folder and gives each disk a new snapshot delta holding the sectors of
/// `lv` that differ between `before` and `after` (two images of that LV), placed where
/// LVM2's report says they live; returns the new folder's parent (a source).
/// Big reads of Linux guest files are answered by splicing the image files' own pages:
/// ext4 on a partition of a snapshot chain (/boot), ext4 on an LV whose segments lie on
/// both disks (home) and XFS on an LV (root). Each file arrives as debugfs (after
/// e2fsck's recovery) and the kernel's XFS read it, by any read size and through mmap,
/// on the default mount and under direct_io=all; `-o splice=off` splices nothing. The
/// block of grub.cfg that the journal replay replaced is read, never spliced.
#[test]
fn linux_files_splice_as_debugfs_and_the_kernels_xfs_read_them() {
    let Some(l) = linux() else { return };
    let (start, size) = partition(&l.raw0, 1);
    let boot = rdump(&recovered(&extract(&l.raw0, start, size)));
    let home = rdump(&lv_image(l, "home"));
    let xfs = KernelMount::new(&lv_image(l, "root"), "xfs");
    let mut files = vec![
        ("disk0p1", "vmlinuz-6.1.0", &boot),
        ("disk0p1", "initrd.img-6.1.0", &boot),
        ("vg0-home", "alice/Documents/big.bin", &home),
        ("vg0-home", "alice/Documents/tail.bin", &home),
    ];
    if let Some(k) = &xfs {
        files.push(("vg0-root", "lib/libc.so.6", &k.0));
    }
    for (opts, splices) in [("", true), ("direct_io=all", true), ("splice=off", false)] {
        let (m, vm) = mounted(l, &[opts]);
        let mut counts = Vec::new();
        for (vol, f, oracle) in &files {
            let before = spliced(&m.mp);
            let ours = vm.join("volumes").join(vol).join(f);
            let theirs = oracle.join(f);
            let want = fs::read(&theirs).unwrap();
            assert!(read_in_pieces(&ours, 1 << 20) == want, "{opts}: {f}");
            assert!(read_in_pieces(&ours, 4097) == want, "{opts}: {f}: 4097");
            assert_eq!(sha256_mmap(&ours), sha256_file(&theirs), "{opts}: {f}");
            counts.push((f, spliced(&m.mp) - before));
        }
        println!("{opts:?}: read replies spliced: {counts:?}");
        for (f, n) in counts {
            assert_eq!(n > 0, splices, "{opts}: {f}: {n} replies spliced");
        }
        let before = spliced(&m.mp);
        let cfg = read_in_pieces(&vm.join("volumes/disk0p1/grub/grub.cfg"), 1 << 20);
        assert_eq!(cfg, fs::read(boot.join("grub/grub.cfg")).unwrap(), "{opts}");
        assert_eq!(spliced(&m.mp), before, "{opts}: a journaled block spliced");
        m.umount();
    }
}

fn vm_with_changed_lv(l: &Linux, lv: &str, before: &Path, after: &Path) -> PathBuf {
    let src = scratch("damaged");
    let dir = src.join("linuxvm");
    fs::create_dir_all(&dir).unwrap();
    for e in fs::read_dir(&l.dir).unwrap() {
        let p = e.unwrap().path();
        fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let tops = ["linuxvm-disk0-000001.vmdk", "linuxvm-disk1.vmdk"];
    let deltas = tops.map(|t| format!("{}-damaged.vmdk", t.trim_end_matches(".vmdk")));
    let mut vmx = fs::read_to_string(dir.join("linuxvm.vmx")).unwrap();
    for (top, delta) in tops.iter().zip(&deltas) {
        run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "vmdk", "-F", "vmdk", "-b", top])
            .arg(dir.join(delta)));
        vmx = vmx.replace(&format!("\"{top}\""), &format!("\"{delta}\""));
    }
    fs::write(dir.join("linuxvm.vmx"), vmx).unwrap();
    let segs = segments(l, lv);
    let (a, b) = (fs::read(before).unwrap(), fs::read(after).unwrap());
    let sector = 512;
    for off in (0..a.len()).step_by(sector) {
        if a[off..off + sector] == b[off..off + sector] {
            continue;
        }
        let off = off as u64;
        let seg = segs
            .iter()
            .find(|s| (s.lv_start..s.lv_start + s.len).contains(&off))
            .unwrap();
        let at = seg.disk_offset + off - seg.lv_start;
        let chunk = src.join("chunk");
        fs::write(&chunk, &b[off as usize..off as usize + sector]).unwrap();
        run(Command::new("qemu-io")
            .args(["-f", "vmdk", "-c"])
            .arg(format!("write -s {} {at} {sector}", chunk.display()))
            .arg(dir.join(&deltas[seg.disk])));
    }
    src
}

#[test]
fn a_damaged_ext4_file_is_eio_and_the_rest_of_the_volume_reads() {
    let Some(l) = linux() else { return };
    let img = lv_image(l, "home");
    let damaged = scratch("bad").join("home.img");
    fs::copy(&img, &damaged).unwrap();
    // Smash the extent header in big.bin's inode (debugfs keeps the inode checksum right,
    // so only the structure is wrong).
    run(Command::new("debugfs")
        .args([
            "-w",
            "-R",
            "sif /alice/Documents/big.bin block[0] 0x12345678",
        ])
        .arg(&damaged));
    let oracle = rdump(&img);
    let src = vm_with_changed_lv(l, "home", &img, &damaged);
    let m = Mount::new(&src, &[]);
    let vol = m.mp.join("linuxvm/volumes/vg0-home");
    let err = fs::read(vol.join("alice/Documents/big.bin")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    // Everything else is as before.
    let mut want = walk(&oracle);
    want.remove("alice/Documents/big.bin");
    for (path, entry) in &want {
        let p = at(&vol, path);
        match entry {
            Entry::File { sha, .. } => assert_eq!(sha256_file(&p), *sha, "{path}"),
            Entry::Dir => assert!(p.is_dir(), "{path}"),
            _ => assert!(fs::symlink_metadata(&p).is_ok(), "{path}"),
        }
    }
    let st = status(&m.mp.join("linuxvm"));
    let errors = volume(&st, "vg0-home")["errors"].to_string();
    assert!(
        errors.contains("inode"),
        "status.json names the damage: {errors}"
    );
}
