//! XPRESS-Huffman and LZX decoders checked against an independent encoder: wimlib
//! (`wimlib-imagex capture`). A non-solid WIM resource has exactly WOF's layout (chunk
//! offset table, then independently compressed chunks, stored raw when compression does
//! not help), so each file blob in the WIM is decoded with `wof::read_chunk` and its
//! SHA-256 compared with the source file's.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use vmsnapfs_io::le::u64_at;
use vmsnapfs_ntfs::wof::{self, Algorithm, WofFile};

/// Source files: text, random, a real x86 executable (E8 call opcodes exercise LZX's
/// call translation), zeros, and sizes around chunk boundaries.
fn make_sources(dir: &Path) -> BTreeSet<String> {
    let mut files: Vec<Vec<u8>> = vec![
        text_bytes(200_000),
        prng_bytes(11, 70_000),
        vec![0u8; 65536 + 17],
        text_bytes(4096),
        text_bytes(32768 * 3 + 1),
        std::fs::read("/bin/sh").expect("/bin/sh as an executable sample"),
    ];
    let mut mixed = text_bytes(50_000);
    mixed.extend(prng_bytes(12, 20_000));
    mixed.extend(text_bytes(10_000));
    mixed.extend((0..40_000u32).map(|i| {
        if i % 7 == 0 {
            0xE8
        } else {
            (i * 31 % 251) as u8
        }
    }));
    files.push(mixed);
    let mut hashes = BTreeSet::new();
    for (i, f) in files.iter().enumerate() {
        std::fs::write(dir.join(format!("f{i}")), f).unwrap();
        hashes.insert(sha256_bytes(f));
    }
    hashes
}

fn check(compress: &str, alg: Algorithm) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let expected = make_sources(&src);
    let wim = tmp.path().join("x.wim");
    run(
        "wimlib-imagex",
        &[
            "capture",
            src.to_str().unwrap(),
            wim.to_str().unwrap(),
            &format!("--compress={compress}"),
            &format!("--chunk-size={}", alg.chunk_size()),
        ],
    );
    let w = std::fs::read(&wim).unwrap();
    assert_eq!(&w[0..8], b"MSWIM\0\0\0");
    assert_eq!(
        u32::from_le_bytes(w[20..24].try_into().unwrap()) as usize,
        alg.chunk_size()
    );
    // Blob table: resource header at 48 (size:56 flags:8, offset, original size).
    let table_off = u64_at(&w, 56).unwrap() as usize;
    let table_len = u64_at(&w, 64).unwrap() as usize;
    let mut got = BTreeSet::new();
    let mut compressed_chunks = 0;
    for e in w[table_off..table_off + table_len].chunks_exact(50) {
        let size_in_wim = u64_at(e, 0).unwrap() & 0x00FF_FFFF_FFFF_FFFF;
        let flags = e[7];
        let off = u64_at(e, 8).unwrap() as usize;
        let orig = u64_at(e, 16).unwrap();
        if flags & 0x02 != 0 {
            continue; // metadata resource
        }
        let res = &w[off..off + size_in_wim as usize];
        if flags & 0x04 == 0 {
            got.insert(sha256_bytes(res)); // incompressible: stored as is
            continue;
        }
        let wf = WofFile {
            algorithm: alg,
            size: orig,
            stream_size: size_in_wim,
        };
        let mut read = |o: u64, b: &mut [u8]| -> Result<(), String> {
            let s = res
                .get(o as usize..o as usize + b.len())
                .ok_or("past resource")?;
            b.copy_from_slice(s);
            Ok(())
        };
        let mut data = Vec::new();
        for i in 0..orig.div_ceil(alg.chunk_size() as u64) {
            let chunk = wof::read_chunk(&wf, i, &mut read)
                .unwrap_or_else(|e| panic!("{compress} blob at {off} chunk {i}: {e}"));
            compressed_chunks += 1;
            data.extend(chunk);
        }
        assert_eq!(data.len() as u64, orig);
        got.insert(sha256_bytes(&data));
    }
    assert!(compressed_chunks > 10);
    assert_eq!(
        got, expected,
        "{compress}: decoded blobs differ from the sources"
    );
}

#[test]
fn xpress_4k_matches_wimlib() {
    check("XPRESS", Algorithm::Xpress4K);
}

#[test]
fn xpress_8k_matches_wimlib() {
    check("XPRESS", Algorithm::Xpress8K);
}

#[test]
fn xpress_16k_matches_wimlib() {
    check("XPRESS", Algorithm::Xpress16K);
}

#[test]
fn lzx_32k_matches_wimlib() {
    check("LZX", Algorithm::Lzx);
}
