//! The in-process block cache between virtual disks and the file-system readers.
//!
//! Blocks are fixed-size and aligned, keyed by (source, block number), and held in the
//! readers' shared [`ShardedLru`]: concurrent readers of different blocks rarely meet on
//! a lock, and no lock is held during I/O, so one slow disk (a remote datastore) cannot
//! stall readers of another.
//!
//! Bulk reads (a backup streaming an image or a big file) pass by the cache: the kernel's
//! page cache already keeps what FUSE served, and copying megabytes through 64 KiB blocks
//! would only cost copies and evict the metadata blocks the cache is really for.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use vmsnapfs_io::{check_bounds, Lent, ReadAt, ShardedLru};

/// Large enough that sequential reads cost few lookups, small enough that a random 4 KiB
/// read of an NTFS record does not drag in much more than it needs.
pub const BLOCK_SIZE: usize = 64 * 1024;
pub const DEFAULT_CAPACITY: u64 = 256 << 20;
/// A run of this many uncached whole blocks is read straight into the caller's buffer.
const BYPASS_BLOCKS: usize = 4;

type Key = (u64, u64);

pub struct BlockCache {
    blocks: ShardedLru<Key, Arc<[u8]>>,
    next_source: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` of blocks (rounded down to whole blocks;
    /// at least one block per shard of the LRU).
    pub fn new(capacity_bytes: u64) -> Arc<Self> {
        let blocks = (capacity_bytes / BLOCK_SIZE as u64) as usize;
        Arc::new(Self {
            blocks: ShardedLru::new(blocks),
            next_source: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// A view of `inner` whose reads go through this cache.
    pub fn wrap(self: &Arc<Self>, inner: Arc<dyn ReadAt>) -> CachedSource {
        CachedSource {
            cache: Arc::clone(self),
            id: self.next_source.fetch_add(1, Ordering::Relaxed),
            inner,
        }
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn get(&self, key: &Key) -> Option<Arc<[u8]>> {
        let found = self.blocks.get(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn put(&self, key: Key, block: Arc<[u8]>) {
        self.blocks.put(key, block);
    }
}

/// A source read through a [`BlockCache`].
pub struct CachedSource {
    cache: Arc<BlockCache>,
    id: u64,
    inner: Arc<dyn ReadAt>,
}

impl CachedSource {
    fn block(&self, index: u64) -> io::Result<Arc<[u8]>> {
        let key = (self.id, index);
        if let Some(b) = self.cache.get(&key) {
            return Ok(b);
        }
        // Two threads missing the same block both read it; that costs one extra read in a
        // rare race and saves holding any lock across I/O.
        let start = index * BLOCK_SIZE as u64;
        let len = (self.inner.size() - start).min(BLOCK_SIZE as u64) as usize;
        // Allocated in place (no Vec to copy from), then filled while still unshared.
        let mut block: Arc<[u8]> = std::iter::repeat_n(0u8, len).collect();
        let fill = Arc::get_mut(&mut block).expect("a new block has no other owner");
        self.inner.read_at(start, fill)?;
        self.cache.put(key, Arc::clone(&block));
        Ok(block)
    }

    /// How many whole blocks from `index` on (at most `max`) are not cached.
    fn uncached_run(&self, index: u64, max: usize) -> usize {
        (0..max as u64)
            .take_while(|i| !self.cache.blocks.contains(&(self.id, index + i)))
            .count()
    }
}

impl ReadAt for CachedSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_bounds(offset, buf.len(), self.inner.size())?;
        // Changed extents are read once each, far apart: caching them would cost a
        // fresh block and a copy per extent and evict the metadata the cache is for.
        if vmsnapfs_io::hint::is_scattered() {
            return self.inner.read_at(offset, buf);
        }
        // A bulk read passes by every block it touches that is not cached, its unaligned
        // head and tail too: a file whose data does not start on a block boundary
        // would otherwise leave two blocks of every read in the cache, and a streamed
        // gigabyte would fill it.
        let bulk = buf.len() >= BYPASS_BLOCKS * BLOCK_SIZE;
        let end = offset + buf.len() as u64;
        let last = (end - 1) / BLOCK_SIZE as u64;
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let index = pos / BLOCK_SIZE as u64;
            let within = (pos % BLOCK_SIZE as u64) as usize;
            if bulk {
                let run = self.uncached_run(index, (last - index + 1) as usize);
                if run > 0 {
                    let to = ((index + run as u64) * BLOCK_SIZE as u64).min(end);
                    let n = (to - pos) as usize;
                    self.inner.read_at(pos, &mut buf[done..done + n])?;
                    done += n;
                    continue;
                }
            }
            let block = self.block(index)?;
            let n = (block.len() - within).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&block[within..within + n]);
            done += n;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    /// Lends what `read_at` would take straight from the source: a bulk read of whole
    /// blocks none of which is cached.
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<Lent>> {
        let end = offset.checked_add(len as u64)?;
        let whole = len / BLOCK_SIZE;
        let aligned =
            offset % BLOCK_SIZE as u64 == 0 && (len % BLOCK_SIZE == 0 || end == self.inner.size());
        if !aligned || whole < BYPASS_BLOCKS || end > self.inner.size() {
            return None;
        }
        let index = offset / BLOCK_SIZE as u64;
        let blocks = len.div_ceil(BLOCK_SIZE);
        if self.uncached_run(index, blocks) < blocks {
            return None;
        }
        self.inner.lend(offset, len)
    }

    /// Where the source holds the bytes, cached or not: a frozen source's bytes never
    /// change, so a cached block and the file agree, and a placed reply never copies
    /// through a block.
    fn place(&self, offset: u64, len: u64, out: &mut vmsnapfs_io::Places) -> bool {
        self.inner.place(offset, len, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use vmsnapfs_io::SharedBytes;

    /// Counts its reads, and lends any range (as a read-ahead chunk would).
    struct Counting {
        data: SharedBytes,
        reads: AtomicUsize,
    }

    impl ReadAt for Counting {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.data.read_at(offset, buf)
        }
        fn size(&self) -> u64 {
            self.data.size()
        }
        fn lend(&self, offset: u64, len: usize) -> Option<io::Result<Lent>> {
            self.data.lend(offset, len)
        }
    }

    fn source(len: usize) -> Arc<Counting> {
        Arc::new(Counting {
            data: SharedBytes(Arc::new(
                (0..len).map(|i| (i * 7 + i / 251) as u8).collect(),
            )),
            reads: AtomicUsize::new(0),
        })
    }

    #[test]
    fn reads_across_blocks_and_the_tail_match_the_source() {
        let src = source(3 * BLOCK_SIZE + 1234);
        let cache = BlockCache::new(16 << 20);
        let cached = cache.wrap(src.clone());
        for (off, len) in [
            (0u64, 10usize),
            (BLOCK_SIZE as u64 - 5, 10),
            (1, 3 * BLOCK_SIZE),
            (3 * BLOCK_SIZE as u64, 1234),
        ] {
            let mut got = vec![0u8; len];
            cached.read_at(off, &mut got).unwrap();
            assert_eq!(got, src.data.0[off as usize..off as usize + len]);
        }
        let mut buf = [0u8; 2];
        assert!(cached.read_at(src.size() - 1, &mut buf).is_err());
    }

    #[test]
    fn repeated_reads_hit_the_cache() {
        let src = source(4 * BLOCK_SIZE);
        let cache = BlockCache::new(16 << 20);
        let cached = cache.wrap(src.clone());
        let mut buf = vec![0u8; 4096];
        for _ in 0..100 {
            cached.read_at(100, &mut buf).unwrap();
        }
        assert_eq!(src.reads.load(Ordering::Relaxed), 1);
        assert_eq!(cache.stats(), (99, 1));
    }

    #[test]
    fn capacity_bounds_what_is_kept() {
        let src = source(64 * BLOCK_SIZE);
        let cache = BlockCache::new((vmsnapfs_io::DEFAULT_SHARDS * BLOCK_SIZE) as u64);
        let cached = cache.wrap(src.clone());
        let mut buf = vec![0u8; BLOCK_SIZE];
        for i in 0..64u64 {
            cached.read_at(i * BLOCK_SIZE as u64, &mut buf).unwrap();
        }
        let kept = cache.blocks.len();
        assert!(kept <= vmsnapfs_io::DEFAULT_SHARDS, "{kept} blocks kept");
    }

    #[test]
    fn scattered_reads_pass_by_whatever_their_size() {
        let src = source(8 * BLOCK_SIZE);
        let cache = BlockCache::new(16 << 20);
        let cached = cache.wrap(src.clone());
        for (off, len) in [(3 * BLOCK_SIZE as u64 + 5, 100), (0, BLOCK_SIZE)] {
            let mut buf = vec![0u8; len];
            vmsnapfs_io::hint::scattered(|| cached.read_at(off, &mut buf)).unwrap();
            assert_eq!(buf, src.data.0[off as usize..off as usize + len]);
        }
        assert_eq!(cache.blocks.len(), 0, "nothing kept");
        assert_eq!(src.reads.load(Ordering::Relaxed), 2, "one read each");
    }

    #[test]
    fn bulk_reads_pass_by_and_use_what_is_cached() {
        let src = source(16 * BLOCK_SIZE + 100);
        let cache = BlockCache::new(16 << 20);
        let cached = cache.wrap(src.clone());
        let kept = |c: &BlockCache| c.blocks.len();
        // Block 5 is cached by a small read first.
        let mut small = [0u8; 10];
        cached
            .read_at(5 * BLOCK_SIZE as u64 + 3, &mut small)
            .unwrap();
        assert_eq!(kept(&cache), 1);
        // Unaligned head, then runs around the cached block 5, then a tail past the end
        // of whole blocks: every byte right, nothing more cached.
        let off = BLOCK_SIZE as u64 - 7;
        let mut big = vec![0u8; 15 * BLOCK_SIZE + 50];
        let reads = src.reads.load(Ordering::Relaxed);
        cached.read_at(off, &mut big).unwrap();
        assert_eq!(big, src.data.0[off as usize..off as usize + big.len()]);
        // Blocks 0-4 (from the head on: passed by, one read), block 5 (hit), blocks 6-16
        // (passed by to the tail, one read).
        assert_eq!(src.reads.load(Ordering::Relaxed) - reads, 2);
        assert_eq!(kept(&cache), 1);
        // A short run of uncached blocks goes through the cache as before.
        let mut mid = vec![0u8; 3 * BLOCK_SIZE];
        cached.read_at(BLOCK_SIZE as u64, &mut mid).unwrap();
        assert_eq!(mid, src.data.0[BLOCK_SIZE..4 * BLOCK_SIZE]);
        assert_eq!(kept(&cache), 4);
        // A bulk read that starts inside a cached block takes that block from the cache.
        let reads = src.reads.load(Ordering::Relaxed);
        let mut from_cached = vec![0u8; 6 * BLOCK_SIZE];
        cached
            .read_at(2 * BLOCK_SIZE as u64 + 9, &mut from_cached)
            .unwrap();
        let at = 2 * BLOCK_SIZE + 9;
        assert_eq!(from_cached, src.data.0[at..at + 6 * BLOCK_SIZE]);
        // Blocks 2-3 hit, 4 passed by, 5 hit, 6-8 passed by: two reads.
        assert_eq!(src.reads.load(Ordering::Relaxed) - reads, 2);
        assert_eq!(kept(&cache), 4);
    }

    #[test]
    fn only_bulk_reads_of_uncached_whole_blocks_are_lent() {
        let src = source(16 * BLOCK_SIZE + 100);
        let cache = BlockCache::new(16 << 20);
        let c = cache.wrap(src.clone());
        let b = BLOCK_SIZE as u64;
        let l = c.lend(0, 8 * BLOCK_SIZE).unwrap().unwrap();
        assert_eq!(l.bytes(), &src.data.0[..8 * BLOCK_SIZE]);
        // Whole blocks up to the end, the last one partial.
        let l = c.lend(12 * b, 4 * BLOCK_SIZE + 100).unwrap().unwrap();
        assert_eq!(l.bytes(), &src.data.0[12 * BLOCK_SIZE..]);
        // Unaligned, short, ragged or past the end: not lent.
        assert!(c.lend(100, 8 * BLOCK_SIZE).is_none());
        assert!(c.lend(0, 2 * BLOCK_SIZE).is_none());
        assert!(c.lend(0, 8 * BLOCK_SIZE + 1).is_none());
        assert!(c.lend(12 * b, 8 * BLOCK_SIZE).is_none());
        // A cached block inside: the read goes through the cache, not lent.
        let mut one = [0u8; 10];
        c.read_at(3 * b, &mut one).unwrap();
        assert!(c.lend(0, 8 * BLOCK_SIZE).is_none());
        assert!(c.lend(4 * b, 8 * BLOCK_SIZE).is_some());
    }

    #[test]
    fn two_sources_do_not_share_blocks() {
        let a = source(BLOCK_SIZE);
        let b = Arc::new(Counting {
            data: SharedBytes(Arc::new(vec![9u8; BLOCK_SIZE])),
            reads: AtomicUsize::new(0),
        });
        let cache = BlockCache::new(16 << 20);
        let (ca, cb) = (cache.wrap(a.clone()), cache.wrap(b));
        let mut x = [0u8; 8];
        let mut y = [0u8; 8];
        ca.read_at(0, &mut x).unwrap();
        cb.read_at(0, &mut y).unwrap();
        assert_eq!(x, a.data.0[..8]);
        assert_eq!(y, [9u8; 8]);
    }

    #[test]
    fn concurrent_readers_see_right_bytes() {
        let src = source(32 * BLOCK_SIZE + 77);
        let cache = BlockCache::new((8 * BLOCK_SIZE) as u64);
        let cached = Arc::new(cache.wrap(src.clone()));
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let cached = Arc::clone(&cached);
                let src = Arc::clone(&src);
                s.spawn(move || {
                    let mut state = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) + 1;
                    for _ in 0..2000 {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        let len = (state % 20000) as usize + 1;
                        let off = (state >> 20) % (src.size() - len as u64);
                        let mut buf = vec![0u8; len];
                        cached.read_at(off, &mut buf).unwrap();
                        assert_eq!(buf, src.data.0[off as usize..off as usize + len]);
                    }
                });
            }
        });
    }
}
