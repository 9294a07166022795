//! The bytes of one directory, with the map from a position in them back to a byte
//! offset on the volume (which is what a `FileId` is made of).

use std::sync::Arc;

use crate::fat::Chain;

/// Bytes of a directory and where each of them lives on the volume.
pub(crate) struct DirData {
    pub bytes: Vec<u8>,
    /// exFAT: the directory is NoFatChain (its clusters are consecutive).
    pub contiguous: bool,
    map: DirMap,
    cluster_size: u64,
    data_start: u64,
}

pub(crate) enum DirMap {
    /// A fixed region (the FAT12/16 root) starting at this volume offset.
    Linear(u64),
    Chain(Arc<Chain>),
}

impl DirData {
    pub fn new(bytes: Vec<u8>, map: DirMap, cluster_size: u64, data_start: u64) -> DirData {
        DirData {
            bytes,
            contiguous: false,
            map,
            cluster_size,
            data_start,
        }
    }

    /// Directory bytes that lie contiguously at `base`, in clusters of `cluster_size`.
    #[cfg(feature = "fuzzing")]
    pub fn linear(bytes: Vec<u8>, base: u64, cluster_size: u64) -> DirData {
        DirData {
            bytes,
            contiguous: false,
            map: DirMap::Linear(base),
            cluster_size: cluster_size.max(32),
            data_start: base,
        }
    }

    /// Volume byte offset of `index` within the directory data.
    pub fn offset(&self, index: usize) -> u64 {
        let i = index as u64;
        match &self.map {
            DirMap::Linear(base) => base + i,
            DirMap::Chain(chain) => match chain.locate(i / self.cluster_size) {
                Some((c, _)) => {
                    self.data_start + u64::from(c - 2) * self.cluster_size + i % self.cluster_size
                }
                None => 0,
            },
        }
    }
}
