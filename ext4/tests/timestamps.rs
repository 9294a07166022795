//! Times past 2038 and before 1970, with nanoseconds: set raw with debugfs `sif`
//! (mke2fs -d copies seconds only), read back and compared with the date debugfs
//! `stat` prints (converted by date(1)) and the nanoseconds in its raw _extra field.

mod common;
use common::*;

fn debugfs_times(img: &std::path::Path, path: &str) -> Vec<(String, i64, u32)> {
    let s = run(&format!(
        "TZ=UTC debugfs -R 'stat {path}' {} 2>/dev/null",
        q(img)
    ));
    let mut out = Vec::new();
    for line in s.lines() {
        let line = line.trim();
        for k in ["atime", "mtime", "ctime", "crtime"] {
            if let Some(rest) = line.strip_prefix(&format!("{k}: ")) {
                let (raw, date) = rest.split_once(" -- ").unwrap();
                let extra = u32::from_str_radix(
                    raw.split(':').nth(1).unwrap().trim_start_matches("0x"),
                    16,
                )
                .unwrap();
                let secs: i64 = run(&format!("TZ=UTC date -d '{date}' +%s"))
                    .trim()
                    .parse()
                    .unwrap();
                out.push((k.to_string(), secs, extra >> 2));
            }
        }
    }
    out
}

#[test]
fn big_and_negative_times_with_nanoseconds() {
    if !e2fsprogs() {
        return;
    }
    let dir = tmp();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"t").unwrap();
    let img = dir.path().join("img");
    run(&format!(
        "mke2fs -q -F -t ext4 -d {} {} 8M",
        q(&src),
        q(&img)
    ));
    run(&format!(
        "printf 'sif /f mtime 0x7fffffff\\nsif /f mtime_extra 0x1d6f3459\\nsif /f crtime 0x12345678\\nsif /f crtime_extra 0x00000002\\nsif /f atime 0x80000000\\nsif /f atime_extra 0x00000010\\nsif /f ctime 0x5f000000\\nsif /f ctime_extra 0xee6b27fc\\n' | debugfs -w -f - {} >/dev/null 2>&1",
        q(&img)
    ));
    let v = open(&img);
    let ino = v.lookup_path(b"/f").unwrap().unwrap();
    let md = v.stat(ino).unwrap();
    let theirs = debugfs_times(&img, "/f");
    assert_eq!(theirs.len(), 4, "{theirs:?}");
    for (k, secs, nanos) in theirs {
        let t = match k.as_str() {
            "atime" => md.atime,
            "mtime" => md.mtime,
            "ctime" => md.ctime,
            _ => md.crtime.unwrap(),
        };
        assert_eq!((t.secs, t.nanos), (secs, nanos), "{k}");
    }
    assert_eq!(
        md.mtime.secs,
        0x7fff_ffff + (1 << 32),
        "after 2038 via the epoch bits"
    );
    assert_eq!(md.atime.secs, -(1 << 31), "1901");
    assert_eq!(md.ctime.nanos, 999_999_999);
}
