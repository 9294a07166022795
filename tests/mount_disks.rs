//! Disk images, descriptors, .vmx and status.json through a real mount, checked against
//! qemu-img's reading of the same chains.

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;

use common::*;

fn status(vm: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(vm.join("status.json")).unwrap()).unwrap()
}

#[test]
fn every_disk_equals_qemu_img_and_descriptors_open_in_qemu_img() {
    require("qemu-img");
    let fx = fixtures();
    let m = Mount::new(fx, &[]);
    let mut vms: Vec<String> = fs::read_dir(&m.mp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    vms.sort();
    // winvm (3-link chain), dosvm (streamOptimized) and one VM per qemu-img subformat.
    assert!(vms.len() >= 7, "{vms:?}");
    for vm in &vms {
        let dir = m.mp.join(vm);
        let st = status(&dir);
        let disks = st["disks"].as_array().unwrap();
        assert!(!disks.is_empty(), "{vm}: no disks");
        for (n, d) in disks.iter().enumerate() {
            let head = Path::new(d["chain"][0].as_str().unwrap());
            let oracle = qemu_raw(head);
            let flat = dir.join(format!("disks/disk{n}-flat.vmdk"));
            assert_eq!(
                fs::metadata(&flat).unwrap().len(),
                fs::metadata(&oracle).unwrap().len()
            );
            assert_eq!(
                sha256_file(&flat),
                sha256_file(&oracle),
                "{vm} disk{n}: flat image differs from qemu-img convert of {}",
                head.display()
            );
            // The synthesized descriptor makes disks/ an image qemu-img can open.
            let via_desc = qemu_raw(&dir.join(format!("disks/disk{n}.vmdk")));
            assert_eq!(sha256_file(&via_desc), sha256_file(&oracle), "{vm} disk{n}");
            fs::remove_file(&via_desc).unwrap();
            fs::remove_file(&oracle).unwrap();
        }
    }
    let winvm = status(&m.mp.join("winvm"));
    assert_eq!(winvm["disks"][1]["chain"].as_array().unwrap().len(), 3);
    m.umount();
}

#[test]
fn vmx_is_rewritten_and_status_reports_volumes() {
    let m = Mount::new(fixtures(), &[]);
    let vm = m.mp.join("winvm");
    let vmx = fs::read_to_string(vm.join("winvm.vmx")).unwrap();
    let orig = fs::read_to_string(fixtures().join("winvm/winvm.vmx")).unwrap();
    assert!(
        vmx.contains("scsi0:0.fileName = \"disks/disk0.vmdk\""),
        "{vmx}"
    );
    assert!(
        vmx.contains("scsi0:1.fileName = \"disks/disk1.vmdk\""),
        "{vmx}"
    );
    // Everything else is kept as it was.
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("fileName"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&vmx), strip(&orig));
    let st = status(&vm);
    assert_eq!(st["vm"], "winvm");
    assert_eq!(st["quiesced"], false);
    assert!(st["source"].as_str().unwrap().starts_with("local:"));
    let vols: Vec<(String, String)> = st["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| !v["fs"].is_null())
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["fs"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("disk0p1", "ntfs"),
        ("disk0p2", "fat16"),
        ("disk1p1", "fat12"),
        ("disk1p5", "fat16"),
        ("disk1p6", "exfat"),
    ];
    for (n, f) in want {
        assert!(
            vols.contains(&(n.to_owned(), f.to_owned())),
            "{n} {f} missing in {vols:?}"
        );
    }
    let mut listed: Vec<String> = fs::read_dir(vm.join("volumes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, want.map(|(n, _)| n));
    assert_eq!(st["volumes"][0]["label"], "WINSYS");
    // An unpartitioned disk with a file system is volumes/disk<N>.
    assert!(m.mp.join("dosvm/volumes/disk0/AUTOEXEC.BAT").is_file());
    m.umount();
}

#[test]
fn writes_fail_with_erofs_and_modes_follow_options() {
    let m = Mount::new(fixtures(), &["uid=1234,gid=5678,umask=027"]);
    let vm = m.mp.join("dosvm");
    let erofs = |r: std::io::Result<()>| {
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EROFS));
    };
    erofs(fs::write(vm.join("new.txt"), b"x"));
    erofs(fs::create_dir(vm.join("d")));
    erofs(
        fs::OpenOptions::new()
            .write(true)
            .open(vm.join("dosvm.vmx"))
            .map(drop),
    );
    erofs(fs::remove_file(vm.join("dosvm.vmx")));
    erofs(fs::rename(vm.join("dosvm.vmx"), vm.join("x.vmx")));
    use std::os::unix::fs::MetadataExt;
    let f = fs::metadata(vm.join("volumes/disk0/AUTOEXEC.BAT")).unwrap();
    assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (1234, 5678, 0o440));
    let d = fs::metadata(vm.join("disks")).unwrap();
    assert_eq!(d.mode() & 0o7777, 0o550);
    let sfs = nix_statvfs(&vm);
    assert!(sfs.0 & libc::ST_RDONLY != 0, "statfs must say read-only");
    m.umount();
}

fn nix_statvfs(p: &Path) -> (u64, u64) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid NUL-terminated path and a zeroed out-struct.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    (s.f_flag, s.f_blocks)
}

/// SEEK_DATA/SEEK_HOLE: everything outside the data ranges must read as zeros, and
/// the ranges must cover the data qemu-img sees.
#[test]
fn seek_data_and_hole_describe_the_image() {
    let m = Mount::new(fixtures(), &[]);
    let flat = m.mp.join("winvm/disks/disk0-flat.vmdk");
    let data = fs::read(&flat).unwrap();
    let f = fs::File::open(&flat).unwrap();
    let fd = f.as_raw_fd();
    let size = data.len() as i64;
    let mut pos = 0i64;
    let mut covered = vec![false; data.len()];
    let mut ranges = 0;
    while pos < size {
        // SAFETY: plain lseek on an open descriptor.
        let start = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if start < 0 {
            break;
        }
        let end = unsafe { libc::lseek(fd, start, libc::SEEK_HOLE) };
        assert!(end > start && end <= size);
        covered[start as usize..end as usize].fill(true);
        ranges += 1;
        pos = end;
    }
    assert!(ranges > 0);
    let stray = data.iter().zip(&covered).position(|(b, c)| *b != 0 && !c);
    assert_eq!(stray, None, "non-zero byte outside every data range");
    assert!(
        covered.iter().filter(|c| !**c).count() > data.len() / 4,
        "no holes reported"
    );
    // cp --sparse=always reproduces the image.
    let copy = scratch("cp").join("copy.img");
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(&flat)
        .arg(&copy));
    assert_eq!(sha256_file(&copy), sha256_file(&flat));
    drop(f);
    m.umount();
}

/// SEEK_DATA/SEEK_HOLE on a sparse guest file follow its NTFS runs.
#[test]
fn seek_data_and_hole_on_a_sparse_guest_file() {
    let m = Mount::new(fixtures(), &[]);
    let f = fs::File::open(m.mp.join("winvm/volumes/disk0p1/sparse.dat")).unwrap();
    let fd = f.as_raw_fd();
    // SAFETY: plain lseek calls on an open descriptor.
    let seek = |off: i64, whence: i32| unsafe { libc::lseek(fd, off, whence) };
    assert_eq!(seek(0, libc::SEEK_DATA), 1 << 20);
    assert_eq!(seek(0, libc::SEEK_HOLE), 0);
    assert_eq!(seek(1 << 20, libc::SEEK_HOLE), (1 << 20) + 65536);
    assert_eq!(seek((1 << 20) + 65536, libc::SEEK_DATA), -1);
    drop(f);
    m.umount();
}

/// A single .vmdk as SOURCE: the mountpoint is that disk's VM folder, without a .vmx.
#[test]
fn a_single_vmdk_source_mounts_as_one_vm() {
    let disk = fixtures().join("dosvm/dosvm.vmdk");
    let m = Mount::new(&disk, &[]);
    let mut names: Vec<String> = fs::read_dir(&m.mp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["disks", "status.json", "volumes"]);
    let oracle = qemu_raw(&disk);
    assert_eq!(
        sha256_file(&m.mp.join("disks/disk0-flat.vmdk")),
        sha256_file(&oracle)
    );
    assert!(m.mp.join("volumes/disk0/AUTOEXEC.BAT").is_file());
    m.umount();
}

#[test]
fn direct_io_images_read_the_same_by_any_read_size_and_mmap() {
    require("qemu-img");
    require("python3");
    let m = Mount::new(fixtures(), &["direct_io"]);
    let dir = m.mp.join("winvm");
    let st = status(&dir);
    for (n, d) in st["disks"].as_array().unwrap().iter().enumerate() {
        let oracle = qemu_raw(Path::new(d["chain"][0].as_str().unwrap()));
        let want = fs::read(&oracle).unwrap();
        let flat = dir.join(format!("disks/disk{n}-flat.vmdk"));
        // Big reads, small odd-sized ones (each its own request here), and mmap.
        assert!(fs::read(&flat).unwrap() == want, "disk{n}: whole-file read");
        assert!(
            read_in_pieces(&flat, 4097) == want,
            "disk{n}: 4097-byte reads"
        );
        // Nothing of it went through the page cache.
        assert_eq!(
            page_cached(&flat),
            0,
            "disk{n}: page cache holds some of it"
        );
        assert_eq!(sha256_mmap(&flat), sha256_file(&oracle), "disk{n}: mmap");
        // And qemu-img reads the folder's descriptor through it.
        let via_desc = qemu_raw(&dir.join(format!("disks/disk{n}.vmdk")));
        assert_eq!(sha256_file(&via_desc), sha256_file(&oracle), "disk{n}");
        fs::remove_file(&via_desc).unwrap();
        fs::remove_file(&oracle).unwrap();
    }
    m.umount();
}
