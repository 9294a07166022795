//! A small bounded cache split into independently locked shards, so concurrent FUSE reads
//! of different files rarely contend on one lock.

use lru::LruCache;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

const SHARDS: usize = 16;

pub struct ShardedCache<K, V> {
    shards: Vec<Mutex<LruCache<K, Arc<V>>>>,
}

impl<K: Hash + Eq + Clone, V> ShardedCache<K, V> {
    /// `capacity` is the total entry count, spread over the shards.
    pub fn new(capacity: usize) -> Self {
        let per = NonZeroUsize::new(capacity.div_ceil(SHARDS).max(1)).unwrap_or(NonZeroUsize::MIN);
        ShardedCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per)))
                .collect(),
        }
    }

    fn shard(&self, k: &K) -> &Mutex<LruCache<K, Arc<V>>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        k.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    pub fn get(&self, k: &K) -> Option<Arc<V>> {
        // A poisoned shard only means another thread panicked mid-insert; the LRU itself
        // is still consistent, so keep using it.
        let mut g = self.shard(k).lock().unwrap_or_else(|p| p.into_inner());
        g.get(k).cloned()
    }

    pub fn insert(&self, k: K, v: Arc<V>) {
        let mut g = self.shard(&k).lock().unwrap_or_else(|p| p.into_inner());
        g.put(k, v);
    }

    /// Returns the cached value or computes it outside the lock (two threads may both
    /// compute on a miss; that is cheaper than holding a lock across disk I/O).
    pub fn get_or_try<E>(&self, k: K, f: impl FnOnce() -> Result<V, E>) -> Result<Arc<V>, E> {
        if let Some(v) = self.get(&k) {
            return Ok(v);
        }
        let v = Arc::new(f()?);
        self.insert(k, v.clone());
        Ok(v)
    }
}
