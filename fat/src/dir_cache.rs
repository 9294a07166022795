//! Parsed directories, kept so that a lookup after a listing costs a hash probe. The
//! bound is on the total number of entries held, not on the number of directories:
//! one 65 536-entry FAT directory weighs as much as a thousand small ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::{DirEntry, FileId};

/// About 64 MiB of entries at roughly 250 bytes each.
const MAX_ENTRIES: usize = 256 * 1024;

pub(crate) struct Listing {
    pub entries: Arc<Vec<DirEntry>>,
    /// Folded name (and FAT 8.3 alias) to index in `entries`.
    pub index: HashMap<String, usize>,
}

impl Listing {
    fn weight(&self) -> usize {
        self.entries.len() + 1
    }
}

struct Inner {
    lru: LruCache<FileId, Arc<Listing>>,
    held: usize,
}

pub(crate) struct DirCache {
    inner: Mutex<Inner>,
}

impl DirCache {
    pub fn new() -> DirCache {
        DirCache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                held: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, dir: FileId) -> Option<Arc<Listing>> {
        self.lock().lru.get(&dir).cloned()
    }

    /// Listings larger than the whole budget are not kept (only exFAT directories,
    /// up to 256 MiB, can be that large).
    pub fn put(&self, dir: FileId, listing: Arc<Listing>) {
        let weight = listing.weight();
        if weight > MAX_ENTRIES {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.lru.put(dir, listing) {
            inner.held -= old.weight();
        }
        inner.held += weight;
        while inner.held > MAX_ENTRIES {
            match inner.lru.pop_lru() {
                Some((_, old)) => inner.held -= old.weight(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileKind;

    fn listing(n: usize) -> Arc<Listing> {
        let e = DirEntry {
            name: "x".into(),
            short_name: None,
            id: FileId::ROOT,
            kind: FileKind::File,
            metadata: None,
        };
        Arc::new(Listing {
            entries: Arc::new(vec![e; n]),
            index: HashMap::new(),
        })
    }

    #[test]
    fn bounded_by_entries() {
        let c = DirCache::new();
        c.put(FileId::from_u64(32), listing(MAX_ENTRIES / 2));
        c.put(FileId::from_u64(64), listing(MAX_ENTRIES / 2 - 10));
        assert!(c.get(FileId::from_u64(32)).is_some());
        // Over budget: the least recently used (64, since 32 was just read) goes.
        c.put(FileId::from_u64(96), listing(100));
        assert!(c.get(FileId::from_u64(64)).is_none());
        assert!(c.get(FileId::from_u64(32)).is_some());
        assert!(c.get(FileId::from_u64(96)).is_some());
        c.put(FileId::from_u64(128), listing(MAX_ENTRIES + 1));
        assert!(c.get(FileId::from_u64(128)).is_none(), "too large to keep");
        assert!(c.lock().held <= MAX_ENTRIES);
    }
}
