//! What a backup must be told about: hibernation, the dirty flag, EFS files, and data
//! past the initialized size (checked against Sleuth Kit's icat on the same image).

mod common;
use common::*;
use std::sync::{Arc, OnceLock};
use vmsnapfs_ntfs::{Error, FileId, Volume};

struct Base {
    img: Vec<u8>,
    mft: usize,
}

fn base() -> &'static Base {
    static B: OnceLock<Base> = OnceLock::new();
    B.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let img = tmp.path().join("vol.img");
        mkntfs(&img, 16 << 20, 4096, 512, "state");
        {
            let m = Mount::new(&img, &tmp.path().join("mnt"), "");
            let mut hib = b"HIBR".to_vec();
            hib.resize(16384, 0);
            std::fs::write(m.dir.join("hiberfil.sys"), hib).unwrap();
            std::fs::write(m.dir.join("b"), prng_bytes(1, 100_000)).unwrap();
            std::fs::write(m.dir.join("e"), prng_bytes(2, 20_000)).unwrap();
        }
        let img = std::fs::read(&img).unwrap();
        let mft = u64::from_le_bytes(img[0x30..0x38].try_into().unwrap()) as usize * 4096;
        Base { img, mft }
    })
}

fn open_bytes(img: Vec<u8>) -> Volume {
    Volume::open(Arc::new(img)).unwrap()
}

fn id(v: &Volume, p: &str) -> FileId {
    v.lookup_path(p).unwrap().unwrap()
}

/// Offset of the first attribute of `type_code` in record `n`.
fn attribute(b: &Base, n: u64, type_code: u32) -> usize {
    let rec = b.mft + n as usize * 1024;
    assert_eq!(&b.img[rec..rec + 4], b"FILE");
    let mut pos = rec + u16::from_le_bytes([b.img[rec + 20], b.img[rec + 21]]) as usize;
    loop {
        let t = u32::from_le_bytes(b.img[pos..pos + 4].try_into().unwrap());
        assert_ne!(t, 0xFFFF_FFFF, "attribute {type_code:#x} not in record {n}");
        if t == type_code {
            return pos;
        }
        pos += u32::from_le_bytes(b.img[pos + 4..pos + 8].try_into().unwrap()) as usize;
    }
}

#[test]
fn hibernation_and_dirty_flag_are_reported() {
    let b = base();
    let v = open_bytes(b.img.clone());
    let info = v.info();
    assert!(info.hibernated, "hiberfil.sys starts with HIBR");
    assert!(!info.dirty);
    let a = attribute(b, 3, 0x70); // $Volume's $VOLUME_INFORMATION
    let value = a + u16::from_le_bytes([b.img[a + 20], b.img[a + 21]]) as usize;
    let mut img = b.img.clone();
    img[value + 10] |= 0x01;
    assert!(open_bytes(img).info().dirty);
}

#[test]
fn encrypted_file_is_a_clear_per_file_error() {
    let b = base();
    let v = open_bytes(b.img.clone());
    let e = id(&v, "e");
    let a = attribute(b, e.0, 0x80);
    let mut img = b.img.clone();
    img[a + 13] |= 0x40; // attribute flag 0x4000: EFS-encrypted
    let v = open_bytes(img);
    assert!(v.stat(e).is_ok());
    let err = v.read(e, None, 0, &mut [0u8; 16]).unwrap_err();
    assert!(matches!(err, Error::Encrypted { .. }), "{err}");
    assert!(err.to_string().contains("encrypted"));
    let mut buf = vec![0u8; 100_000];
    assert_eq!(v.read(id(&v, "b"), None, 0, &mut buf).unwrap(), 100_000);
    assert_eq!(buf, prng_bytes(1, 100_000));
}

#[test]
fn bytes_past_initialized_size_read_as_zeros_like_icat() {
    let b = base();
    let v = open_bytes(b.img.clone());
    let f = id(&v, "b");
    let a = attribute(b, f.0, 0x80);
    let mut img = b.img.clone();
    img[a + 56..a + 64].copy_from_slice(&50_000u64.to_le_bytes());
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("patched.img");
    std::fs::write(&path, &img).unwrap();
    let v = open_bytes(img);
    let mut ours = vec![0xAAu8; 100_000];
    assert_eq!(v.read(f, None, 0, &mut ours).unwrap(), 100_000);
    let theirs = run("icat", &[path.to_str().unwrap(), &f.0.to_string()]);
    assert_eq!(ours.len(), theirs.len());
    assert!(ours == theirs, "differs from icat");
    assert_eq!(&ours[..50_000], &prng_bytes(1, 100_000)[..50_000]);
    assert!(ours[50_000..].iter().all(|&x| x == 0));
}

#[test]
fn content_stored_elsewhere_is_not_read_as_zeros() {
    // A dedup-style file: sparse unnamed stream plus a non-link reparse tag.
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("dedup.img");
    mkntfs(&img, 8 << 20, 4096, 512, "dedup");
    {
        let m = Mount::new(&img, &tmp.path().join("mnt"), "");
        let p = m.dir.join("deduped");
        std::fs::File::create(&p).unwrap().set_len(1 << 20).unwrap();
        let mut d = 0x8000_0013u32.to_le_bytes().to_vec();
        d.extend_from_slice(&8u16.to_le_bytes());
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        run(
            "setfattr",
            &[
                "-n",
                "system.ntfs_reparse_data",
                "-v",
                &format!("0x{}", hex(&d)),
                p.to_str().unwrap(),
            ],
        );
    }
    let v = open(&img);
    let f = id(&v, "deduped");
    let md = v.stat(f).unwrap();
    assert_eq!(md.kind, vmsnapfs_ntfs::FileKind::OtherReparse);
    assert_eq!(md.reparse_tag, Some(0x8000_0013));
    assert_eq!(md.size, 1 << 20);
    let err = v.read(f, None, 0, &mut [0u8; 16]).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}
