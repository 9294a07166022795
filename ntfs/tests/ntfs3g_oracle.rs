//! One volume made by mkntfs and populated through ntfs-3g with everything the reader
//! must handle; our view is compared with Sleuth Kit's and with ntfs-3g's own.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use vmsnapfs_ntfs::{attr, FileId, FileKind, LinkKind, Volume};

struct Fixture {
    _dir: tempfile::TempDir,
    img: PathBuf,
    vol: Volume,
}

const BIG_DIR_ENTRIES: usize = 10_000;
const HARD_LINKS: usize = 45;

fn long_name(i: usize) -> String {
    format!("{i:03}-{}", "hard-link-with-a-long-name-".repeat(7))
}

fn nested_path() -> String {
    (1..=30)
        .map(|i| format!("level{i:02}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Raw reparse data for a Windows symlink or junction.
fn link_reparse(sub: &str, print: &str, relative: bool, junction: bool) -> String {
    let s: Vec<u8> = sub.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let p: Vec<u8> = print.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let mut body = Vec::new();
    let tag: u32 = if junction { 0xA000_0003 } else { 0xA000_000C };
    if junction {
        for v in [0u16, s.len() as u16, s.len() as u16 + 2, p.len() as u16] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&s);
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&p);
        body.extend_from_slice(&[0, 0]);
    } else {
        for v in [0u16, s.len() as u16, s.len() as u16, p.len() as u16] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&(relative as u32).to_le_bytes());
        body.extend_from_slice(&s);
        body.extend_from_slice(&p);
    }
    let mut d = tag.to_le_bytes().to_vec();
    d.extend_from_slice(&(body.len() as u16).to_le_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(&body);
    format!("0x{}", hex(&d))
}

fn setfattr(name: &str, value: &str, path: &Path) {
    run(
        "setfattr",
        &["-n", name, "-v", value, path.to_str().unwrap()],
    );
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn populate(m: &Path) {
    let p = |s: &str| m.join(s);
    std::fs::create_dir(p("plain")).unwrap();
    write(&p("plain/empty"), b"");
    write(&p("plain/one"), b"1");
    write(&p("plain/resident"), &prng_bytes(1, 700));
    write(&p("plain/small"), &prng_bytes(2, 5000));
    // Distinct timestamps, so a swapped field would show.
    let one = p("plain/one");
    let one = one.to_str().unwrap();
    run(
        "touch",
        &["-m", "-d", "2001-01-01 00:00:00.123456789 UTC", one],
    );
    run("touch", &["-a", "-d", "2002-02-02 12:00:00 UTC", one]);
    write(&p("plain/large"), &prng_bytes(3, 1_300_000));

    std::fs::create_dir(p("big")).unwrap();
    for i in 0..BIG_DIR_ENTRIES {
        std::fs::File::create(p(&format!("big/entry-{i:05}"))).unwrap();
    }
    write(&p("big/with-data"), b"data among many");

    std::fs::create_dir(p("unicode")).unwrap();
    for n in [
        "héllo wörld.txt",
        "日本語ファイル.txt",
        "😀 emoji.txt",
        "Ωμέγα",
        "MiXeD CaSe",
    ] {
        write(&p(&format!("unicode/{n}")), n.as_bytes());
    }
    // POSIX-namespace names that differ only in case are distinct files.
    for n in ["case", "CASE", "Case", "cAsE"] {
        write(&p(&format!("unicode/{n}")), n.as_bytes());
    }
    let name255 = format!("{}.txt", "n".repeat(251));
    write(&p(&format!("unicode/{name255}")), b"255 characters");

    let nest = nested_path();
    std::fs::create_dir_all(p(&nest)).unwrap();
    write(&p(&format!("{nest}/deep.txt")), b"thirty levels down");

    // Sparse: ntfs-3g leaves holes where nothing was written.
    {
        let mut f = std::fs::File::create(p("sparse.bin")).unwrap();
        f.write_all(&prng_bytes(4, 4096)).unwrap();
        f.seek(SeekFrom::Start(8 << 20)).unwrap();
        f.write_all(&prng_bytes(5, 10000)).unwrap();
        f.seek(SeekFrom::Start((20 << 20) - 1)).unwrap();
        f.write_all(b"z").unwrap();
    }

    std::fs::create_dir(p("comp")).unwrap();
    setfattr("system.ntfs_attrib_be", "0x00000800", &p("comp"));
    write(&p("comp/text"), &text_bytes(300_000));
    write(&p("comp/random"), &prng_bytes(6, 100_000));
    let mut mixed = vec![0u8; 131072];
    mixed.extend(text_bytes(70_000));
    mixed.extend(prng_bytes(7, 50_000));
    mixed.extend(vec![0u8; 70_000]);
    mixed.extend(text_bytes(1234));
    write(&p("comp/mixed"), &mixed);
    write(&p("comp/tiny"), b"tiny compressed");

    write(&p("ads.txt"), b"main stream");
    write(&p("ads.txt:small"), b"alternate");
    write(&p("ads.txt:big"), &prng_bytes(8, 100_000));
    write(
        &p("ads.txt:Zone.Identifier"),
        b"[ZoneTransfer]\r\nZoneId=3\r\n",
    );

    std::fs::create_dir(p("hl")).unwrap();
    write(&p("hl/orig.dat"), &prng_bytes(9, 3000));
    for i in 0..HARD_LINKS {
        std::fs::hard_link(p("hl/orig.dat"), p(&format!("hl/{}", long_name(i)))).unwrap();
    }

    // Fragmented: two files grown in turns, reopened each time.
    std::fs::create_dir(p("frag")).unwrap();
    for round in 0..48u64 {
        for (name, seed) in [("a", 100u64), ("b", 200)] {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p(&format!("frag/{name}")))
                .unwrap();
            f.write_all(&prng_bytes(seed + round, 8192)).unwrap();
            f.sync_all().unwrap();
        }
    }

    std::fs::create_dir(p("sym")).unwrap();
    write(&p("sym/target.txt"), b"link target");
    write(&p("sym/rel"), b"");
    setfattr(
        "system.ntfs_reparse_data",
        &link_reparse("target.txt", "target.txt", true, false),
        &p("sym/rel"),
    );
    write(&p("sym/abs"), b"");
    setfattr(
        "system.ntfs_reparse_data",
        &link_reparse(
            "\\??\\C:\\sym\\target.txt",
            "C:\\sym\\target.txt",
            false,
            false,
        ),
        &p("sym/abs"),
    );
    std::fs::create_dir(p("sym/junction")).unwrap();
    setfattr(
        "system.ntfs_reparse_data",
        &link_reparse("\\??\\C:\\plain", "C:\\plain", false, true),
        &p("sym/junction"),
    );
}

const LINKS: [&str; 4] = ["sym/rel", "sym/abs", "sym/junction", "sym/wsl"];

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("vol.img");
        mkntfs(&img, 96 << 20, 4096, 512, "oracle-vol");
        {
            let m = Mount::new(&img, &dir.path().join("mnt"), "");
            populate(&m.dir);
        }
        {
            // A WSL-style symlink, as ntfs-3g writes it in special_files=wsl mode.
            let m = Mount::new(&img, &dir.path().join("mnt"), "special_files=wsl");
            std::os::unix::fs::symlink("target.txt", m.dir.join("sym/wsl")).unwrap();
        }
        let vol = open(&img);
        Fixture {
            _dir: dir,
            img,
            vol,
        }
    })
}

fn id(path: &str) -> FileId {
    fixture()
        .vol
        .lookup_path(path)
        .unwrap()
        .unwrap_or_else(|| panic!("{path} not found"))
}

#[test]
fn listing_matches_sleuthkit() {
    let f = fixture();
    let mut theirs = sleuthkit_listing(&f.img);
    // Sleuth Kit lists reparse-point links as empty regular files; we present them as
    // links (checked against ntfs-3g below).
    for l in LINKS {
        theirs.remove(l);
    }
    let ours = walk(&f.vol);
    assert!(ours.len() > BIG_DIR_ENTRIES + HARD_LINKS);
    assert_listing_eq(&ours, &theirs, "sleuthkit");
}

#[test]
fn listing_and_links_match_ntfs3g() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let m = Mount::new(&f.img, &dir.path().join("mnt"), "ro");
    let mut theirs = Listing::new();
    let mut links = BTreeMap::new();
    ntfs3g_listing(&m.dir, "", &mut theirs, &mut links);
    let mnt_prefix = std::fs::canonicalize(&m.dir)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    drop(m);
    let ours: Listing = walk(&f.vol)
        .into_iter()
        .filter(|(p, _)| !p.contains(':'))
        .collect();
    assert_listing_eq(&ours, &theirs, "ntfs-3g");
    assert_eq!(links.len(), LINKS.len(), "{links:?}");
    for (path, target) in links {
        let fid = id(&path);
        assert_eq!(f.vol.stat(fid).unwrap().kind, FileKind::Symlink, "{path}");
        let t = f.vol.read_link(fid).unwrap();
        // ntfs-3g maps C:\ onto its mount point; we map it onto the volume root.
        let expected = target
            .strip_prefix(&mnt_prefix)
            .map(|s| s.to_string())
            .unwrap_or(target.clone());
        assert_eq!(t.target, expected, "{path}");
    }
    let j = f.vol.read_link(id("sym/junction")).unwrap();
    assert_eq!(j.kind, LinkKind::Junction);
    assert_eq!(
        f.vol.read_link(id("sym/wsl")).unwrap().kind,
        LinkKind::WslSymlink
    );
    assert!(f.vol.read_link(id("sym/rel")).unwrap().relative);
    assert!(!f.vol.read_link(id("sym/abs")).unwrap().relative);
    assert!(f.vol.read_link(id("plain/one")).is_err());
}

#[test]
fn big_directory_lists_in_order_and_looks_up() {
    let v = &fixture().vol;
    let big = id("big");
    let t = std::time::Instant::now();
    let entries = v.read_dir(big).unwrap();
    let list_time = t.elapsed();
    // Each index block is read once per listing at most (cached after that).
    let blocks = v.stats().index_blocks_read;
    let again = v.read_dir(big).unwrap();
    assert_eq!(again.len(), entries.len());
    assert!(v.stats().index_blocks_read - blocks <= 16);
    assert_eq!(entries.len(), BIG_DIR_ENTRIES + 1);
    for w in entries.windows(2) {
        assert!(
            w[0].name.to_uppercase() < w[1].name.to_uppercase(),
            "{} {}",
            w[0].name,
            w[1].name
        );
    }
    for e in entries.iter().step_by(97) {
        assert_eq!(v.lookup(big, &e.name).unwrap(), Some(e.id));
    }
    assert_eq!(v.lookup(big, "entry-10000").unwrap(), None);
    assert_eq!(v.lookup(big, "entry-0050").unwrap(), None);
    assert_eq!(v.lookup(big, "zzz").unwrap(), None);
    assert_eq!(v.lookup(big, "a").unwrap(), None);
    // Exact-case lookups; a case-variant is not the same name in this view.
    assert!(v.lookup(id("unicode"), "MiXeD CaSe").unwrap().is_some());
    assert_eq!(v.lookup(id("unicode"), "mixed case").unwrap(), None);
    let mut ids = BTreeMap::new();
    for n in ["case", "CASE", "Case", "cAsE"] {
        let fid = v
            .lookup(id("unicode"), n)
            .unwrap()
            .unwrap_or_else(|| panic!("{n}"));
        let mut b = [0u8; 8];
        let got = v.read(fid, None, 0, &mut b).unwrap();
        assert_eq!(&b[..got], n.as_bytes());
        ids.insert(fid, n);
    }
    assert_eq!(ids.len(), 4);
    assert_eq!(v.lookup(id("unicode"), "CAse").unwrap(), None);
    assert!(v
        .lookup_ignore_case(id("unicode"), "CAse")
        .unwrap()
        .is_some());
    let mixed = v.lookup(id("unicode"), "MiXeD CaSe").unwrap();
    assert_eq!(
        v.lookup_ignore_case(id("unicode"), "mixed case").unwrap(),
        mixed
    );
    // $UpCase folds beyond ASCII: Greek and accented Latin.
    assert!(v
        .lookup_ignore_case(id("unicode"), "ΩΜΈΓΑ")
        .unwrap()
        .is_some());
    assert!(v
        .lookup_ignore_case(id("unicode"), "HÉLLO WÖRLD.TXT")
        .unwrap()
        .is_some());
    for e in entries.iter().step_by(331) {
        let upper = e.name.to_uppercase();
        assert_eq!(
            v.lookup_ignore_case(big, &upper).unwrap(),
            Some(e.id),
            "{upper}"
        );
    }
    assert_eq!(v.lookup_ignore_case(big, "ENTRY-99999").unwrap(), None);
    assert!(list_time.as_secs() < 10, "listing took {list_time:?}");
}

#[test]
fn hard_links_share_one_id_and_count() {
    let f = fixture();
    let orig = id("hl/orig.dat");
    for i in 0..HARD_LINKS {
        assert_eq!(id(&format!("hl/{}", long_name(i))), orig);
    }
    let md = f.vol.stat(orig).unwrap();
    assert_eq!(md.link_count as usize, HARD_LINKS + 1);
    let links = f.vol.links(orig).unwrap();
    assert_eq!(links.len(), HARD_LINKS + 1);
    assert!(links.iter().all(|(p, _)| *p == id("hl")));
    assert!(links.iter().any(|(_, n)| n == "orig.dat"));
    assert!(links.iter().any(|(_, n)| *n == long_name(HARD_LINKS - 1)));
    let deep = id(&nested_path());
    assert_eq!(f.vol.links(deep).unwrap()[0].1, "level30");
    // The point of so many long names: they overflow into extension records.
    let istat = String::from_utf8(run(
        "istat",
        &[f.img.to_str().unwrap(), &orig.0.to_string()],
    ))
    .unwrap();
    assert!(
        istat.contains("$ATTRIBUTE_LIST"),
        "expected an attribute list:\n{istat}"
    );
}

#[test]
fn compressed_and_sparse_files() {
    let f = fixture();
    let v = &f.vol;
    let text = v.stat(id("comp/text")).unwrap();
    assert!(text.attributes & attr::COMPRESSED != 0);
    assert_eq!(text.size, 300_000);
    assert!(text.allocated_size < text.size / 2, "{text:?}");
    // Sequential small reads of a compressed file agree with one big read.
    let mut whole = vec![0u8; 300_000];
    assert_eq!(
        v.read(id("comp/text"), None, 0, &mut whole).unwrap(),
        300_000
    );
    assert_eq!(whole, text_bytes(300_000));
    let mut piece = vec![0u8; 333];
    let mut off = 0;
    let before = v.stats().units_decoded;
    while off < 300_000u64 {
        let n = v.read(id("comp/text"), None, off, &mut piece).unwrap();
        assert_eq!(&piece[..n], &whole[off as usize..off as usize + n]);
        off += n as u64;
    }
    // Decoded units are cached: ~900 small reads decode at most each unit once more
    // (other tests share the volume and its cache, hence "at most").
    let decoded = v.stats().units_decoded - before;
    assert!(
        decoded <= 300_000u64.div_ceil(65536),
        "{decoded} unit decodes"
    );

    let sparse = id("sparse.bin");
    let md = v.stat(sparse).unwrap();
    assert_eq!(md.size, 20 << 20);
    assert!(md.allocated_size < 1 << 20, "{md:?}");
    let ranges = v.allocated_ranges(sparse, None).unwrap();
    assert!(ranges.len() >= 2, "{ranges:?}");
    assert_eq!(ranges[0].start, 0);
    assert!(ranges.iter().any(|r| r.contains(&(8 << 20))));
    assert!(!ranges.iter().any(|r| r.contains(&(4 << 20))));
    let mut b = [1u8; 16];
    v.read(sparse, None, 4 << 20, &mut b).unwrap();
    assert_eq!(b, [0u8; 16]);
    // Short read only at the end.
    assert_eq!(v.read(sparse, None, (20 << 20) - 4, &mut b).unwrap(), 4);
    assert_eq!(v.read(sparse, None, 20 << 20, &mut b).unwrap(), 0);
}

#[test]
fn streams_metadata_and_volume_info() {
    let f = fixture();
    let v = &f.vol;
    let ads = id("ads.txt");
    let mut s: Vec<_> = v
        .streams(ads)
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.size))
        .collect();
    s.sort();
    assert_eq!(
        s,
        vec![
            ("Zone.Identifier".to_string(), 26),
            ("big".to_string(), 100_000),
            ("small".to_string(), 9)
        ]
    );
    assert!(v.read(ads, Some("nope"), 0, &mut [0u8; 4]).is_err());

    let info = v.info();
    assert_eq!(info.label, "oracle-vol");
    assert_eq!((info.major_version, info.minor_version), (3, 1));
    assert!(!info.dirty);
    assert!(!info.hibernated);
    assert_eq!(info.cluster_size, 4096);
    let free = v.free_clusters().unwrap();
    assert!(free > 0 && free < info.total_clusters);

    // Timestamps and the security descriptor as ntfs-3g reports them.
    let dir = tempfile::tempdir().unwrap();
    let m = Mount::new(&f.img, &dir.path().join("mnt"), "ro");
    for path in ["plain/small", "comp/text", "hl/orig.dat", "unicode/Ωμέγα"] {
        let md = v.stat(id(path)).unwrap();
        let theirs = std::fs::metadata(m.dir.join(path)).unwrap();
        assert_eq!(
            md.modified.to_system_time(),
            theirs.modified().unwrap(),
            "{path}"
        );
        assert_eq!(md.kind, FileKind::File);
        let acl = run(
            "getfattr",
            &[
                "--only-values",
                "-n",
                "system.ntfs_acl",
                m.dir.join(path).to_str().unwrap(),
            ],
        );
        assert_eq!(
            v.security_descriptor(id(path)).unwrap().as_deref(),
            Some(&acl[..]),
            "{path}"
        );
    }
    // All four timestamps: mtime/atime from stat, creation time from system.ntfs_crtime.
    for path in ["plain/one", "plain/small", "comp"] {
        let md = v.stat(id(path)).unwrap();
        let theirs = std::fs::metadata(m.dir.join(path)).unwrap();
        assert_eq!(
            md.modified.to_system_time(),
            theirs.modified().unwrap(),
            "{path}"
        );
        assert_eq!(
            md.accessed.to_system_time(),
            theirs.accessed().unwrap(),
            "{path}"
        );
        let raw = run(
            "getfattr",
            &[
                "-h",
                "--only-values",
                "-n",
                "system.ntfs_crtime",
                m.dir.join(path).to_str().unwrap(),
            ],
        );
        assert_eq!(
            md.created.0,
            u64::from_le_bytes(raw[..8].try_into().unwrap()),
            "{path}"
        );
    }
    let one = v.stat(id("plain/one")).unwrap();
    assert_eq!(one.modified.to_unix(), (978_307_200, 123_456_700));
    assert_eq!(one.accessed.to_unix(), (1_012_651_200, 0));
    assert!(one.created > one.modified && one.mft_modified >= one.created);
    // DOS attribute bits as ntfs-3g reports them (system.ntfs_attrib_be, big-endian).
    for path in [
        "plain/small",
        "comp",
        "comp/text",
        "sparse.bin",
        "hl",
        "sym/rel",
    ] {
        let raw = run(
            "getfattr",
            &[
                "-h",
                "--only-values",
                "-n",
                "system.ntfs_attrib_be",
                m.dir.join(path).to_str().unwrap(),
            ],
        );
        let theirs = u32::from_be_bytes(raw[..4].try_into().unwrap());
        assert_eq!(v.stat(id(path)).unwrap().attributes, theirs, "{path}");
    }
    let root_md = v.stat(v.root()).unwrap();
    assert_eq!(root_md.kind, FileKind::Directory);
    assert!(v.read_dir(id("plain/one")).is_err());
    let deep = format!("{}/deep.txt", nested_path());
    let mut b = [0u8; 64];
    let n = v.read(id(&deep), None, 0, &mut b).unwrap();
    assert_eq!(&b[..n], b"thirty levels down");
}

#[test]
fn concurrent_readers_agree() {
    let f = fixture();
    let paths = [
        "comp/mixed",
        "comp/text",
        "plain/large",
        "ads.txt",
        "sparse.bin",
    ];
    let expected: Vec<(u64, String)> = paths
        .iter()
        .map(|p| hash_stream(&f.vol, id(p), None))
        .collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let expected = &expected;
            s.spawn(move || {
                for round in 0..3 {
                    for (i, p) in paths.iter().enumerate().rev() {
                        if (i + t + round) % 2 == 0 {
                            assert_eq!(&hash_stream(&f.vol, id(p), None), &expected[i], "{p}");
                        }
                    }
                    assert_eq!(
                        f.vol.read_dir(id("big")).unwrap().len(),
                        BIG_DIR_ENTRIES + 1
                    );
                }
            });
        }
    });
}
