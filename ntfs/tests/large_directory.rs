//! A 100 000-entry directory: listed completely and in order, every block read once;
//! a lookup on a cold volume touches only one index block per tree level.

mod common;
use common::*;
use std::collections::BTreeSet;

const ENTRIES: usize = 100_000;

#[test]
fn hundred_thousand_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("vol.img");
    mkntfs(&img, 256 << 20, 4096, 512, "large");
    {
        let m = Mount::new(&img, &tmp.path().join("mnt"), "");
        std::fs::create_dir(m.dir.join("d")).unwrap();
        for i in 0..ENTRIES {
            std::fs::File::create(m.dir.join(format!("d/f{i:06}"))).unwrap();
        }
    }
    let vol = open(&img);
    let d = vol.lookup(vol.root(), "d").unwrap().unwrap();
    let t = std::time::Instant::now();
    let entries = vol.read_dir(d).unwrap();
    let elapsed = t.elapsed();
    assert_eq!(entries.len(), ENTRIES);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "not in collation order"
    );
    let expected: BTreeSet<String> = (0..ENTRIES).map(|i| format!("f{i:06}")).collect();
    assert!(names.iter().zip(&expected).all(|(a, b)| a == b));
    let blocks = vol.stats().index_blocks_read;
    let per_block = ENTRIES as u64 / blocks;
    assert!(
        per_block >= 10,
        "{blocks} index blocks read for {ENTRIES} entries"
    );
    eprintln!("listed {ENTRIES} entries from {blocks} index blocks in {elapsed:?}");

    // Cold cache: a lookup reads one block per level below the root (a handful out of
    // thousands), never the whole index.
    let cold = open(&img);
    let d = cold.lookup(cold.root(), "d").unwrap().unwrap();
    for (k, name) in ["f000000", "f054321", "f099999", "f100000", "e"]
        .iter()
        .enumerate()
    {
        let before = cold.stats().index_blocks_read;
        let found = cold.lookup(d, name).unwrap();
        assert_eq!(found.is_some(), k < 3, "{name}");
        let read = cold.stats().index_blocks_read - before;
        assert!(read <= 5, "lookup of {name} read {read} index blocks");
    }
}
