//! Links, special files and WSL owners on an NTFS volume written from Linux (ntfs-3g's
//! Interix files and its special_files=wsl reparse points), through a real mount and
//! through rsync/tar copies of it, compared with ntfs-3g's own view of the same volume.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

struct Ntfs3g(PathBuf);

impl Ntfs3g {
    fn mount(img: &Path, opts: &str) -> Ntfs3g {
        require("ntfs-3g");
        let mp = scratch("ntfs3g");
        run(Command::new("ntfs-3g")
            .arg("-o")
            .arg(opts)
            .arg(img)
            .arg(&mp));
        Ntfs3g(mp)
    }
}

impl Drop for Ntfs3g {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3").arg("-u").arg(&self.0).status();
    }
}

/// A $EA value as ntfs-3g's system.ntfs_ea takes it (each entry's padded length as its
/// next-entry offset, the last one's too).
fn ea_hex(entries: &[(&str, u32)]) -> String {
    let mut out = Vec::new();
    for (name, value) in entries {
        let len = 8 + name.len() + 1 + 4;
        let padded = len.div_ceil(4) * 4;
        out.extend((padded as u32).to_le_bytes());
        out.extend([0, name.len() as u8, 4, 0]);
        out.extend(name.as_bytes());
        out.push(0);
        out.extend(value.to_le_bytes());
        out.resize(out.len() + padded - len, 0);
    }
    let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{hex}")
}

fn setfattr(p: &Path, name: &str, value: &str) {
    run(Command::new("setfattr")
        .args(["-n", name, "-v", value])
        .arg(p));
}

struct Fixture {
    /// A folder holding the VM folder `linkvm`.
    vms: PathBuf,
    /// The unpartitioned NTFS image the VM's disk was converted from.
    raw: PathBuf,
}

/// Files whose kind the tests check, relative to the volume root.
const LINKS: &[&str] = &[
    "ix/rel",
    "ix/abs",
    "ix/sub/up",
    "ix/sub/escape",
    "wsl/rel",
    "wsl/abs",
];
const SPECIAL: &[&str] = &["ix/fifo", "ix/chr", "ix/blk", "wsl/fifo", "wsl/chr"];

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        for t in [
            "mkntfs", "ntfs-3g", "qemu-img", "setfattr", "mkfifo", "mknod",
        ] {
            require(t);
        }
        let base = scratch("links");
        let raw = base.join("ntfs.raw");
        fs::File::create(&raw).unwrap().set_len(24 << 20).unwrap();
        run(Command::new("mkntfs")
            .args(["-q", "-F", "-Q", "-L", "LINKS"])
            .arg(&raw));
        {
            // ntfs-3g's defaults: Interix symlinks, FIFOs and devices.
            let m = Ntfs3g::mount(&raw, "rw");
            let p = |s: &str| m.0.join(s);
            fs::create_dir_all(p("ix/sub")).unwrap();
            fs::write(p("ix/target.txt"), b"target\n").unwrap();
            std::os::unix::fs::symlink("target.txt", p("ix/rel")).unwrap();
            std::os::unix::fs::symlink("/ix/target.txt", p("ix/abs")).unwrap();
            std::os::unix::fs::symlink("../target.txt", p("ix/sub/up")).unwrap();
            std::os::unix::fs::symlink("../../../../etc/passwd", p("ix/sub/escape")).unwrap();
            run(Command::new("mkfifo").arg(p("ix/fifo")));
            run(Command::new("mknod").arg(p("ix/chr")).args(["c", "4", "5"]));
            run(Command::new("mknod").arg(p("ix/blk")).args(["b", "8", "1"]));
        }
        {
            // WSL's forms, and its owners: no tool here writes $LXUID/$LXGID/$LXMOD for a
            // regular file, so they go in through ntfs-3g's system.ntfs_ea.
            let m = Ntfs3g::mount(&raw, "rw,special_files=wsl");
            let p = |s: &str| m.0.join(s);
            fs::create_dir(p("wsl")).unwrap();
            std::os::unix::fs::symlink("../ix/target.txt", p("wsl/rel")).unwrap();
            std::os::unix::fs::symlink("/ix/target.txt", p("wsl/abs")).unwrap();
            run(Command::new("mkfifo").arg(p("wsl/fifo")));
            run(Command::new("mknod")
                .arg(p("wsl/chr"))
                .args(["c", "4", "6"]));
            fs::write(p("wsl/owned"), b"owned by 1000\n").unwrap();
            let ea = ea_hex(&[("$LXUID", 1000), ("$LXGID", 1001), ("$LXMOD", 0o100640)]);
            setfattr(&p("wsl/owned"), "system.ntfs_ea", &ea);
            fs::create_dir(p("wsl/dir")).unwrap();
            let ea = ea_hex(&[("$LXUID", 0), ("$LXGID", 5), ("$LXMOD", 0o40750)]);
            setfattr(&p("wsl/dir"), "system.ntfs_ea", &ea);
            fs::write(p("wsl/dir/inner"), b"in\n").unwrap();
        }
        let vms = base.join("vms");
        let vm = vms.join("linkvm");
        fs::create_dir_all(&vm).unwrap();
        run(Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "vmdk"])
            .arg(&raw)
            .arg(vm.join("linkvm.vmdk")));
        fs::write(
            vm.join("linkvm.vmx"),
            "config.version = \"8\"\ndisplayName = \"linkvm\"\n\
             scsi0.present = \"TRUE\"\nscsi0:0.present = \"TRUE\"\n\
             scsi0:0.fileName = \"linkvm.vmdk\"\n",
        )
        .unwrap();
        Fixture { vms, raw }
    })
}

fn volume(m: &Mount) -> PathBuf {
    m.mp.join("linkvm/volumes/disk0")
}

/// Where a link resolves, relative to `root`, or None when it leaves it.
fn resolved(root: &Path, link: &Path) -> Option<String> {
    let t = fs::read_link(link).unwrap();
    let full = if t.is_absolute() {
        // ntfs-3g hands back the target as written: rooted at the volume.
        root.join(t.strip_prefix("/").unwrap())
    } else {
        link.parent().unwrap().join(t)
    };
    let mut parts: Vec<String> = Vec::new();
    for c in full.strip_prefix(root).ok()?.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            std::path::Component::Normal(n) => parts.push(n.to_string_lossy().into()),
            _ => {}
        }
    }
    Some(parts.join("/"))
}

#[test]
fn links_and_special_files_match_ntfs3g() {
    let f = fixture();
    let oracle = Ntfs3g::mount(&f.raw, "ro");
    let m = Mount::new(&f.vms, &[]);
    let vol = volume(&m);
    for &l in LINKS {
        let ours = fs::symlink_metadata(vol.join(l)).unwrap();
        assert!(ours.file_type().is_symlink(), "{l}");
        let target = fs::read_link(vol.join(l)).unwrap();
        assert!(target.is_relative(), "{l}: {target:?}");
        let mine = resolved(&vol, &vol.join(l));
        if l == "ix/sub/escape" {
            // ntfs-3g's target climbs out of the volume; ours is kept inside it.
            assert_eq!(resolved(&oracle.0, &oracle.0.join(l)), None);
            assert_eq!(mine.as_deref(), Some("etc/passwd"), "{l}");
            continue;
        }
        assert_eq!(mine, resolved(&oracle.0, &oracle.0.join(l)), "{l}");
        assert_eq!(mine.as_deref(), Some("ix/target.txt"), "{l}");
        assert_eq!(fs::read(vol.join(l)).unwrap(), b"target\n", "{l}");
        // The size of a link is the length of its target, as lstat promises.
        assert_eq!(ours.len(), target.as_os_str().len() as u64, "{l}");
    }
    // Relative Interix and WSL targets are handed back exactly as ntfs-3g reads them.
    for l in ["ix/rel", "ix/sub/up", "wsl/rel"] {
        assert_eq!(
            fs::read_link(vol.join(l)).unwrap(),
            fs::read_link(oracle.0.join(l)).unwrap(),
            "{l}"
        );
    }
    for &s in SPECIAL {
        let ours = fs::symlink_metadata(vol.join(s)).unwrap();
        let theirs = fs::symlink_metadata(oracle.0.join(s)).unwrap();
        let (o, t) = (ours.file_type(), theirs.file_type());
        assert_eq!(
            (o.is_fifo(), o.is_char_device(), o.is_block_device()),
            (t.is_fifo(), t.is_char_device(), t.is_block_device()),
            "{s}"
        );
        assert!(
            o.is_fifo() || o.is_char_device() || o.is_block_device(),
            "{s}"
        );
        assert_eq!(ours.rdev(), theirs.rdev(), "{s}");
    }
    // readdir's d_type agrees with lstat (find -type uses it).
    let out = run(Command::new("find").arg(&vol).args([
        "-type", "l", "-o", "-type", "p", "-o", "-type", "c", "-o", "-type", "b",
    ]));
    let mut found: Vec<String> = out
        .lines()
        .map(|l| l.strip_prefix(vol.to_str().unwrap()).unwrap()[1..].to_owned())
        .collect();
    found.sort();
    let mut want: Vec<String> = LINKS.iter().chain(SPECIAL).map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(found, want);
    m.umount();
}

#[test]
fn owners_guest_shows_wsl_owners_and_modes_and_the_mount_keeps_its_own_without() {
    let f = fixture();
    let m = Mount::new(&f.vms, &["uid=123,gid=456"]);
    let vol = volume(&m);
    for p in ["wsl/owned", "wsl/dir", "ix/target.txt"] {
        let md = fs::metadata(vol.join(p)).unwrap();
        assert_eq!((md.uid(), md.gid()), (123, 456), "{p}");
    }
    assert_eq!(
        fs::metadata(vol.join("wsl/owned"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o444
    );
    m.umount();

    let m = Mount::new(&f.vms, &["owners=guest,uid=123,gid=456"]);
    let vol = volume(&m);
    let st = |p: &str| {
        let md = fs::metadata(vol.join(p)).unwrap();
        (md.uid(), md.gid(), md.permissions().mode() & 0o7777)
    };
    assert_eq!(st("wsl/owned"), (1000, 1001, 0o640));
    assert_eq!(st("wsl/dir"), (0, 5, 0o750));
    // No WSL metadata: the mount's owner and mode.
    assert_eq!(st("ix/target.txt"), (123, 456, 0o444));
    assert_eq!(st("wsl/dir/inner"), (123, 456, 0o444));

    // rsync -a and tar (as root, numeric owners) restore links, specials and owners.
    let copy = scratch("rsync");
    run(Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", vol.display()))
        .arg(&copy));
    let untar = scratch("untar");
    let tarball = scratch("tar").join("vol.tar");
    run(Command::new("tar")
        .args(["--numeric-owner", "-cf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&vol)
        .arg("."));
    run(Command::new("tar")
        .args(["--numeric-owner", "--same-owner", "-xpf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&untar));
    for (what, root) in [("rsync", &copy), ("tar", &untar)] {
        for &l in LINKS {
            assert_eq!(
                fs::read_link(root.join(l)).unwrap(),
                fs::read_link(vol.join(l)).unwrap(),
                "{what}: {l}"
            );
        }
        for &s in SPECIAL {
            let c = fs::symlink_metadata(root.join(s)).unwrap();
            let o = fs::symlink_metadata(vol.join(s)).unwrap();
            assert_eq!(c.file_type(), o.file_type(), "{what}: {s}");
            assert_eq!(c.rdev(), o.rdev(), "{what}: {s}");
        }
        let md = fs::metadata(root.join("wsl/owned")).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.permissions().mode() & 0o7777),
            (1000, 1001, 0o640),
            "{what}"
        );
        let md = fs::metadata(root.join("wsl/dir")).unwrap();
        assert_eq!((md.uid(), md.gid()), (0, 5), "{what}");
        assert_eq!(
            fs::read(root.join("ix/rel")).unwrap(),
            b"target\n",
            "{what}"
        );
    }
    m.umount();
}
