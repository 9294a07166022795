//! Parsed directories, kept so that a lookup after a listing costs a hash probe.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cache::{Weight, WeightedLru};
use crate::{DirEntry, FileId};

/// Entries held in all cached listings: about 64 MiB at roughly 250 bytes each. Only
/// exFAT directories (up to 256 MiB) can exceed it alone; those are not cached.
pub(crate) const MAX_ENTRIES: usize = 256 * 1024;

pub(crate) struct Listing {
    pub entries: Arc<Vec<DirEntry>>,
    /// Folded name (and FAT 8.3 alias) to index in `entries`.
    pub index: HashMap<String, usize>,
}

impl Weight for Listing {
    fn weight(&self) -> usize {
        self.entries.len() + 1
    }
}

pub(crate) type DirCache = WeightedLru<FileId, Listing>;
