//! Parsed directories, kept so that a lookup after a listing costs a hash probe.

use std::collections::HashMap;
use std::sync::Arc;

use vmsnapfs_io::ShardedLru;

use crate::{DirEntry, FileId};

/// Entries held in all cached listings: about 64 MiB at roughly 250 bytes each. Only
/// exFAT directories (up to 256 MiB) can exceed it alone; those are not cached.
pub(crate) const MAX_ENTRIES: usize = 256 * 1024;

pub(crate) struct Listing {
    pub entries: Arc<Vec<DirEntry>>,
    /// Folded name (and FAT 8.3 alias) to index in `entries`.
    pub index: HashMap<String, usize>,
}

pub(crate) type DirCache = ShardedLru<FileId, Arc<Listing>>;

/// Listings weighed by their entries, so that one 65 536-entry directory counts for
/// what it holds. One shard: a single listing may take most of the budget, and a shard
/// only has its part of it; a lookup holds the lock for a hash probe only.
pub(crate) fn dir_cache() -> DirCache {
    ShardedLru::weighted(MAX_ENTRIES, |l: &Arc<Listing>| l.entries.len() + 1).with_shards(1)
}
