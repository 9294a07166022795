//! Lending through a disk: a head's flat extents lend what their files lend, at the
//! right place in the file; anything else (across extents, zero extents) lends nothing
//! and is read as usual.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use vmsnapfs_io::{ReadAt, SharedBytes};
use vmsnapfs_vmdk::{Disk, Resolver};

struct Files(HashMap<String, Arc<dyn ReadAt>>);

impl Resolver for Files {
    fn open(&self, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_owned()))
    }
}

fn pattern(len: usize, seed: u8) -> Arc<Vec<u8>> {
    Arc::new(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 9) as u8)
            .collect(),
    )
}

#[test]
fn flat_extents_lend_their_files_bytes_in_place() {
    let a = pattern(1 << 20, 1);
    let b = pattern(2 << 20, 2);
    let desc = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
                createType=\"monolithicFlat\"\n\n\
                RW 2048 FLAT \"a-flat.vmdk\" 0\n\
                RW 2048 FLAT \"b-flat.vmdk\" 1024\n\
                RW 2048 ZERO\n";
    let mut files: HashMap<String, Arc<dyn ReadAt>> = HashMap::new();
    files.insert("d.vmdk".into(), Arc::new(desc.as_bytes().to_vec()));
    files.insert("a-flat.vmdk".into(), Arc::new(SharedBytes(a.clone())));
    files.insert("b-flat.vmdk".into(), Arc::new(SharedBytes(b.clone())));
    let disk = Disk::open(Arc::new(Files(files)), "d.vmdk").unwrap();
    assert_eq!(disk.size(), 3 << 20);
    let mib = 1u64 << 20;

    // Inside the first extent: the file's own bytes, at the same offset.
    let l = disk.lend(4096, 8192).unwrap().unwrap();
    assert_eq!(l.bytes(), &a[4096..4096 + 8192]);
    // Inside the second: its file at the extent's offset (1024 sectors) plus the rest.
    let l = disk.lend(mib + 100, 1000).unwrap().unwrap();
    let at = 1024 * 512 + 100;
    assert_eq!(l.bytes(), &b[at..at + 1000]);
    // And what is lent is what a read gives.
    let mut buf = vec![0u8; 1000];
    disk.read_at(mib + 100, &mut buf).unwrap();
    assert_eq!(buf, l.bytes());

    // Across two extents, in a zero extent, or past the end: nothing lent.
    assert!(disk.lend(mib - 10, 20).is_none());
    assert!(disk.lend(2 * mib + 5, 10).is_none());
    assert!(disk.lend(3 * mib - 5, 10).is_none());
    assert!(disk.lend(u64::MAX - 2, 10).is_none());
}
