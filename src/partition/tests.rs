//! Tables written by sfdisk and sgdisk, read back by us and compared with `sfdisk --json`.

use std::path::Path;
use std::process::Command;

use vmsnapfs_io::FileSource;

use super::*;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (is the tool installed? scripts/test.sh installs it)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn blank_disk(path: &Path, bytes: u64) {
    std::fs::File::create(path).unwrap().set_len(bytes).unwrap();
}

fn sfdisk(path: &Path, script: &str) {
    use std::io::Write;
    let mut child = Command::new("sfdisk")
        .args(["--no-reread", "--no-tell-kernel", "-q"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sfdisk (util-linux fdisk package) must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// (number, start byte, size bytes, type) as sfdisk itself reads the table.
fn oracle(path: &Path) -> Vec<(u32, u64, u64, String)> {
    let json = run(Command::new("sfdisk").arg("--json").arg(path));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let table = &v["partitiontable"];
    let sector = table["sectorsize"].as_u64().unwrap_or(512);
    let dev = table["device"].as_str().unwrap().to_string();
    table["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            // sfdisk lists the extended container itself; it is not a volume.
            !matches!(p["type"].as_str(), Some("5") | Some("f") | Some("85"))
        })
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let number = node[dev.len()..].parse().unwrap();
            (
                number,
                p["start"].as_u64().unwrap() * sector,
                p["size"].as_u64().unwrap() * sector,
                p["type"].as_str().unwrap().to_ascii_lowercase(),
            )
        })
        .collect()
}

fn ours(path: &Path) -> (TableKind, Vec<(u32, u64, u64, String)>) {
    let disk = FileSource::open(path).unwrap();
    let (kind, parts) = read_table(&disk).unwrap();
    let simple = parts
        .into_iter()
        .map(|p| {
            let t = match kind {
                TableKind::Mbr => format!("{:x}", u8::from_str_radix(&p.type_id[2..], 16).unwrap()),
                _ => p.type_id.clone(),
            };
            (p.number, p.start, p.size, t)
        })
        .collect();
    (kind, simple)
}

#[test]
fn mbr_with_extended_and_logical_partitions_matches_sfdisk() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("mbr.img");
    blank_disk(&img, 64 << 20);
    sfdisk(
        &img,
        "label: dos\n\
         start=2048, size=8192, type=7\n\
         start=10240, size=4096, type=c, bootable\n\
         start=16384, type=5\n\
         start=18432, size=2048, type=83\n\
         start=22528, size=6000, type=7\n\
         start=30720, size=4096, type=b\n",
    );
    let (kind, got) = ours(&img);
    assert_eq!(kind, TableKind::Mbr);
    let want = oracle(&img);
    assert_eq!(got, want);
    assert_eq!(
        got.iter().map(|p| p.0).collect::<Vec<_>>(),
        [1, 2, 5, 6, 7],
        "Linux numbering: primaries by slot, logicals from 5"
    );
}

#[test]
fn gpt_matches_sfdisk_and_keeps_names_and_types() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("gpt.img");
    blank_disk(&img, 64 << 20);
    run(Command::new("sgdisk")
        .args([
            "-n",
            "1:2048:+8M",
            "-t",
            "1:ef00",
            "-c",
            "1:EFI system partition",
        ])
        .args([
            "-n",
            "2:0:+1M",
            "-t",
            "2:0c01",
            "-c",
            "2:Microsoft reserved partition",
        ])
        .args(["-n", "3:0:+20M", "-t", "3:0700", "-c", "3:Basic data ü"])
        .args(["-n", "5:0:+4M", "-t", "5:8300"])
        .arg(&img));
    let (kind, got) = ours(&img);
    assert_eq!(kind, TableKind::Gpt);
    assert_eq!(got, oracle(&img));
    let disk = FileSource::open(&img).unwrap();
    let (_, parts) = read_table(&disk).unwrap();
    assert_eq!(parts[0].type_name, "EFI system");
    assert_eq!(parts[0].name.as_deref(), Some("EFI system partition"));
    assert_eq!(parts[2].type_name, "Microsoft basic data");
    assert_eq!(parts[2].name.as_deref(), Some("Basic data ü"));
    assert_eq!(parts[3].number, 5, "GPT numbers are slots, gaps kept");
}

fn corrupt(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

#[test]
fn damaged_primary_gpt_falls_back_to_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("gpt.img");
    blank_disk(&img, 32 << 20);
    run(Command::new("sgdisk")
        .args(["-n", "1:2048:+4M", "-n", "2:0:+4M", "-c", "2:second"])
        .arg(&img));
    let want = oracle(&img);
    // A broken primary header CRC...
    corrupt(&img, 512 + 16, &[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(ours(&img).1, want);
    // ...and, separately, a primary entry array that fails its CRC.
    blank_disk(&img, 0);
    blank_disk(&img, 32 << 20);
    run(Command::new("sgdisk")
        .args(["-n", "1:2048:+4M", "-n", "2:0:+4M", "-c", "2:second"])
        .arg(&img));
    corrupt(&img, 1024 + 128 + 56, b"X\0");
    assert_eq!(ours(&img).1, want);
    // Both copies gone: a clear error, not a guess.
    let last = (32u64 << 20) - 512;
    corrupt(&img, last, b"NOT GPT!");
    let disk = FileSource::open(&img).unwrap();
    let err = read_table(&disk).unwrap_err();
    assert!(matches!(err, PartitionError::GptDamaged { .. }), "{err}");
}

#[test]
fn ebr_loop_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("loop.img");
    blank_disk(&img, 32 << 20);
    sfdisk(
        &img,
        "label: dos\nstart=2048, type=5\nstart=4096, size=2048, type=83\nstart=8192, size=2048, type=83\n",
    );
    // The second EBR's link entry points back at the first EBR (relative sector 0).
    let disk = FileSource::open(&img).unwrap();
    assert_eq!(read_table(&disk).unwrap().1.len(), 2);
    let second_ebr = {
        let ext_start = 2048u64;
        let mut s = [0u8; 512];
        disk.read_at(ext_start * 512, &mut s).unwrap();
        ext_start
            + u64::from(u32::from_le_bytes(
                s[446 + 16 + 8..446 + 16 + 12].try_into().unwrap(),
            ))
    };
    corrupt(
        &img,
        second_ebr * 512 + 446 + 16,
        &[0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0],
    );
    let disk = FileSource::open(&img).unwrap();
    let err = read_table(&disk).unwrap_err();
    assert!(err.to_string().contains("links back"), "{err}");
}

#[test]
fn whole_disk_file_system_or_blank_disk_has_no_table() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("fat.img");
    blank_disk(&img, 16 << 20);
    run(Command::new("mkfs.vfat").arg("-F").arg("16").arg(&img));
    let disk = FileSource::open(&img).unwrap();
    assert_eq!(read_table(&disk).unwrap(), (TableKind::None, vec![]));
    assert_eq!(
        crate::detect::detect(&disk),
        Some(crate::detect::FsKind::Fat16)
    );

    let blank = tmp.path().join("blank.img");
    blank_disk(&blank, 1 << 20);
    let disk = FileSource::open(&blank).unwrap();
    assert_eq!(read_table(&disk).unwrap(), (TableKind::None, vec![]));
    let tiny: Vec<u8> = vec![0x55; 100];
    assert_eq!(read_table(&tiny).unwrap(), (TableKind::None, vec![]));
}

#[test]
fn partitions_past_the_disk_end_are_trimmed_or_dropped() {
    let mut disk = vec![0u8; 2 << 20];
    disk[510] = 0x55;
    disk[511] = 0xAA;
    let entry = |slot: usize, lba: u32, sectors: u32, disk: &mut Vec<u8>| {
        let e = &mut disk[446 + slot * 16..446 + (slot + 1) * 16];
        e[4] = 0x83;
        e[8..12].copy_from_slice(&lba.to_le_bytes());
        e[12..16].copy_from_slice(&sectors.to_le_bytes());
    };
    entry(0, 2048, u32::MAX, &mut disk);
    entry(1, u32::MAX, 100, &mut disk);
    entry(2, 100, 100, &mut disk);
    let (_, parts) = read_table(&disk).unwrap();
    let numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 3], "{parts:?}");
    assert_eq!(
        parts[0].start + parts[0].size,
        2 << 20,
        "trimmed to the disk"
    );
}

#[test]
fn random_mutations_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("m.img");
    blank_disk(&img, 8 << 20);
    sfdisk(
        &img,
        "label: dos\nstart=2048, size=2048, type=7\nstart=4096, size=12000, type=5\nsize=1024, type=83\nsize=1024, type=83\n",
    );
    let mbr = std::fs::read(&img).unwrap();
    let gimg = tmp.path().join("g.img");
    blank_disk(&gimg, 8 << 20);
    run(Command::new("sgdisk")
        .args(["-n", "1:2048:+1M", "-n", "2:0:+1M"])
        .arg(&gimg));
    let gpt = std::fs::read(&gimg).unwrap();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Mutate only where the tables live, so every iteration exercises the parsers.
    let hot: Vec<u64> = (0..512)
        .chain(4096 * 512..4096 * 512 + 512)
        .chain(8192 * 512..8192 * 512 + 512)
        .collect();
    for round in 0..3000 {
        let (mut img, extra) = if round % 2 == 0 {
            (mbr.clone(), 0)
        } else {
            (gpt.clone(), 512 * 40)
        };
        for _ in 0..(next() % 8 + 1) {
            let r = next();
            let off = if extra > 0 {
                (r >> 8) % (512 * 33)
                    + if r & 1 == 0 {
                        0
                    } else {
                        img.len() as u64 - 512 * 33
                    }
            } else {
                hot[(r >> 8) as usize % hot.len()]
            };
            img[off as usize] = (r & 0xff) as u8;
        }
        let _ = read_table(&img);
    }
}
