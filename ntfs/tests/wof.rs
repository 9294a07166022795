//! WOF ("compact OS") files end to end: chunk streams made by wimlib's compressors are
//! placed in `WofCompressedData` streams with a WOF reparse point through ntfs-3g, then
//! read back transparently by the volume reader.

mod common;
use common::*;
use std::path::Path;
use vmsnapfs_io::le::u64_at;
use vmsnapfs_ntfs::{FileKind, Volume};

/// Compresses `data` with wimlib and returns the resource bytes (chunk table + chunks).
fn wimlib_resource(tmp: &Path, data: &[u8], compress: &str, chunk: usize) -> Vec<u8> {
    let src = tmp.join(format!("src-{compress}-{chunk}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), data).unwrap();
    let wim = tmp.join(format!("{compress}-{chunk}.wim"));
    run(
        "wimlib-imagex",
        &[
            "capture",
            src.to_str().unwrap(),
            wim.to_str().unwrap(),
            &format!("--compress={compress}"),
            &format!("--chunk-size={chunk}"),
        ],
    );
    let w = std::fs::read(&wim).unwrap();
    let table_off = u64_at(&w, 56).unwrap() as usize;
    let table_len = u64_at(&w, 64).unwrap() as usize;
    for e in w[table_off..table_off + table_len].chunks_exact(50) {
        let size = (u64_at(e, 0).unwrap() & 0x00FF_FFFF_FFFF_FFFF) as usize;
        let off = u64_at(e, 8).unwrap() as usize;
        if e[7] & 0x02 == 0 && u64_at(e, 16).unwrap() == data.len() as u64 {
            assert!(e[7] & 0x04 != 0, "sample must be compressible");
            return w[off..off + size].to_vec();
        }
    }
    panic!("blob not found in {}", wim.display());
}

fn wof_reparse(algorithm: u32) -> String {
    let mut d = Vec::new();
    d.extend_from_slice(&0x8000_0017u32.to_le_bytes());
    d.extend_from_slice(&16u16.to_le_bytes());
    d.extend_from_slice(&0u16.to_le_bytes());
    for v in [1u32, 2, 1, algorithm] {
        d.extend_from_slice(&v.to_le_bytes());
    }
    format!("0x{}", hex(&d))
}

#[test]
fn wof_files_read_transparently() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("wof.img");
    mkntfs(&img, 32 << 20, 4096, 512, "wof");
    let mut sample = text_bytes(150_000);
    sample.extend(std::fs::read("/bin/sh").unwrap());
    sample.extend(text_bytes(12_345));
    // (name, wimlib codec, chunk size, WOF algorithm number)
    let cases = [
        ("xpress4k", "XPRESS", 4096, 0u32),
        ("lzx", "LZX", 32768, 1),
        ("xpress8k", "XPRESS", 8192, 2),
        ("xpress16k", "XPRESS", 16384, 3),
    ];
    {
        let m = Mount::new(&img, &tmp.path().join("mnt"), "");
        for (name, codec, chunk, alg) in cases {
            let res = wimlib_resource(tmp.path(), &sample, codec, chunk);
            let p = m.dir.join(name);
            let f = std::fs::File::create(&p).unwrap();
            f.set_len(sample.len() as u64).unwrap();
            drop(f);
            std::fs::write(m.dir.join(format!("{name}:WofCompressedData")), &res).unwrap();
            run(
                "setfattr",
                &[
                    "-n",
                    "system.ntfs_reparse_data",
                    "-v",
                    &wof_reparse(alg),
                    p.to_str().unwrap(),
                ],
            );
        }
    }
    let vol: Volume = open(&img);
    for (name, ..) in cases {
        let id = vol.lookup(vol.root(), name).unwrap().unwrap();
        let md = vol.stat(id).unwrap();
        assert_eq!(md.kind, FileKind::File, "{name}");
        assert_eq!(md.reparse_tag, Some(0x8000_0017));
        assert_eq!(md.size, sample.len() as u64);
        assert!(
            md.allocated_size > 0 && md.allocated_size < md.size,
            "{md:?}"
        );
        let (size, h) = hash_stream(&vol, id, None);
        assert_eq!(size, sample.len() as u64, "{name}");
        assert_eq!(h, sha256_bytes(&sample), "{name}");
        // Unaligned reads across chunk boundaries.
        let mut b = vec![0u8; 10_000];
        let n = vol.read(id, None, 4000, &mut b).unwrap();
        assert_eq!(&b[..n], &sample[4000..14_000]);
        assert_eq!(
            vol.allocated_ranges(id, None).unwrap(),
            vec![0..sample.len() as u64]
        );
    }
}
