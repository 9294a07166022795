//! Links and special files the way Linux writers leave them on NTFS: ntfs-3g's default
//! Interix symlinks, FIFOs and devices, its `special_files=wsl` LX reparse points, and
//! WSL's POSIX metadata EAs. ntfs-3g itself is the oracle for what each one is.

mod common;
use common::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use vmsnapfs_ntfs::{FileKind, LinkKind, Volume};

struct Fixture {
    _dir: tempfile::TempDir,
    img: PathBuf,
    vol: Volume,
}

/// FILE_ATTRIBUTE_SYSTEM | ARCHIVE, as ntfs-3g gives its own special files.
const SYSTEM_ARCHIVE: &str = "0x24000000";

fn setfattr(name: &str, value: &str, path: &Path) {
    run(
        "setfattr",
        &["-n", name, "-v", value, path.to_str().unwrap()],
    );
}

/// A $EA value in the layout ntfs-3g's `system.ntfs_ea` takes: every entry, the last
/// too, with its padded length as next-entry offset.
pub fn ea_value(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in entries {
        let len = 8 + name.len() + 1 + value.len();
        let padded = len.div_ceil(4) * 4;
        out.extend((padded as u32).to_le_bytes());
        out.push(0);
        out.push(name.len() as u8);
        out.extend((value.len() as u16).to_le_bytes());
        out.extend(name.as_bytes());
        out.push(0);
        out.extend(*value);
        out.resize(out.len() + padded - len, 0);
    }
    out
}

/// A system file with this content, written through ntfs-3g.
fn system_file(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap();
    setfattr("system.ntfs_attrib", SYSTEM_ARCHIVE, path);
}

fn interix_link(target: &str) -> Vec<u8> {
    let mut d = b"IntxLNK\x01".to_vec();
    d.extend(target.encode_utf16().flat_map(|u| u.to_le_bytes()));
    d
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("vol.img");
        mkntfs(&img, 24 << 20, 4096, 512, "links");
        let mnt = dir.path().join("mnt");
        {
            // ntfs-3g's default: Interix symlinks, FIFOs and devices.
            let m = Mount::new(&img, &mnt, "");
            let p = |s: &str| m.dir.join(s);
            std::fs::create_dir_all(p("ix/sub")).unwrap();
            std::fs::write(p("ix/target.txt"), b"interix target").unwrap();
            std::os::unix::fs::symlink("target.txt", p("ix/rel")).unwrap();
            std::os::unix::fs::symlink("../target.txt", p("ix/sub/up")).unwrap();
            std::os::unix::fs::symlink("/ix/target.txt", p("ix/abs")).unwrap();
            std::os::unix::fs::symlink("../../../../etc/passwd", p("ix/sub/escape")).unwrap();
            std::os::unix::fs::symlink("日本語/ファイル", p("ix/unicode")).unwrap();
            run("mkfifo", &[p("ix/fifo").to_str().unwrap()]);
            run("mknod", &[p("ix/chr").to_str().unwrap(), "c", "4", "5"]);
            run("mknod", &[p("ix/blk").to_str().unwrap(), "b", "8", "1"]);
            // Look-alikes that are regular files: a wrong magic version, an odd length,
            // a device one byte short, and a hidden empty system file.
            std::fs::create_dir(p("bad")).unwrap();
            let mut wrong = interix_link("target");
            wrong[7] = 2;
            system_file(&p("bad/magic"), &wrong);
            let mut odd = interix_link("target");
            odd.push(b'!');
            system_file(&p("bad/odd"), &odd);
            let mut dev = b"IntxCHR\0".to_vec();
            dev.extend([0u8; 15]);
            system_file(&p("bad/short-device"), &dev);
            std::fs::write(p("bad/hidden-empty"), b"").unwrap();
            setfattr("system.ntfs_attrib", "0x26000000", &p("bad/hidden-empty"));
            std::fs::write(p("bad/plain-empty"), b"").unwrap();
        }
        {
            // WSL's own forms, written by ntfs-3g's special_files=wsl.
            let m = Mount::new(&img, &mnt, "special_files=wsl");
            let p = |s: &str| m.dir.join(s);
            std::fs::create_dir(p("wsl")).unwrap();
            std::os::unix::fs::symlink("../ix/target.txt", p("wsl/rel")).unwrap();
            std::os::unix::fs::symlink("/ix/target.txt", p("wsl/abs")).unwrap();
            std::os::unix::fs::symlink("lx-corrupt-target", p("wsl/corrupt")).unwrap();
            run("mkfifo", &[p("wsl/fifo").to_str().unwrap()]);
            run("mknod", &[p("wsl/chr").to_str().unwrap(), "c", "4", "6"]);
            run("mknod", &[p("wsl/blk").to_str().unwrap(), "b", "7", "3"]);
            // Owners and modes as WSL keeps them; no tool here writes $LXUID/$LXGID, so
            // they go in through ntfs-3g's system.ntfs_ea.
            std::fs::write(p("wsl/owned"), b"owned by 1000").unwrap();
            let ea = ea_value(&[
                ("$LXUID", &1000u32.to_le_bytes()),
                ("$LXGID", &1001u32.to_le_bytes()),
                ("$LXMOD", &0o100640u32.to_le_bytes()),
            ]);
            setfattr(
                "system.ntfs_ea",
                &format!("0x{}", hex(&ea)),
                &p("wsl/owned"),
            );
            std::fs::create_dir(p("wsl/dir")).unwrap();
            let ea = ea_value(&[
                ("$LXUID", &0u32.to_le_bytes()),
                ("$LXGID", &5u32.to_le_bytes()),
                ("$LXMOD", &0o40750u32.to_le_bytes()),
            ]);
            setfattr("system.ntfs_ea", &format!("0x{}", hex(&ea)), &p("wsl/dir"));
            // A value of the wrong size is ignored.
            std::fs::write(p("wsl/odd-ea"), b"x").unwrap();
            let ea = ea_value(&[("$LXUID", &[1, 2, 3])]);
            setfattr(
                "system.ntfs_ea",
                &format!("0x{}", hex(&ea)),
                &p("wsl/odd-ea"),
            );
        }
        corrupt_lx_length(&img, "lx-corrupt-target");
        let vol = open(&img);
        Fixture {
            _dir: dir,
            img,
            vol,
        }
    })
}

/// Makes the LX symlink holding `target` claim more reparse data than it has.
fn corrupt_lx_length(img: &Path, target: &str) {
    let mut bytes = std::fs::read(img).unwrap();
    let at = bytes
        .windows(target.len())
        .position(|w| w == target.as_bytes())
        .expect("LX target in the image");
    let tag = at - 12;
    assert_eq!(bytes[tag..tag + 4], 0xA000_001Du32.to_le_bytes());
    bytes[tag + 4..tag + 6].copy_from_slice(&0x0200u16.to_le_bytes());
    std::fs::write(img, bytes).unwrap();
}

fn id(path: &str) -> vmsnapfs_ntfs::FileId {
    fixture()
        .vol
        .lookup_path(path)
        .unwrap()
        .unwrap_or_else(|| panic!("{path} not found"))
}

const LINKS: &[&str] = &[
    "ix/rel",
    "ix/sub/up",
    "ix/abs",
    "ix/sub/escape",
    "ix/unicode",
    "wsl/rel",
    "wsl/abs",
];
const SPECIAL: &[&str] = &[
    "ix/fifo", "ix/chr", "ix/blk", "wsl/fifo", "wsl/chr", "wsl/blk",
];
const PLAIN: &[&str] = &[
    "bad/magic",
    "bad/odd",
    "bad/short-device",
    "bad/hidden-empty",
    "bad/plain-empty",
    "wsl/owned",
    "ix/target.txt",
];

#[test]
fn links_and_special_files_match_ntfs3g() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let m = Mount::new(&f.img, &dir.path().join("mnt"), "ro");
    for &path in LINKS {
        let theirs = std::fs::read_link(m.dir.join(path)).unwrap();
        let fid = id(path);
        assert_eq!(f.vol.stat(fid).unwrap().kind, FileKind::Symlink, "{path}");
        let t = f.vol.read_link(fid).unwrap();
        // ntfs-3g hands targets back verbatim; so do we (the FUSE layer keeps absolute
        // ones inside the volume).
        assert_eq!(t.target, theirs.to_str().unwrap(), "{path}");
        let want = if path.starts_with("ix/") {
            LinkKind::Interix
        } else {
            LinkKind::WslSymlink
        };
        assert_eq!(t.kind, want, "{path}");
        assert_eq!(t.relative, !t.target.starts_with('/'), "{path}");
    }
    for &path in SPECIAL {
        let theirs = std::fs::symlink_metadata(m.dir.join(path)).unwrap();
        let md = f.vol.stat(id(path)).unwrap();
        let ft = theirs.file_type();
        let want = if ft.is_fifo() {
            FileKind::Fifo
        } else if ft.is_char_device() {
            FileKind::CharDevice
        } else if ft.is_block_device() {
            FileKind::BlockDevice
        } else {
            panic!("ntfs-3g shows {path} as {ft:?}")
        };
        assert_eq!(md.kind, want, "{path}");
        if !ft.is_fifo() {
            let rdev = theirs.rdev();
            let (major, minor) = md.device.expect("device numbers");
            assert_eq!(
                (major, minor),
                (libc_major(rdev), libc_minor(rdev)),
                "{path}"
            );
        }
        assert_eq!(md.size, 0, "{path}");
    }
    for &path in PLAIN {
        let theirs = std::fs::symlink_metadata(m.dir.join(path)).unwrap();
        let md = f.vol.stat(id(path)).unwrap();
        assert_eq!(md.kind, FileKind::File, "{path}");
        // ntfs-3g reads a look-alike of odd length as a link (whose target it then
        // cannot follow); we keep its bytes as a regular file.
        let data = if path == "bad/odd" {
            let mut odd = interix_link("target");
            odd.push(b'!');
            odd
        } else {
            assert!(theirs.file_type().is_file(), "ntfs-3g: {path}");
            std::fs::read(m.dir.join(path)).unwrap()
        };
        assert_eq!(hash_stream(&f.vol, id(path), None).1, sha256_bytes(&data));
    }
    // The directory listing's hints agree with stat, as ntfs-3g's readdir does.
    for d in ["ix", "ix/sub", "wsl", "bad"] {
        for e in f.vol.read_dir(id(d)).unwrap() {
            let k = f.vol.stat(e.id).unwrap().kind;
            assert_eq!(e.kind_hint, k, "{d}/{}", e.name);
        }
    }
}

fn libc_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)
}

fn libc_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0xff)
}

#[test]
fn wsl_metadata_from_eas() {
    let v = &fixture().vol;
    let lx = v.lx_metadata(id("wsl/owned")).unwrap();
    assert_eq!(
        (lx.uid, lx.gid, lx.mode),
        (Some(1000), Some(1001), Some(0o100640))
    );
    let lx = v.lx_metadata(id("wsl/dir")).unwrap();
    assert_eq!((lx.uid, lx.gid, lx.mode), (Some(0), Some(5), Some(0o40750)));
    // ntfs-3g's own $LXMOD and $LXDEV for the device it made.
    let lx = v.lx_metadata(id("wsl/chr")).unwrap();
    assert_eq!(lx.device, Some((4, 6)));
    assert_eq!(lx.mode.map(|m| m & 0o170000), Some(0o020000));
    assert!(v.lx_metadata(id("wsl/odd-ea")).unwrap().uid.is_none());
    assert!(v.lx_metadata(id("ix/target.txt")).unwrap().is_empty());
    // The raw $EA is what ntfs-3g's system.ntfs_ea shows.
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let m = Mount::new(&f.img, &dir.path().join("mnt"), "ro");
    for p in ["wsl/owned", "wsl/dir", "wsl/chr", "wsl/fifo"] {
        let out = run(
            "getfattr",
            &[
                "--only-values",
                "-n",
                "system.ntfs_ea",
                m.dir.join(p).to_str().unwrap(),
            ],
        );
        assert_eq!(v.ea_data(id(p)).unwrap().unwrap(), out, "{p}");
    }
}

#[test]
fn damaged_links_are_errors_not_panics() {
    let v = &fixture().vol;
    // The LX symlink whose length was inflated: still a link, reading it is an error.
    let c = id("wsl/corrupt");
    assert_eq!(v.stat(c).unwrap().kind, FileKind::Symlink);
    let e = v.read_link(c).unwrap_err();
    assert!(matches!(e, vmsnapfs_ntfs::Error::Corrupt { .. }), "{e}");
    assert_eq!(
        std::io::Error::from(e).kind(),
        std::io::ErrorKind::InvalidData
    );
    for p in ["bad/magic", "bad/odd", "bad/short-device"] {
        assert!(v.read_link(id(p)).is_err(), "{p}");
    }
}

/// Every byte of an Interix symlink's record flipped in turn: never a panic.
#[test]
fn mutated_interix_link_never_panics() {
    let f = fixture();
    let bytes = std::fs::read(&f.img).unwrap();
    let needle: Vec<u8> = interix_link("target.txt");
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("Interix link data in the image");
    for i in 0..needle.len() + 8 {
        let mut img = bytes.clone();
        img[at + i] ^= 0x5a;
        let v = Volume::open(Arc::new(img)).unwrap();
        let l = v.lookup_path("ix/rel").unwrap().unwrap();
        let _ = v.stat(l);
        let _ = v.read_link(l);
        let _ = v.read_dir(v.lookup_path("ix").unwrap().unwrap());
    }
}
