//! A small LRU split into independently locked shards, so that concurrent readers of
//! different grains or tables rarely wait on one another and never across I/O.

use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use lru::LruCache;

const SHARDS: usize = 16;

pub(crate) struct ShardedLru<V: Clone> {
    shards: Vec<Mutex<LruCache<u64, V>>>,
}

impl<V: Clone> ShardedLru<V> {
    /// `capacity` entries in total, spread over the shards (at least one each).
    pub(crate) fn new(capacity: usize) -> Self {
        let per = NonZeroUsize::new(capacity.div_ceil(SHARDS).max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per)))
                .collect(),
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
        self.shard(key).put(key, value);
    }
}
