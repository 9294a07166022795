//! A dirty journal, made with debugfs's own journal writer (`jo`/`jw`/`jc`): image A is
//! copied to B, B is changed directly with debugfs (new file, new dir, unlink, chmod,
//! symlink), and the blocks that differ are written into A's journal as one committed
//! transaction, so A needs recovery and only its journal holds the changes. Added: a
//! committed transaction whose block a later committed transaction revokes, and an
//! uncommitted one. Oracle: `e2fsck -fy` on a copy of A (which replays the journal),
//! then debugfs rdump; and the changed image B. We read A without writing anything.

mod common;
use common::*;
use std::collections::BTreeMap;

#[test]
fn dirty_journal_is_replayed_in_memory() {
    dirty("jo", 4096);
}

#[test]
fn dirty_journal_with_csum_v3_tags() {
    dirty("jo -c -v 3", 4096);
}

#[test]
fn dirty_journal_with_csum_v2_tags() {
    dirty("jo -c -v 2", 4096);
}

#[test]
fn dirty_journal_1k_blocks() {
    dirty("jo -c -v 3", 1024);
}

fn dirty(jo: &str, bs: usize) {
    if !e2fsprogs() {
        return;
    }
    let dir = tmp();
    let d = dir.path();
    let src = d.join("src");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    std::fs::write(src.join("a"), b"hello\n").unwrap();
    std::fs::write(src.join("big"), noise(200_000, 7)).unwrap();
    for i in 0..50 {
        std::fs::write(src.join(format!("dir/f{i}")), format!("{i}")).unwrap();
    }
    let a = d.join("A");
    let b = d.join("B");
    run(&format!(
        "mke2fs -q -F -t ext4 -b {bs} -d {} {} 32M",
        q(&src),
        q(&a)
    ));
    std::fs::copy(&a, &b).unwrap();
    std::fs::write(d.join("nf"), b"new content\n").unwrap();
    run(&format!(
        "cd {} && printf 'write nf /newfile\\nmkdir /newdir\\nrm /a\\nsif /big mode 0100600\\nsymlink /newlink some/target\\nrm /dir/f7\\n' | debugfs -w -f - B >/dev/null 2>&1",
        q(d)
    ));
    let (ia, ib) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let changed: Vec<usize> = (0..ia.len() / bs)
        .filter(|&i| ia[i * bs..(i + 1) * bs] != ib[i * bs..(i + 1) * bs])
        .collect();
    assert!(changed.len() > 3, "{changed:?}");
    let data: Vec<u8> = changed
        .iter()
        .flat_map(|&i| ib[i * bs..(i + 1) * bs].to_vec())
        .collect();
    std::fs::write(d.join("data.bin"), &data).unwrap();
    std::fs::write(d.join("junk.bin"), vec![0xAB; bs]).unwrap();
    let list: Vec<String> = changed.iter().map(|i| i.to_string()).collect();
    let bmap = |n: u32| -> u64 {
        run(&format!("debugfs -R 'bmap /big {n}' {} 2>/dev/null", q(&a)))
            .trim()
            .parse()
            .unwrap()
    };
    let (revoked, uncommitted, escaped) = (bmap(3), bmap(9), bmap(5));
    // A block whose first bytes are the jbd2 magic is logged escaped.
    let mut magic_block = vec![0x5Au8; bs];
    magic_block[..4].copy_from_slice(&0xC03B_3998u32.to_be_bytes());
    std::fs::write(d.join("magic.bin"), &magic_block).unwrap();
    run(&format!(
        "cd {} && printf '{jo}\\njw -b {} data.bin\\njw -b {revoked} junk.bin\\njw -r {revoked} /dev/null\\njw -b {escaped} magic.bin\\njw -b {uncommitted} -c junk.bin\\njc\\n' | debugfs -w -f - A >/dev/null 2>&1",
        q(d),
        list.join(",")
    ));
    let log = run(&format!("debugfs -R logdump {} 2>/dev/null", q(&a)));
    assert!(log.contains("revoke"), "{log}");
    if jo.contains("-v 3") {
        assert!(run(&format!("dumpe2fs -h {} 2>/dev/null", q(&a))).contains("journal_checksum_v3"));
    }
    assert!(run(&format!("dumpe2fs -h {} 2>/dev/null", q(&a))).contains("needs_recovery"));
    let before = std::fs::read(&a).unwrap();

    let v = open(&a);
    let info = v.info();
    assert!(info.needs_recovery && info.journal_replayed, "{info:?}");
    assert_eq!(info.journal_transactions, 4, "{info:?}");
    let ours = walk(&v);
    assert_eq!(
        std::fs::read(&a).unwrap(),
        before,
        "the image must not be written"
    );

    // Oracle 1: e2fsck replays a copy; rdump it.
    let a2 = d.join("A2");
    std::fs::copy(&a, &a2).unwrap();
    let (code, out) = run_status(&format!("e2fsck -fy {}", q(&a2)));
    assert!(code <= 1, "e2fsck -fy: {code}\n{out}");
    let dumped = rdump(&a2, &d.join("out"));
    let ours_cmp: BTreeMap<Vec<u8>, Dumped> = ours
        .iter()
        .map(|(p, n)| {
            let k = match n.kind {
                vmsnapfs_ext4::FileKind::File => 'r',
                vmsnapfs_ext4::FileKind::Dir => 'd',
                vmsnapfs_ext4::FileKind::Symlink => 'l',
                _ => '?',
            };
            let size = if k == 'd' { 0 } else { n.size };
            (p.clone(), (k, size, n.sha.clone(), n.link.clone()))
        })
        .collect();
    assert_eq!(ours_cmp, dumped);
    assert!(ours.contains_key(&b"/newfile"[..]) && ours.contains_key(&b"/newdir"[..]));
    assert!(!ours.contains_key(&b"/a"[..]) && !ours.contains_key(&b"/dir/f7"[..]));
    assert_eq!(
        ours[&b"/newlink"[..]].link.as_deref(),
        Some(&b"some/target"[..])
    );
    let big = v.lookup_path(b"/big").unwrap().unwrap();
    assert_eq!(v.stat(big).unwrap().mode, 0o100600);
    // The revoked and the uncommitted copies were not applied.
    // The escaped copy was applied with its magic restored.
    let mut want = noise(200_000, 7);
    want[5 * bs..6 * bs].copy_from_slice(&magic_block);
    assert_eq!(ours[&b"/big"[..]].sha, sha256(&want));

    // Oracle 2: the image the changes were made on (all but /big, whose escaped
    // block was journaled on A only).
    let vb = open(&b);
    assert!(!vb.info().needs_recovery);
    let theirs = walk(&vb);
    let strip = |m: &BTreeMap<Vec<u8>, Node>| -> Vec<(Vec<u8>, Dumped)> {
        m.iter()
            .filter(|(p, _)| p.as_slice() != b"/big")
            .map(|(p, n)| (p.clone(), (' ', n.size, n.sha.clone(), n.link.clone())))
            .collect()
    };
    assert_eq!(strip(&ours), strip(&theirs));

    // Sleuth Kit does not replay: the on-disk directory still has /a, not /newfile.
    if have("fls") {
        let f = fls(&a);
        assert!(f.contains_key(&b"/a"[..]) && !f.contains_key(&b"/newfile"[..]));
    }
}
