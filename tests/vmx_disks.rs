//! Disks a .vmx attaches are never lost in silence: a disk on a controller with no
//! `.present` line is served (with a note in status.json), and a disk line that cannot
//! be served (its file is missing) is an error in status.json, in inspect, and the log,
//! while the VM's other disks are still served. Checked through inspect and a mount,
//! against qemu-img's reading of the same chains.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// winvm's folder with its .vmx edited: no `scsi0.present` line, and (if `missing`) a
/// third disk line whose file does not exist.
fn edited_winvm(missing: bool) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/vms/winvm");
    let dir = scratch("vmx-disks").join("winvm");
    fs::create_dir_all(&dir).unwrap();
    for e in fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let vmx = fs::read_to_string(dir.join("winvm.vmx")).unwrap();
    let mut text: String = vmx
        .lines()
        .filter(|l| !l.starts_with("scsi0.present"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!text.contains("scsi0.present"));
    if missing {
        text.push_str("scsi0:2.present = \"TRUE\"\nscsi0:2.fileName = \"gone.vmdk\"\n");
    }
    fs::write(dir.join("winvm.vmx"), text).unwrap();
    dir
}

fn inspect(path: &Path) -> (bool, serde_json::Value, String) {
    let out = Command::new(bin())
        .args(["inspect", "--json"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn undeclared_controller_keeps_its_disks_in_inspect() {
    let dir = edited_winvm(false);
    let (ok, report, stderr) = inspect(&dir);
    assert!(ok, "{stderr}");
    let disks = report["vms"][0]["disks"].as_array().unwrap();
    let files: Vec<&str> = disks.iter().map(|d| d["file"].as_str().unwrap()).collect();
    assert_eq!(files, ["winvm.vmdk", "data-000002.vmdk"]);
    for d in disks {
        let notes = d["notes"].as_array().expect("a note on each disk");
        assert!(notes[0].as_str().unwrap().contains("scsi0.present"), "{d}");
    }
}

#[test]
fn missing_disk_file_is_an_error_not_a_gap_in_silence() {
    let dir = edited_winvm(true);
    let (ok, report, stderr) = inspect(&dir);
    assert!(!ok, "a disk that cannot be read fails inspect");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("gone.vmdk"), "{stderr}");
    let disks = report["vms"][0]["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 3);
    assert_eq!(disks[2]["index"], 2);
    assert!(disks[2]["error"].as_str().unwrap().contains("gone.vmdk"));
    assert!(disks[0]["error"].is_null() && disks[1]["error"].is_null());
}

#[test]
fn mount_serves_every_disk_it_can_and_says_what_was_odd() {
    require("qemu-img");
    let dir = edited_winvm(true);
    let m = Mount::new(&dir, &[]);
    let st: serde_json::Value =
        serde_json::from_slice(&fs::read(m.mp.join("status.json")).unwrap()).unwrap();
    let disks = st["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 2, "{st}");
    for (n, d) in disks.iter().enumerate() {
        assert_eq!(d["index"], n);
        assert!(
            d["notes"][0].as_str().unwrap().contains("scsi0.present"),
            "{d}"
        );
        let head = Path::new(d["chain"][0].as_str().unwrap());
        let oracle = qemu_raw(head);
        let flat = m.mp.join(format!("disks/disk{n}-flat.vmdk"));
        assert_eq!(sha256_file(&flat), sha256_file(&oracle), "disk{n}");
        fs::remove_file(&oracle).unwrap();
    }
    let unserved = st["unserved_disks"].as_array().unwrap();
    assert_eq!(unserved.len(), 1);
    assert_eq!(unserved[0]["index"], 2);
    assert_eq!(unserved[0]["file"], "gone.vmdk");
    let errors: Vec<&str> = st["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("disk2") && e.contains("gone.vmdk")),
        "{errors:?}"
    );
    let mut listed: Vec<String> = fs::read_dir(m.mp.join("disks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "disk0-flat.vmdk",
            "disk0.vmdk",
            "disk1-flat.vmdk",
            "disk1.vmdk"
        ]
    );
    // The frozen .vmx names the served disks' new places and keeps the missing line.
    let vmx = fs::read_to_string(m.mp.join("winvm.vmx")).unwrap();
    assert!(
        vmx.contains("scsi0:1.fileName = \"disks/disk1.vmdk\""),
        "{vmx}"
    );
    assert!(vmx.contains("scsi0:2.fileName = \"gone.vmdk\""), "{vmx}");
    m.umount();
}
