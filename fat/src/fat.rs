//! The File Allocation Table itself, and the cluster chains it links (FAT spec §4,
//! exFAT spec §4.1). Chains are walked once into runs of contiguous clusters so that
//! positional reads are a binary search, not a walk from the first cluster.

use std::sync::Arc;

use vmsnapfs_io::ReadAt;

use crate::error::{Error, Result};
use crate::read_exact;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    W12,
    W16,
    W32,
    ExFat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Next(u32),
    End,
    Free,
    Bad,
    Invalid(u32),
}

/// How long a chain must be. Files know their length from the directory entry, so
/// their chain must end exactly there; directories end at the end-of-chain mark, with
/// a ceiling from the format's maximum directory size that also stops loops early.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want {
    Exactly(u64),
    UntilEnd { max: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    start: u32,
    len: u32,
}

/// A resolved chain: runs of contiguous clusters, with each run's first index in the file.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    runs: Vec<Run>,
    starts: Vec<u64>,
    clusters: u64,
}

impl Chain {
    /// Roughly proportional to the memory the chain holds; at least 1.
    pub(crate) fn weight(&self) -> usize {
        self.runs.len() + 1
    }

    fn push(&mut self, c: u32) {
        if let Some(last) = self.runs.last_mut() {
            if last.start.checked_add(last.len) == Some(c) && last.len < u32::MAX {
                last.len += 1;
                self.clusters += 1;
                return;
            }
        }
        self.runs.push(Run { start: c, len: 1 });
        self.starts.push(self.clusters);
        self.clusters += 1;
    }

    pub fn contiguous(first: u32, count: u64) -> Chain {
        let mut chain = Chain::default();
        if count > 0 {
            // Callers bound `count` by the cluster count, which fits in u32.
            chain.runs.push(Run {
                start: first,
                len: count.min(u64::from(u32::MAX)) as u32,
            });
            chain.starts.push(0);
            chain.clusters = count;
        }
        chain
    }

    /// `(first cluster, length)` of each run, in file order.
    pub fn runs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.runs.iter().map(|r| (r.start, r.len))
    }

    pub fn clusters(&self) -> u64 {
        self.clusters
    }

    /// For the cluster at `index` in the chain: its number on disk and how many
    /// clusters from there on are contiguous.
    pub fn locate(&self, index: u64) -> Option<(u32, u64)> {
        let i = match self.starts.binary_search(&index) {
            Ok(i) => i,
            Err(0) => return None,
            Err(i) => i - 1,
        };
        let run = self.runs.get(i)?;
        let within = index - self.starts[i];
        if within >= u64::from(run.len) {
            return None;
        }
        Some((run.start + within as u32, u64::from(run.len) - within))
    }

    fn contains(&self, c: u32) -> bool {
        self.runs
            .iter()
            .any(|r| c >= r.start && u64::from(c) < u64::from(r.start) + u64::from(r.len))
    }

    /// A chain that names a cluster twice is a loop or cross-link: reading it would
    /// return the same data twice, so it is an error rather than a file.
    fn check_distinct(&self, first: u32) -> Result<()> {
        let mut runs = self.runs.clone();
        runs.sort_unstable_by_key(|r| r.start);
        for w in runs.windows(2) {
            if u64::from(w[0].start) + u64::from(w[0].len) > u64::from(w[1].start) {
                return Err(Error::ChainLoop {
                    first,
                    cluster: w[1].start,
                });
            }
        }
        Ok(())
    }
}

pub(crate) struct FatTable {
    reader: Arc<dyn ReadAt>,
    start: u64,
    bytes: u64,
    width: Width,
    /// Highest valid cluster number (cluster count + 1).
    max_cluster: u32,
}

const BLOCK: u64 = 16 * 1024;

/// The last FAT block read during one walk: chains are mostly local, so this turns a
/// walk into a few large reads instead of one read per cluster.
#[derive(Default)]
struct BlockCache {
    index: Option<u64>,
    data: Vec<u8>,
}

impl FatTable {
    pub fn new(
        reader: Arc<dyn ReadAt>,
        start: u64,
        bytes: u64,
        width: Width,
        cluster_count: u32,
    ) -> FatTable {
        FatTable {
            reader,
            start,
            bytes,
            width,
            max_cluster: cluster_count.saturating_add(1),
        }
    }

    pub fn max_cluster(&self) -> u32 {
        self.max_cluster
    }

    fn bytes_at(&self, cache: &mut BlockCache, off: u64, out: &mut [u8]) -> Result<()> {
        let len = out.len() as u64;
        if off + len > self.bytes {
            return Err(Error::CorruptEntry {
                offset: self.start + off,
                reason: "FAT entry lies past the end of the FAT".into(),
            });
        }
        let block = off / BLOCK;
        if (off + len - 1) / BLOCK != block {
            return read_exact(&*self.reader, self.start + off, out);
        }
        if cache.index != Some(block) {
            let bstart = block * BLOCK;
            let blen = BLOCK.min(self.bytes - bstart) as usize;
            cache.data.resize(blen, 0);
            cache.index = None;
            read_exact(&*self.reader, self.start + bstart, &mut cache.data)?;
            cache.index = Some(block);
        }
        let rel = (off - block * BLOCK) as usize;
        out.copy_from_slice(&cache.data[rel..rel + out.len()]);
        Ok(())
    }

    fn raw(&self, cache: &mut BlockCache, n: u32) -> Result<u32> {
        let n64 = u64::from(n);
        match self.width {
            Width::W12 => {
                let mut b = [0u8; 2];
                self.bytes_at(cache, n64 + n64 / 2, &mut b)?;
                let v = u16::from_le_bytes(b);
                Ok(u32::from(if n & 1 == 1 { v >> 4 } else { v & 0x0fff }))
            }
            Width::W16 => {
                let mut b = [0u8; 2];
                self.bytes_at(cache, n64 * 2, &mut b)?;
                Ok(u32::from(u16::from_le_bytes(b)))
            }
            Width::W32 | Width::ExFat => {
                let mut b = [0u8; 4];
                self.bytes_at(cache, n64 * 4, &mut b)?;
                let v = u32::from_le_bytes(b);
                // FAT32 entries are 28 bits; the top four are reserved.
                Ok(if self.width == Width::W32 {
                    v & 0x0fff_ffff
                } else {
                    v
                })
            }
        }
    }

    /// The raw value of entry `n`, for the dirty bits kept in entry 1.
    pub fn entry(&self, n: u32) -> Result<u32> {
        self.raw(&mut BlockCache::default(), n)
    }

    pub fn count_free(&self) -> Result<u32> {
        let mut cache = BlockCache::default();
        let mut free = 0;
        for c in 2..=self.max_cluster {
            if self.raw(&mut cache, c)? == 0 {
                free += 1;
            }
        }
        Ok(free)
    }

    fn link(&self, cache: &mut BlockCache, n: u32) -> Result<Link> {
        let v = self.raw(cache, n)?;
        let (bad, end_from) = match self.width {
            Width::W12 => (0x0ff7, 0x0ff8),
            Width::W16 => (0xfff7, 0xfff8),
            Width::W32 => (0x0fff_fff7, 0x0fff_fff8),
            Width::ExFat => (0xffff_fff7, 0xffff_fff8),
        };
        Ok(if v == 0 {
            Link::Free
        } else if v == bad {
            Link::Bad
        } else if v >= end_from {
            Link::End
        } else if (2..=self.max_cluster).contains(&v) {
            Link::Next(v)
        } else {
            Link::Invalid(v)
        })
    }

    /// The cluster after `c` in its chain, `None` at the end of the chain.
    pub fn next(&self, c: u32) -> Result<Option<u32>> {
        let broken = |what| Error::ChainBroken {
            first: c,
            cluster: c,
            index: 0,
            what,
        };
        match self.link(&mut BlockCache::default(), c)? {
            Link::Next(n) => Ok(Some(n)),
            Link::End => Ok(None),
            Link::Free => Err(broken("free cluster in chain")),
            Link::Bad => Err(broken("bad cluster in chain")),
            Link::Invalid(v) => Err(Error::ClusterOutOfRange {
                first: c,
                cluster: v,
                max: self.max_cluster,
            }),
        }
    }

    pub fn check_cluster(&self, first: u32, c: u32) -> Result<()> {
        if (2..=self.max_cluster).contains(&c) {
            Ok(())
        } else {
            Err(Error::ClusterOutOfRange {
                first,
                cluster: c,
                max: self.max_cluster,
            })
        }
    }

    pub fn chain(&self, first: u32, want: Want) -> Result<Chain> {
        let cluster_count = u64::from(self.max_cluster - 1);
        let limit = match want {
            Want::Exactly(0) => return Ok(Chain::default()),
            Want::Exactly(n) => n,
            Want::UntilEnd { max } => max.min(cluster_count),
        };
        if let Want::Exactly(n) = want {
            if n > cluster_count {
                return Err(Error::ChainTooLong {
                    first,
                    limit: cluster_count,
                });
            }
        }
        self.check_cluster(first, first)?;
        let mut cache = BlockCache::default();
        let mut chain = Chain::default();
        let mut cur = first;
        loop {
            chain.push(cur);
            let index = chain.clusters;
            let link = self.link(&mut cache, cur)?;
            if let Want::Exactly(n) = want {
                if index == n {
                    chain.check_distinct(first)?;
                    return match link {
                        Link::End => Ok(chain),
                        Link::Next(c) if chain.contains(c) => {
                            Err(Error::ChainLoop { first, cluster: c })
                        }
                        _ => Err(Error::ChainBroken {
                            first,
                            cluster: cur,
                            index,
                            what: "chain continues past the end of the file",
                        }),
                    };
                }
            }
            let broken = |what| Error::ChainBroken {
                first,
                cluster: cur,
                index,
                what,
            };
            match link {
                Link::Next(c) => {
                    if index >= limit {
                        return Err(Error::ChainTooLong { first, limit });
                    }
                    cur = c;
                }
                Link::End => match want {
                    Want::Exactly(_) => {
                        return Err(broken("chain ends before the end of the file"))
                    }
                    Want::UntilEnd { .. } => return chain.check_distinct(first).map(|()| chain),
                },
                Link::Free => return Err(broken("free cluster in chain")),
                Link::Bad => return Err(broken("bad cluster in chain")),
                Link::Invalid(c) => {
                    return Err(Error::ClusterOutOfRange {
                        first,
                        cluster: c,
                        max: self.max_cluster,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table16(entries: &[u16]) -> FatTable {
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
        let len = bytes.len() as u64;
        FatTable::new(
            Arc::new(bytes),
            0,
            len,
            Width::W16,
            entries.len() as u32 - 2,
        )
    }

    #[test]
    fn walks_and_detects_loops() {
        let t = table16(&[0xfff8, 0xffff, 3, 4, 0xffff, 6, 5, 0, 9, 0xffff]);
        let c = t.chain(2, Want::Exactly(3)).unwrap();
        assert_eq!(c.locate(0), Some((2, 3)));
        assert_eq!(c.locate(2), Some((4, 1)));
        assert_eq!(c.locate(3), None);
        assert!(matches!(
            t.chain(5, Want::UntilEnd { max: 100 }),
            Err(Error::ChainTooLong { .. })
        ));
        assert!(matches!(
            t.chain(5, Want::Exactly(3)),
            Err(Error::ChainLoop { .. })
        ));
        assert!(matches!(
            t.chain(2, Want::Exactly(2)),
            Err(Error::ChainBroken { .. })
        ));
        assert!(matches!(
            t.chain(7, Want::Exactly(2)),
            Err(Error::ChainBroken { .. })
        ));
        assert!(t.chain(8, Want::Exactly(2)).is_ok());
        assert!(matches!(
            t.chain(10, Want::Exactly(1)),
            Err(Error::ClusterOutOfRange { .. })
        ));
    }

    #[test]
    fn fat12_packing() {
        // Entries 0..3 = 0xFF8, 0xFFF, 0x003, 0xFFF packed 12-bit.
        let bytes = vec![0xF8, 0xFF, 0xFF, 0x03, 0xF0, 0xFF];
        let t = FatTable::new(Arc::new(bytes), 0, 6, Width::W12, 2);
        let c = t.chain(2, Want::Exactly(2)).unwrap();
        assert_eq!(c.clusters(), 2);
    }
}
