//! Changed-block views of a local snapshot chain made by qemu-img and qemu-io, through a
//! real mount: `disks/since/<CHANGE_ID>/` must cover every byte that differs between the
//! two states (as qemu-img reads them), claim nothing qemu-img's own map does not show
//! as written in the newer links, and a previous full plus the sparse changes copied with
//! dd must equal `qemu-img convert` of the new state.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const MIB: u64 = 1 << 20;

fn status(mp: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(mp.join("status.json")).unwrap()).unwrap()
}

fn qemu_io(disk: &Path, cmds: &[&str]) {
    let mut c = Command::new("qemu-io");
    c.args(["-f", "vmdk"]);
    for cmd in cmds {
        c.args(["-c", cmd]);
    }
    run(c.arg(disk));
}

/// `[{"start","length"}]` as ranges.
fn extents(json: &[u8]) -> Vec<Range<u64>> {
    let v: serde_json::Value = serde_json::from_slice(json).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = e["start"].as_u64().unwrap();
            s..s + e["length"].as_u64().unwrap()
        })
        .collect()
}

fn merged(mut v: Vec<Range<u64>>) -> Vec<Range<u64>> {
    v.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in v.into_iter().filter(|r| !r.is_empty()) {
        match out.last_mut() {
            Some(l) if l.end >= r.start => l.end = l.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// qemu-img's map of a chain: the ranges written at `depth` 0 (the head link itself),
/// or, with `depth` None, every range that holds data anywhere in the chain.
fn qemu_map(disk: &Path, depth: Option<u64>) -> Vec<Range<u64>> {
    let out = run(Command::new("qemu-img")
        .args(["map", "--output=json"])
        .arg(disk));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ranges = v.as_array().unwrap().iter().filter(|e| match depth {
        Some(d) => e["depth"].as_u64() == Some(d) && (e["data"] == true || e["zero"] == true),
        None => e["data"] == true,
    });
    merged(
        ranges
            .map(|e| {
                let s = e["start"].as_u64().unwrap();
                s..s + e["length"].as_u64().unwrap()
            })
            .collect(),
    )
}

/// The data regions SEEK_DATA/SEEK_HOLE report for a file.
fn seek_data_ranges(path: &Path) -> Vec<Range<u64>> {
    let f = fs::File::open(path).unwrap();
    let size = f.metadata().unwrap().len() as i64;
    let mut out = Vec::new();
    let mut pos = 0i64;
    while pos < size {
        // SAFETY: a valid descriptor; lseek has no memory effects.
        let data = unsafe { libc::lseek(f.as_raw_fd(), pos, libc::SEEK_DATA) };
        if data < 0 {
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(f.as_raw_fd(), data, libc::SEEK_HOLE) };
        assert!(hole > data, "a data region has an end");
        out.push(data as u64..hole as u64);
        pos = hole;
    }
    out
}

fn covers(extents: &[Range<u64>], at: u64) -> bool {
    extents.iter().any(|r| r.contains(&at))
}

/// `qemu-img create -f vmdk` with `args`, of `size` (None: the backing file's).
fn create(disk: &Path, args: &[&str], size: Option<&str>) {
    let mut c = Command::new("qemu-img");
    c.args(["create", "-q", "-f", "vmdk"]).args(args).arg(disk);
    run(c.args(size));
}

/// A VM folder with one sparse disk, written by qemu-io.
fn chain_folder() -> PathBuf {
    require("qemu-img");
    require("qemu-io");
    let dir = scratch("incremental").join("vm");
    fs::create_dir_all(&dir).unwrap();
    let base = dir.join("base.vmdk");
    create(&base, &["-o", "subformat=monolithicSparse"], Some("64M"));
    qemu_io(
        &base,
        &[
            "write -P 0x11 0 8M",
            "write -P 0x22 20M 4M",
            "write -P 0x33 63M 1M",
        ],
    );
    dir
}

#[test]
fn since_views_of_a_local_chain_match_qemu() {
    let dir = chain_folder();
    let base = dir.join("base.vmdk");

    // Night 1: a full backup, and the change id to count from next time.
    let m = Mount::new(&dir, &[]);
    let st = status(&m.mp);
    let d0 = &st["disks"][0];
    assert_eq!(d0["cbt"]["state"], "enabled", "{d0}");
    let id1 = d0["change_id"].as_str().unwrap().to_owned();
    assert_eq!(id1.len(), 8, "a CID: {id1}");
    assert_eq!(d0["since"], format!("disks/since/{id1}"));
    let full = scratch("full").join("full.raw");
    fs::copy(m.mp.join("disks/disk0-flat.vmdk"), &full).unwrap();
    // `*`: the allocated extents, exactly what qemu-img maps as data.
    let all = m.mp.join("disks/since/*");
    let allocated = extents(&fs::read(all.join("disk0.changes.json")).unwrap());
    assert_eq!(allocated, qemu_map(&base, None));
    assert_eq!(seek_data_ranges(&all.join("disk0-flat.vmdk")), allocated);
    // Nothing changed since this very state.
    let none = m.mp.join(format!("disks/since/{id1}"));
    assert_eq!(fs::read(none.join("disk0.changes.json")).unwrap(), b"[]\n");
    assert!(seek_data_ranges(&none.join("disk0-flat.vmdk")).is_empty());
    m.umount();

    // During the day: a snapshot (a new link on top), and writes into it, 64 KiB
    // pieces spread over the disk, one unaligned, one of zeros over data.
    let d1 = dir.join("base-000001.vmdk");
    create(&d1, &["-b", "base.vmdk", "-F", "vmdk"], None);
    let mut writes: Vec<String> = (0..40u64)
        .map(|k| {
            format!(
                "write -P 0x{:02x} {} 64k",
                0x40 + k,
                k * 1_572_864 + 131_072
            )
        })
        .collect();
    writes.push(format!("write -P 0x99 {} 4k", 33 * MIB + 512));
    writes.push(format!("write -z {} 128k", 2 * MIB));
    let cmds: Vec<&str> = writes.iter().map(String::as_str).collect();
    qemu_io(&d1, &cmds);
    // The folder now shows one disk: the chain headed by the new link.

    // Night 2: the incremental.
    let m = Mount::new(&dir, &[]);
    let st = status(&m.mp);
    let id2 = st["disks"][0]["change_id"].as_str().unwrap().to_owned();
    assert_ne!(id1, id2, "the head changed, so does the id");
    let since = m.mp.join(format!("disks/since/{id1}"));
    let changed = extents(&fs::read(since.join("disk0.changes.json")).unwrap());
    let sparse = since.join("disk0-flat.vmdk");
    assert_eq!(seek_data_ranges(&sparse), changed);
    assert_eq!(changed, qemu_map(&d1, Some(0)), "what the new link holds");
    let changed_bytes: u64 = changed.iter().map(|r| r.end - r.start).sum();
    assert!(
        changed_bytes < 4 * MIB,
        "{changed_bytes} bytes claimed changed"
    );

    // Every byte that differs between the two states lies in a changed extent.
    let new = qemu_raw(&d1);
    let (a, b) = (fs::read(&full).unwrap(), fs::read(&new).unwrap());
    assert_eq!(a.len(), b.len());
    let differing: Vec<u64> = (0..a.len())
        .filter(|&i| a[i] != b[i])
        .map(|i| i as u64)
        .collect();
    assert!(!differing.is_empty());
    for at in &differing {
        assert!(
            covers(&changed, *at),
            "byte {at} changed but no extent covers it"
        );
    }

    // Previous full + the changes, copied with dd, is the new state.
    let rebuilt = scratch("rebuilt").join("rebuilt.raw");
    fs::copy(&full, &rebuilt).unwrap();
    for r in &changed {
        run(Command::new("dd")
            .arg(format!("if={}", sparse.display()))
            .arg(format!("of={}", rebuilt.display()))
            .args(["bs=64K", "iflag=skip_bytes,count_bytes", "oflag=seek_bytes"])
            .args(["conv=notrunc,fsync", "status=none"])
            .arg(format!("skip={}", r.start))
            .arg(format!("seek={}", r.start))
            .arg(format!("count={}", r.end - r.start)));
    }
    assert_eq!(sha256_file(&rebuilt), sha256_file(&new));
    // Outside the changes the sparse view reads as zeros.
    let hole_at = (0..a.len() as u64)
        .step_by(65_536)
        .find(|&o| !covers(&changed, o) && b[o as usize] != 0)
        .expect("unchanged data somewhere");
    let mut buf = [1u8; 16];
    std::os::unix::fs::FileExt::read_exact_at(&fs::File::open(&sparse).unwrap(), &mut buf, hole_at)
        .unwrap();
    assert_eq!(buf, [0u8; 16]);

    // An id this disk cannot count from is never "no changes".
    let err = fs::metadata(m.mp.join("disks/since/deadbeef")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = fs::metadata(m.mp.join("disks/since/not-an-id/disk0.changes.json")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let st = status(&m.mp);
    let full_needed = st["full_backup_needed"].to_string();
    assert!(full_needed.contains("deadbeef"), "{full_needed}");
    // since/ and disks/ list no ids.
    assert_eq!(fs::read_dir(m.mp.join("disks/since")).unwrap().count(), 0);
    assert!(fs::read_dir(m.mp.join("disks"))
        .unwrap()
        .all(|e| e.unwrap().file_name() != "since"));
    m.umount();
}

/// The sparse view's bytes go through the kernel's page cache (extents read ahead are
/// stored there). After idle release and a re-freeze the same file, same inode, holds
/// the new state's changes: nothing of the earlier freeze's pages may be read back.
#[test]
fn a_refreeze_shows_new_changes_not_the_earlier_freezes_pages() {
    let dir = chain_folder();
    let scripts = scratch("refreeze-hook");
    let (script, log) = (scripts.join("hook.sh"), scripts.join("log"));
    fs::write(
        &script,
        format!("#!/bin/sh\necho \"$VMSNAPFS_PHASE\" >>{}\n", log.display()),
    )
    .unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let thaws = || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == "post_backup")
            .count()
    };
    let m = Mount::new(&dir, &[]);
    let id1 = status(&m.mp)["disks"][0]["change_id"]
        .as_str()
        .unwrap()
        .to_owned();
    m.umount();
    let d1 = dir.join("base-000001.vmdk");
    create(&d1, &["-b", "base.vmdk", "-F", "vmdk"], None);
    qemu_io(&d1, &["write -P 0x5a 1M 64k", "write -P 0x5b 30M 64k"]);

    let hooks = format!("post_backup={},idle_release=1", script.display());
    let m = Mount::new(&dir, &[&hooks]);
    let sparse = m.mp.join(format!("disks/since/{id1}/disk0-flat.vmdk"));
    let copy = |name: &str| {
        let out = scratch(name).join("changes.img");
        run(Command::new("cp")
            .arg("--sparse=always")
            .arg(&sparse)
            .arg(&out));
        fs::read(out).unwrap()
    };
    // A SEEK_DATA has the extent it finds fetched and stored in the page cache, while
    // the file is open (no read here to take it first).
    let f = fs::File::open(&sparse).unwrap();
    // SAFETY: a valid descriptor; lseek has no memory effects.
    let data = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_DATA) };
    assert_eq!(data, MIB as i64);
    wait_until(
        "the extent stored in the page cache",
        std::time::Duration::from_secs(10),
        || stored(&m.mp) >= 1,
    );
    drop(f);
    let first = copy("refreeze-1");
    assert_eq!(first[MIB as usize], 0x5a);
    // Thawed once nothing holds the freeze; meanwhile the VM writes again (over one
    // changed piece, and a new one).
    wait_until("idle release", std::time::Duration::from_secs(20), || {
        thaws() == 1
    });
    qemu_io(&d1, &["write -P 0x6c 1M 64k", "write -P 0x6d 50M 64k"]);
    let second = copy("refreeze-2");
    assert_eq!(thaws(), 1, "frozen again, and still");
    let new = fs::read(qemu_raw(&d1)).unwrap();
    for at in [MIB, 30 * MIB, 50 * MIB] {
        let r = at as usize..(at + 65_536) as usize;
        assert_eq!(second[r.clone()], new[r], "at {at}: the new freeze's bytes");
    }
    assert_eq!(second[MIB as usize], 0x6c);
    m.umount();

    // With direct_io the view is read past the page cache: the same bytes, none stored.
    let m = Mount::new(&dir, &["direct_io"]);
    let sparse = m.mp.join(format!("disks/since/{id1}/disk0-flat.vmdk"));
    let out = scratch("refreeze-direct").join("changes.img");
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(&sparse)
        .arg(&out));
    assert!(fs::read(out).unwrap() == second, "direct_io: other bytes");
    assert_eq!(stored(&m.mp), 0);
    m.umount();
}
