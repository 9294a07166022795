//! An unlinked-but-open file, as a snapshot of a running system holds it: no directory
//! entry, links_count 0, on the orphan list (s_last_orphan). Made with debugfs
//! (unlink, sif links_count 0, ssv last_orphan); it must not be shown or served.

mod common;
use common::*;

#[test]
fn orphan_inodes_are_not_shown() {
    if !e2fsprogs() {
        return;
    }
    let dir = tmp();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("kept"), b"kept").unwrap();
    std::fs::write(src.join("orphan"), b"unlinked but open").unwrap();
    let img = dir.path().join("img");
    run(&format!(
        "mke2fs -q -F -t ext4 -d {} {} 8M",
        q(&src),
        q(&img)
    ));
    let ino = open(&img).lookup_path(b"/orphan").unwrap().unwrap();
    run(&format!(
        "printf 'unlink /orphan\\nsif <{ino}> links_count 0\\nssv last_orphan {ino}\\n' | debugfs -w -f - {} >/dev/null 2>&1",
        q(&img)
    ));
    let v = open(&img);
    assert_eq!(v.info().last_orphan, ino);
    let names: Vec<Vec<u8>> = v
        .read_dir(v.root())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        names.contains(&b"kept".to_vec()) && !names.contains(&b"orphan".to_vec()),
        "{names:?}"
    );
    let e = v.stat(ino).unwrap_err();
    assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::NotFound);
    assert!(v.read(ino, 0, &mut [0u8; 8]).is_err());
}
