//! Flat disk images opened in FUSE passthrough: the kernel reads the disk's own file, so
//! reads never reach the server (no reply spliced or written), and the bytes are what
//! qemu-img reads; disks that are not one whole file are served as before.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Whether this kernel can pass opens through (Linux 6.9+ built with it).
fn kernel_passes_through() -> bool {
    let config = Command::new("sh")
        .args([
            "-c",
            "zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    config.lines().any(|l| l == "CONFIG_FUSE_PASSTHROUGH=y")
}

fn qemu_img(args: &[&str]) {
    run(Command::new("qemu-img").args(args));
}

/// A VM whose disks are, in order: monolithicFlat, twoGbMaxExtentFlat (one extent file),
/// monolithicSparse, and a monolithicFlat base under a sparse snapshot link that qemu-io
/// wrote into; all made by qemu-img from the same random bytes.
fn flat_vm() -> PathBuf {
    require("qemu-img");
    require("qemu-io");
    let vm = scratch("ptvm").join("ptvm");
    fs::create_dir_all(&vm).unwrap();
    let raw = vm.join("src.raw");
    let mut data = pseudo_random(24 << 20, 1);
    // A stretch of zeros, so the sparse disks have an unallocated grain to fall through.
    data[8 << 20..9 << 20].fill(0);
    fs::write(&raw, &data).unwrap();
    let r = raw.to_str().unwrap();
    let at = |n: &str| vm.join(n).to_str().unwrap().to_owned();
    for (name, sub) in [
        ("flat.vmdk", "monolithicFlat"),
        ("two.vmdk", "twoGbMaxExtentFlat"),
        ("sparse.vmdk", "monolithicSparse"),
        ("base.vmdk", "monolithicFlat"),
    ] {
        let o = format!("subformat={sub}");
        qemu_img(&["convert", "-f", "raw", "-O", "vmdk", "-o", &o, r, &at(name)]);
    }
    qemu_img(&[
        "create",
        "-f",
        "vmdk",
        "-F",
        "vmdk",
        "-b",
        "base.vmdk",
        &at("snap.vmdk"),
    ]);
    run(Command::new("qemu-io")
        .args(["-f", "vmdk", "-c", "write -P 0x5a 3M 192k"])
        .arg(vm.join("snap.vmdk")));
    fs::remove_file(&raw).unwrap();
    let mut vmx = String::from("config.version = \"8\"\ndisplayName = \"ptvm\"\n");
    for (i, f) in ["flat.vmdk", "two.vmdk", "sparse.vmdk", "snap.vmdk"]
        .iter()
        .enumerate()
    {
        vmx += &format!("scsi0:{i}.present = \"TRUE\"\nscsi0:{i}.fileName = \"{f}\"\n");
    }
    fs::write(vm.join("ptvm.vmx"), vmx).unwrap();
    vm
}

/// sha256 of `path` read by `dd iflag=direct` (the reader's own O_DIRECT open).
fn sha256_direct(path: &Path) -> String {
    let script = format!(
        "dd if='{}' iflag=direct bs=1M status=none | sha256sum",
        path.display()
    );
    run(Command::new("sh").args(["-c", &script]))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn flat_disks_pass_through_and_read_as_qemu_img_reads_them() {
    require("python3");
    require("getfattr");
    if !kernel_passes_through() {
        skipped("this kernel has no FUSE passthrough (CONFIG_FUSE_PASSTHROUGH)");
        return;
    }
    let vm = flat_vm();
    let oracles: Vec<(Vec<u8>, String)> = ["flat", "two", "sparse", "snap"]
        .iter()
        .map(|d| {
            let raw = qemu_raw(&vm.join(format!("{d}.vmdk")));
            let sha = sha256_file(&raw);
            (fs::read(&raw).unwrap(), sha)
        })
        .collect();
    assert!(
        oracles[3].0 != oracles[0].0,
        "qemu-io wrote into the snapshot"
    );
    // Which disks pass through: mount options → per disk.
    for (opts, through) in [
        ("", [true, true, false, false]),
        ("direct_io", [true, true, false, false]),
        ("passthrough=off", [false; 4]),
    ] {
        let m = Mount::new(vm.parent().unwrap(), &[opts]);
        let disks = m.mp.join("ptvm/disks");
        for (n, (want, sha)) in oracles.iter().enumerate() {
            let img = disks.join(format!("disk{n}-flat.vmdk"));
            let (p0, s0) = (passed_through(&m.mp), spliced(&m.mp));
            // Held open across the other reads: every open of the inode shares it.
            let held = fs::File::open(&img).unwrap();
            assert!(
                read_in_pieces(&img, 1 << 20) == *want,
                "{opts}: disk{n} 1 MiB"
            );
            assert!(read_in_pieces(&img, 4097) == *want, "{opts}: disk{n} 4097");
            assert_eq!(sha256_mmap(&img), *sha, "{opts}: disk{n} mmap");
            assert_eq!(sha256_direct(&img), *sha, "{opts}: disk{n} O_DIRECT");
            drop(held);
            let (opened, replies) = (passed_through(&m.mp) - p0, spliced(&m.mp) - s0);
            println!("{opts:?} disk{n}: {opened} opens passed through, {replies} spliced");
            if through[n] {
                assert_eq!(opened, 5, "{opts}: disk{n}: every open passed through");
                assert_eq!(replies, 0, "{opts}: disk{n}: a read reached the server");
            } else {
                assert_eq!(opened, 0, "{opts}: disk{n} passed through");
                // Served by us: the big reads of its file's bytes are spliced.
                assert!(replies > 0, "{opts}: disk{n}: no read reached the server");
            }
        }
        // SEEK_DATA still comes to us and answers the image's allocation.
        let f = fs::File::open(disks.join("disk0-flat.vmdk")).unwrap();
        let data = nix::unistd::lseek(&f, 0, nix::unistd::Whence::SeekData).unwrap();
        assert_eq!(data, 0, "{opts}");
        drop(f);
        m.umount();
    }
}

/// A flat file that shrinks under a frozen VM: a read of it gives EIO when we serve it;
/// passed through, the kernel reads short, and the close fails with EIO instead. Both
/// leave the error in status.json.
#[test]
fn a_flat_file_that_shrinks_fails_the_read_or_the_close() {
    use std::os::unix::fs::FileExt;
    if !kernel_passes_through() {
        skipped("this kernel has no FUSE passthrough (CONFIG_FUSE_PASSTHROUGH)");
        return;
    }
    for opts in ["passthrough=off", ""] {
        let vm = flat_vm();
        let m = Mount::new(&vm, &[opts]);
        let img = m.mp.join("disks/disk0-flat.vmdk");
        assert_eq!(fs::metadata(&img).unwrap().len(), 24 << 20);
        let f = fs::File::open(&img).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(vm.join("flat-flat.vmdk"))
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let read = f.read_at(&mut buf, 16 << 20);
        let closed = nix::unistd::close(f);
        if opts.is_empty() {
            assert_eq!(read.unwrap(), 0, "passed through: the kernel reads short");
            assert_eq!(closed, Err(nix::errno::Errno::EIO), "the close reports it");
            assert!(passed_through(&m.mp) > 0);
        } else {
            assert_eq!(read.unwrap_err().raw_os_error(), Some(libc::EIO));
            assert_eq!(closed, Ok(()));
        }
        let st: serde_json::Value =
            serde_json::from_slice(&fs::read(m.mp.join("status.json")).unwrap()).unwrap();
        let errors = st["errors"].to_string();
        assert!(errors.contains("disk0: read at"), "{opts}: {errors}");
        m.umount();
    }
}
