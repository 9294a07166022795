//! `vmsnapfs inspect` on VM folders built by fixtures/build.sh, checked against what
//! qemu-img, sfdisk and blkid say about the same disks.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn tool(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (scripts/test.sh installs the tools the tests need)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn inspect(path: &Path) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmsnapfs"))
        .args(["inspect", "--json"])
        .arg(path)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn build_fixtures() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("vms");
    tool(
        Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/build.sh"))
            .arg(&out)
            .arg("--all"),
    );
    (tmp, out)
}

/// What blkid, probing the raw bytes at that window, calls the file system there.
fn blkid(raw: &Path, offset: u64, size: u64) -> Option<String> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export", "-O", &offset.to_string()])
        .args(["-S", &size.to_string()])
        .arg(raw)
        .output()
        .expect("blkid (util-linux) must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
    };
    match field("TYPE")?.as_str() {
        "vfat" => Some(field("VERSION")?.to_ascii_lowercase()),
        "ntfs" => Some("ntfs".into()),
        "exfat" => Some("exfat".into()),
        _ => None,
    }
}

fn check_disk(vm_dir: &Path, disk: &Value, scratch: &Path) {
    let file = disk["file"].as_str().unwrap();
    let head = vm_dir.join(file);
    let info: Value = serde_json::from_str(&tool(
        Command::new("qemu-img")
            .args(["info", "--backing-chain", "--output=json"])
            .arg(&head),
    ))
    .unwrap();
    let links = info.as_array().unwrap();
    assert_eq!(
        disk["capacity"].as_u64().unwrap(),
        links[0]["virtual-size"].as_u64().unwrap(),
        "{file}: capacity"
    );
    let chain: Vec<String> = links
        .iter()
        .map(|l| {
            Path::new(l["filename"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let ours: Vec<String> = disk["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ours, chain, "{file}: chain, head first");

    let raw = scratch.join("disk.raw");
    tool(
        Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(&head)
            .arg(&raw),
    );
    let table: Option<Value> = Command::new("sfdisk")
        .arg("--json")
        .arg(&raw)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        // A FAT boot sector ends in 0x55AA too: sfdisk reports an empty "dos" label.
        .filter(|t| t["partitiontable"]["partitions"].is_array());
    let parts = disk["partitions"].as_array().unwrap();
    match table {
        None => {
            assert!(parts.is_empty(), "{file}: sfdisk sees no table");
            assert_eq!(
                disk["filesystem"].as_str().map(str::to_string),
                blkid(&raw, 0, disk["capacity"].as_u64().unwrap()),
                "{file}: whole-disk file system"
            );
        }
        Some(t) => {
            let t = &t["partitiontable"];
            let want: Vec<(u64, u64)> = t["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| !matches!(p["type"].as_str(), Some("5" | "f" | "85")))
                .map(|p| {
                    (
                        p["start"].as_u64().unwrap() * 512,
                        p["size"].as_u64().unwrap() * 512,
                    )
                })
                .collect();
            let got: Vec<(u64, u64)> = parts
                .iter()
                .map(|p| (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap()))
                .collect();
            assert_eq!(got, want, "{file}: partitions");
            for p in parts {
                let (start, size) = (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap());
                assert_eq!(
                    p["filesystem"].as_str().map(str::to_string),
                    blkid(&raw, start, size),
                    "{file}: file system of partition {}",
                    p["number"]
                );
            }
        }
    }
    std::fs::remove_file(&raw).unwrap();
}

#[test]
fn inspect_matches_qemu_img_sfdisk_and_blkid() {
    let (tmp, vms) = build_fixtures();
    let (ok, report, stderr) = inspect(&vms);
    assert!(ok, "inspect failed: {stderr}");
    let listed: Vec<&str> = report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "dosvm",
            "sub-monolithicFlat",
            "sub-monolithicSparse",
            "sub-streamOptimized",
            "sub-twoGbMaxExtentFlat",
            "sub-twoGbMaxExtentSparse",
            "winvm"
        ]
    );
    let mut filesystems = Vec::new();
    for vm in report["vms"].as_array().unwrap() {
        let dir = vms.join(vm["name"].as_str().unwrap());
        for (i, disk) in vm["disks"].as_array().unwrap().iter().enumerate() {
            assert_eq!(disk["index"].as_u64(), Some(i as u64));
            check_disk(&dir, disk, tmp.path());
            filesystems.extend(disk["filesystem"].as_str().map(str::to_string));
            for p in disk["partitions"].as_array().unwrap() {
                filesystems.extend(p["filesystem"].as_str().map(str::to_string));
            }
        }
    }
    for fs in ["ntfs", "fat12", "fat16", "exfat"] {
        assert!(filesystems.iter().any(|f| f == fs), "no {fs} volume seen");
    }
    // The .vmx decides the disks and their order: winvm's second disk is the chain head.
    let winvm = &report["vms"][6]["disks"];
    assert_eq!(winvm[1]["chain"][0], "data-000002.vmdk");
    assert_eq!(winvm[1]["chain"].as_array().unwrap().len(), 3);

    // A single VM folder and a single .vmdk.
    let (ok, one, _) = inspect(&vms.join("winvm"));
    assert!(ok);
    assert_eq!(one["vms"].as_array().unwrap().len(), 1);
    let (ok, disk, _) = inspect(&vms.join("dosvm/dosvm.vmdk"));
    assert!(ok);
    assert_eq!(disk["vms"][0]["name"], "dosvm");
    assert_eq!(disk["vms"][0]["disks"][0]["filesystem"], "fat16");
}

#[test]
fn missing_extent_is_one_line_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    tool(
        Command::new("qemu-img")
            .args([
                "create",
                "-q",
                "-f",
                "vmdk",
                "-o",
                "subformat=twoGbMaxExtentFlat",
            ])
            .arg(d.join("vm.vmdk"))
            .arg("8M"),
    );
    let extent = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n != "vm.vmdk")
        .expect("qemu-img wrote an extent file");
    std::fs::remove_file(d.join(&extent)).unwrap();
    let (ok, _, stderr) = inspect(&d.join("vm.vmdk"));
    assert!(!ok);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(&extent), "{stderr}");

    let (ok, _, stderr) = inspect(&d.join("nothing-here"));
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn shared_testdata_images() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata");
    if !data.exists() {
        common::skipped(&format!("{} is absent", data.display()));
        return;
    }
    let sizes = std::fs::read_to_string(data.join("vmdk-raw.sha256")).unwrap();
    for line in sizes.lines() {
        let mut f = line.split('\t');
        let (name, size) = (f.next().unwrap(), f.next().unwrap());
        let (ok, report, stderr) = inspect(&data.join("vmdk").join(name));
        assert!(ok, "{name}: {stderr}");
        assert_eq!(
            report["vms"][0]["disks"][0]["capacity"]
                .as_u64()
                .unwrap()
                .to_string(),
            size,
            "{name}"
        );
    }
    let (ok, report, stderr) = inspect(&data.join("vmdk/monolithicSparse.vmdk"));
    assert!(ok, "{stderr}");
    let p1 = &report["vms"][0]["disks"][0]["partitions"][0];
    assert_eq!(
        (p1["number"].as_u64(), p1["start"].as_u64()),
        (Some(1), Some(65536))
    );
    assert_eq!(p1["filesystem"], "ntfs");
    let (ok, _, stderr) = inspect(&data.join("vmdk/vmfs_thick-000001.vmdk"));
    assert!(!ok);
    assert!(stderr.contains("vmfs_thick-000001-delta.vmdk"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
}
