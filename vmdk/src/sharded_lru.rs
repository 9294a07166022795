//! A small LRU split into independently locked shards, so that concurrent readers of
//! different grains or tables rarely wait on one another and never across I/O.

use std::sync::{Mutex, MutexGuard};

use lru::LruCache;

const SHARDS: usize = 16;

pub(crate) struct ShardedLru<V: Clone> {
    shards: Vec<Mutex<LruCache<u64, V>>>,
    per_shard: usize,
}

impl<V: Clone> ShardedLru<V> {
    /// `capacity` entries in total, spread over the shards (at least one each).
    pub(crate) fn new(capacity: usize) -> Self {
        // Unbounded maps trimmed by hand: `LruCache::new` reserves the whole capacity up
        // front, which adds up across the hundreds of extents of a split disk.
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::unbounded()))
                .collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: u64) -> MutexGuard<'_, LruCache<u64, V>> {
        // Neighbouring keys go to different shards: sequential readers spread out.
        let m = &self.shards[(key % SHARDS as u64) as usize];
        // A panic elsewhere while holding the lock leaves a usable cache: entries are
        // immutable once inserted.
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, key: u64) -> Option<V> {
        self.shard(key).get(&key).cloned()
    }

    pub(crate) fn put(&self, key: u64, value: V) {
        let mut s = self.shard(key);
        s.put(key, value);
        while s.len() > self.per_shard {
            s.pop_lru();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_per_shard() {
        let c = ShardedLru::new(32); // two per shard
        for k in [0u64, 16, 32] {
            c.put(k, k);
        }
        assert_eq!(c.get(0), None);
        assert_eq!(c.get(16), Some(16));
        assert_eq!(c.get(32), Some(32));
        assert_eq!(c.get(1), None);
    }
}
