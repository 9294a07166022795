//! Extended attributes set with xfs_db -x attr_set (every namespace; shortform, leaf,
//! node and B+tree-mapped attribute forks; remote values) and a POSIX ACL patched into
//! an SGI_ACL_FILE value, which xfs_repair -n then validates.
mod common;

use common::*;
use std::collections::BTreeMap;

fn tree() -> Tree {
    let mut t = Tree::new();
    for n in ["short", "leaf", "frag_a", "frag_b", "node", "acl", "plain"] {
        t.insert(
            n.into(),
            Want::File {
                mode: 0o644,
                uid: 0,
                gid: 0,
                data: bytes(100, 9),
            },
        );
    }
    t.insert(
        "dir".into(),
        Want::Dir {
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
    );
    t
}

fn v(n: usize) -> Vec<u8> {
    vec![b'v'; n]
}

/// `leaf_forms`: also the leaf, node and B+tree forms (xfs_db 6.1 segfaults making
/// leaf attributes on v4, so there only the shortform is tested).
fn check(args: &[&str], leaf_forms: bool) {
    if !have_tools() {
        return;
    }
    let img = Image::build(&tree(), 300, args, &[]);
    let inos: BTreeMap<String, u64> = {
        let vol = img.open();
        vol.read_dir(vol.root())
            .unwrap()
            .into_iter()
            .map(|e| (String::from_utf8(e.name).unwrap(), e.ino))
            .collect()
    };
    let ino = |n: &str| inos[n];
    let mut cmds = Vec::new();
    let mut want: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut set = |file: &str, flag: &str, name: String, len: usize, cmds: &mut Vec<String>| {
        cmds.push(format!("inode {}", ino(file)));
        cmds.push(format!("attr_set {flag} -v {len} {name}"));
        let prefix = match flag {
            "-r" => "trusted.",
            "-s" => "security.",
            _ => "user.",
        };
        want.entry(file.to_string())
            .or_default()
            .insert(format!("{prefix}{name}"), v(len));
    };
    set("short", "-u", "one".into(), 5, &mut cmds);
    set("short", "-r", "two".into(), 3, &mut cmds);
    set("short", "-s", "selinux".into(), 30, &mut cmds);
    set("dir", "-u", "ondir".into(), 1, &mut cmds);
    if leaf_forms {
        set("leaf", "-u", "remote".into(), 3000, &mut cmds);
        set("leaf", "-u", "local".into(), 100, &mut cmds);
        set("leaf", "-s", "sec".into(), 20000, &mut cmds);
        for i in 0..60 {
            set("frag_a", "-u", format!("n{i}"), 5000, &mut cmds);
            set("frag_b", "-u", format!("n{i}"), 5000, &mut cmds);
        }
        for i in 0..300 {
            set(
                "node",
                "-u",
                format!("attribute_number_{i}"),
                200,
                &mut cmds,
            );
        }
    }
    cmds.push(format!("inode {}", ino("acl")));
    cmds.push("attr_set -r -v 64 SGI_ACL_FILE".into());
    img.db_x(&cmds);

    // Patch a real ACL into the placeholder value: user::rw- user:1000:r-- group::r--
    // mask::r-- other::r--, then let xfs_db recompute the inode CRC.
    let entries: [(u32, u32, u16); 5] = [
        (1, 0, 6),
        (2, 1000, 4),
        (4, 0, 4),
        (0x10, 0, 4),
        (0x20, 0, 4),
    ];
    let mut acl = 5u32.to_be_bytes().to_vec();
    let mut linux = 2u32.to_le_bytes().to_vec();
    for (tag, id, perm) in entries {
        acl.extend_from_slice(&tag.to_be_bytes());
        acl.extend_from_slice(&id.to_be_bytes());
        acl.extend_from_slice(&perm.to_be_bytes());
        acl.extend_from_slice(&[0, 0]);
        linux.extend_from_slice(&(tag as u16).to_le_bytes());
        linux.extend_from_slice(&perm.to_le_bytes());
        linux.extend_from_slice(&(if tag == 2 { id } else { u32::MAX }).to_le_bytes());
    }
    let mut raw = img.bytes();
    let mut pat = b"SGI_ACL_FILE".to_vec();
    pat.extend_from_slice(&v(64));
    let at = find_once(&raw, &pat) + 12;
    raw[at..at + 64].copy_from_slice(&acl);
    std::fs::write(&img.path, &raw).unwrap();
    let vol = img.open();
    if vol.info().version == 5 {
        img.db_x(&[format!("inode {}", ino("acl")), "crc -r".into()]);
    }
    img.repair_ok()
        .expect("xfs_repair -n accepts the attributes and the ACL");
    want.entry("acl".to_string())
        .or_default()
        .insert("system.posix_acl_access".into(), linux);

    let vol = img.open();
    for (file, attrs) in &want {
        let got: BTreeMap<String, Vec<u8>> = vol.xattrs(ino(file)).unwrap().into_iter().collect();
        assert_eq!(
            got.len(),
            attrs.len(),
            "{file}: {:?}",
            got.keys().collect::<Vec<_>>()
        );
        assert_eq!(&got, attrs, "{file}");
    }
    assert!(vol.xattrs(ino("plain")).unwrap().is_empty());
    if !leaf_forms {
        return;
    }
    let db = img.db_inodes(&[ino("short"), ino("leaf"), ino("frag_a"), ino("node")]);
    assert_eq!(db[0]["core.aformat"], "1 (local)");
    assert_eq!(db[1]["core.aformat"], "2 (extents)");
    assert_eq!(
        db[2]["core.aformat"], "3 (btree)",
        "interleaved remote values fragment the fork"
    );
    let node_blocks: u64 = db[3]["core.naextents"].parse().unwrap();
    assert!(node_blocks >= 1);
}

#[test]
fn xattrs_v5() {
    check(&[], true);
}

#[test]
fn xattrs_v4() {
    check(&["-m", V4_META], false);
}
