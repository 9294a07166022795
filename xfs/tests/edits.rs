//! What protofiles cannot make, made by editing a fresh image with xfs_db -x `write` and
//! checked by xfs_repair -n: a file whose first blocks are a hole, an unwritten
//! (preallocated) extent, a hard link, and a socket (a fifo's mode changed).
mod common;

use common::*;
use vmsnapfs_xfs::Volume;

fn tree() -> Tree {
    let mut t = Tree::new();
    let f = |data| Want::File {
        mode: 0o644,
        uid: 0,
        gid: 0,
        data,
    };
    t.insert("holey".into(), f(bytes(1_000_000, 1)));
    t.insert("prealloc".into(), f(bytes(100_000, 2)));
    t.insert("sock".into(), Want::Fifo { mode: 0o755 });
    t.insert(
        "hl".into(),
        Want::Dir {
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
    );
    t.insert("hl/a".into(), f(b"linked\n".to_vec()));
    t.insert("hl/b".into(), f(b"orphan\n".to_vec()));
    t
}

fn ino(vol: &Volume, dir: u64, name: &str) -> u64 {
    vol.lookup(dir, name.as_bytes()).unwrap().ino
}

fn read_all(vol: &Volume, ino: u64) -> Vec<u8> {
    let size = vol.stat(ino).unwrap().size as usize;
    let mut b = vec![0xaa; size];
    let mut pos = 0;
    while pos < size {
        pos += vol.read(ino, pos as u64, &mut b[pos..]).unwrap();
    }
    b
}

fn check(args: &[&str], v5: bool) {
    if !have_tools() {
        return;
    }
    let t = tree();
    let img = Image::build(&t, 300, args, &[]);
    let vol = img.open();
    let bs = vol.info().block_size as usize;
    let root = vol.root();
    let (holey, pre) = (ino(&vol, root, "holey"), ino(&vol, root, "prealloc"));
    let hl = ino(&vol, root, "hl");
    let (a, b) = (ino(&vol, hl, "a"), ino(&vol, hl, "b"));
    let sock = ino(&vol, root, "sock");
    drop(vol);
    let u = if v5 { "u3" } else { "u" };
    let sf = "sfdir3"; // the ftype layout, default on v4 too
    img.db_x(&[
        format!("inode {holey}"),
        format!("write {u}.bmx[0].startoff 10"),
        format!("inode {pre}"),
        format!("write {u}.bmx[0].extentflag 1"),
        format!("inode {hl}"),
        format!("write {u}.{sf}.list[1].inumber.i4 {a}"),
        format!("inode {a}"),
        "write core.nlinkv2 2".into(),
        format!("inode {sock}"),
        "write core.mode 0140755".into(),
        format!("inode {root}"),
        format!("write {u}.{sf}.list[3].filetype 6"), // "sock", fourth by name
    ]);
    // The only complaint: b's inode is now referenced by no directory.
    let rep = img.repair_ok().unwrap_err();
    let complaints: Vec<&str> = rep
        .lines()
        .filter(|l| {
            !l.starts_with("Phase")
                && !l.starts_with("        -")
                && !l.starts_with("        ")
                && !l.contains("host filesystem")
                && !l.contains("sector size")
                && !l.starts_with("No modify flag")
                && !l.trim().is_empty()
        })
        .collect();
    assert_eq!(
        complaints,
        [format!("disconnected inode {b}, would move to lost+found")],
        "{rep}"
    );

    let vol = img.open();
    // Hole of 10 blocks, then the data the extent always held.
    let md = vol.stat(holey).unwrap();
    assert_eq!(md.size, 1_000_000);
    let got = read_all(&vol, holey);
    let data = match &t["holey"] {
        Want::File { data, .. } => data.clone(),
        _ => unreachable!(),
    };
    assert!(got[..10 * bs].iter().all(|&x| x == 0));
    assert_eq!(got[10 * bs..], data[..1_000_000 - 10 * bs]);
    assert_eq!(
        vol.data_ranges(holey).unwrap(),
        [((10 * bs) as u64, (1_000_000 - 10 * bs) as u64)]
    );
    // Unwritten: zeros, and no data range.
    let got = read_all(&vol, pre);
    assert_eq!(got.len(), 100_000);
    assert!(got.iter().all(|&x| x == 0));
    assert!(vol.data_ranges(pre).unwrap().is_empty());
    // Placed on the image: the hole and the unwritten extent as zeros, the rest in place.
    let on_file = img.open_file();
    let want: Vec<u8> = std::iter::repeat_n(0, 10 * bs)
        .chain(data[..1_000_000 - 10 * bs].iter().copied())
        .collect();
    assert!(
        placed(&on_file, holey, 0, 2_000_000) == want,
        "holey placed"
    );
    assert!(placed(&on_file, holey, 3, 10 * bs as u64) == want[3..3 + 10 * bs]);
    let mut p = vmsnapfs_io::Places::new();
    assert_eq!(on_file.place(pre, 0, 200_000, &mut p), Some(100_000));
    assert!(matches!(p.pieces(), [vmsnapfs_io::Piece::Zero(100_000)]));
    // Hard link: both names, one inode, nlink 2, as xfs_db lists them.
    let ls = img.db_ls("/hl");
    assert_eq!(ls[&b"a".to_vec()], a);
    assert_eq!(ls[&b"b".to_vec()], a);
    assert_eq!(ino(&vol, hl, "b"), a);
    assert_eq!(vol.stat(a).unwrap().nlink, 2);
    assert_eq!(read_all(&vol, ino(&vol, hl, "b")), b"linked\n");
    // The orphan is still a valid inode by number.
    assert_eq!(read_all(&vol, b), b"orphan\n");
    // A socket (the directory entry's ftype still says fifo; stat says socket).
    let md = vol.stat(sock).unwrap();
    assert_eq!(md.kind, vmsnapfs_xfs::FileKind::Socket);
    assert_eq!(md.mode, 0o140755);
}

#[test]
fn holes_unwritten_hardlinks_v5() {
    check(&[], true);
}

#[test]
fn holes_unwritten_hardlinks_v4() {
    check(&["-m", V4_META], false);
}
