//! One bounded, thread-safe LRU for every cache of the readers.
//!
//! FUSE serves many reads at once through `&self`, and nearly every read asks a cache
//! first. One lock would make the busiest cache a queue, so the entries are split into
//! shards by key hash, each behind its own mutex, held only for the map operation and
//! never across I/O: two threads that miss the same key both compute it (one wasted
//! read in a rare race, against holding a lock across a slow disk).
//!
//! The bound is a budget of weight: by default every entry weighs 1 (a count of
//! entries), and a cache whose entries differ in cost (a directory listing of three
//! names or of 65 536) weighs each by what it holds. The budget is split evenly over the
//! shards and each evicts its own least recently used entries, so recency is exact within
//! a shard and approximate across them; a cache that must hold single entries close to
//! its whole budget asks for fewer shards.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

use lru::LruCache;

/// Enough that 2-16 FUSE threads rarely meet on one lock; few enough that a small
/// budget still leaves every shard room for a few entries.
pub const DEFAULT_SHARDS: usize = 16;

struct Shard<K: Hash + Eq, V> {
    lru: LruCache<K, V>,
    held: usize,
    budget: usize,
}

/// A sharded LRU from `K` to `V`. Values are handed out by clone, so `V` is typically an
/// `Arc` (or a small `Copy` value).
pub struct ShardedLru<K: Hash + Eq, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    budget: usize,
    weigh: fn(&V) -> usize,
}

impl<K: Hash + Eq, V: Clone> ShardedLru<K, V> {
    /// At most about `entries` entries (at least one per shard).
    pub fn new(entries: usize) -> Self {
        Self::build(entries, DEFAULT_SHARDS, |_| 1)
    }

    /// Bounded by the total `weigh` of what is held, not by the number of entries.
    /// `weigh` should be roughly proportional to the memory an entry holds.
    pub fn weighted(budget: usize, weigh: fn(&V) -> usize) -> Self {
        Self::build(budget, DEFAULT_SHARDS, weigh)
    }

    /// The same budget over `shards` shards (at least one). Each shard gets an equal part
    /// of the budget and an entry heavier than its shard's part is not kept, so a cache
    /// whose single entries may take most of the budget needs one shard.
    pub fn with_shards(self, shards: usize) -> Self {
        Self::build(self.budget, shards, self.weigh)
    }

    fn build(budget: usize, shards: usize, weigh: fn(&V) -> usize) -> Self {
        let n = shards.max(1);
        Self {
            // Unbounded maps trimmed by hand: `LruCache::new` reserves its whole capacity
            // up front, which adds up across the hundreds of extents of a split disk.
            shards: (0..n)
                .map(|i| {
                    // The remainder goes to the first shards so the parts add up to the
                    // budget; every shard can hold something.
                    let part = budget / n + usize::from(i < budget % n);
                    Mutex::new(Shard {
                        lru: LruCache::unbounded(),
                        held: 0,
                        budget: part.max(1),
                    })
                })
                .collect(),
            budget,
            weigh,
        }
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, Shard<K, V>> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let m = &self.shards[(h.finish() % self.shards.len() as u64) as usize];
        // A thread that panicked while holding the lock left a consistent map: every
        // mutation below completes before anything that could panic.
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value for `key`, now the most recently used of its shard.
    pub fn get(&self, key: &K) -> Option<V> {
        self.shard(key).lru.get(key).cloned()
    }

    /// Whether `key` is held, without making it more recent: a probe that decides how
    /// to read must not keep blocks alive that it then does not use.
    pub fn contains(&self, key: &K) -> bool {
        self.shard(key).lru.contains(key)
    }

    /// Holds `value` for `key`, evicting the least recently used entries of its shard
    /// until the shard is within its budget. A value heavier than the shard's whole
    /// budget is not kept: it would evict everything else and then itself.
    pub fn put(&self, key: K, value: V) {
        let weight = (self.weigh)(&value);
        let mut s = self.shard(&key);
        if weight > s.budget {
            // The key's old value is stale now that a new one exists.
            if let Some(old) = s.lru.pop(&key) {
                s.held -= (self.weigh)(&old);
            }
            return;
        }
        if let Some(old) = s.lru.put(key, value) {
            s.held -= (self.weigh)(&old);
        }
        s.held += weight;
        while s.held > s.budget {
            match s.lru.pop_lru() {
                Some((_, old)) => s.held -= (self.weigh)(&old),
                None => break,
            }
        }
    }

    /// The value for `key`, or `make`'s, which is then held. `make` runs without any
    /// lock held, so it may do I/O; two threads missing the same key may both run it.
    pub fn get_or_try_insert<E>(
        &self,
        key: K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let v = make()?;
        self.put(key, v.clone());
        Ok(v)
    }

    /// Entries held in all shards.
    pub fn len(&self) -> usize {
        self.each_shard(|s| s.lru.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight held in all shards (the entry count for an unweighted cache).
    pub fn weight(&self) -> usize {
        self.each_shard(|s| s.held)
    }

    fn each_shard(&self, f: impl Fn(&Shard<K, V>) -> usize) -> usize {
        self.shards
            .iter()
            .map(|m| f(&m.lock().unwrap_or_else(|p| p.into_inner())))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn evicts_the_least_recently_used_first() {
        let c = ShardedLru::new(3).with_shards(1);
        for k in 1..=3u32 {
            c.put(k, k * 10);
        }
        // Reading 1 makes 2 the oldest; `contains` does not refresh 2.
        assert_eq!(c.get(&1), Some(10));
        assert!(c.contains(&2));
        c.put(4, 40);
        assert_eq!(c.get(&2), None);
        assert_eq!(
            (c.get(&1), c.get(&3), c.get(&4)),
            (Some(10), Some(30), Some(40))
        );
        // Replacing a value refreshes it and does not count it twice.
        c.put(3, 31);
        c.put(5, 50);
        assert_eq!(c.get(&1), None);
        assert_eq!(c.get(&3), Some(31));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn the_entry_budget_holds_over_all_shards() {
        let c = ShardedLru::new(64);
        for k in 0..10_000u64 {
            c.put(k, k);
        }
        assert_eq!(c.len(), 64, "every shard full, none over");
        assert_eq!(c.weight(), 64);
        // A budget below the shard count still keeps one entry per shard.
        let tiny = ShardedLru::new(0);
        for k in 0..1000u64 {
            tiny.put(k, ());
        }
        assert_eq!(tiny.len(), DEFAULT_SHARDS);
    }

    #[test]
    fn weighted_caches_count_what_entries_hold() {
        let c: ShardedLru<u32, usize> = ShardedLru::weighted(100, |w| *w).with_shards(1);
        c.put(1, 50);
        c.put(2, 40);
        assert!(c.get(&1).is_some());
        // Over budget: the least recently used (2, since 1 was just read) goes.
        c.put(3, 20);
        assert!(c.get(&2).is_none());
        assert!(c.get(&1).is_some() && c.get(&3).is_some());
        assert_eq!(c.weight(), 70);
        // Too heavy to keep at all; and it replaces, so the old value of its key goes.
        c.put(4, 101);
        assert!(c.get(&4).is_none());
        c.put(3, 101);
        assert!(c.get(&3).is_none());
        assert_eq!(c.weight(), 50);
        c.put(1, 10);
        assert_eq!(c.weight(), 10);
    }

    #[test]
    fn get_or_try_insert_computes_once_and_passes_errors_on() {
        let c: ShardedLru<u8, Arc<String>> = ShardedLru::new(8);
        let mut runs = 0;
        for _ in 0..3 {
            let v = c
                .get_or_try_insert(1, || {
                    runs += 1;
                    Ok::<_, ()>(Arc::new("one".to_string()))
                })
                .unwrap();
            assert_eq!(*v, "one");
        }
        assert_eq!(runs, 1);
        assert_eq!(c.get_or_try_insert(2, || Err("failed")), Err("failed"));
        assert!(!c.contains(&2), "a failure is not cached");
    }

    #[test]
    fn many_threads_share_one_cache() {
        let c: Arc<ShardedLru<u64, Arc<Vec<u64>>>> =
            Arc::new(ShardedLru::weighted(4096, |v| v.len()));
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let c = Arc::clone(&c);
                s.spawn(move || {
                    for i in 0..5000u64 {
                        let k = (i * 7 + t) % 700;
                        let v = c
                            .get_or_try_insert(k, || {
                                Ok::<_, ()>(Arc::new(vec![k; 1 + k as usize % 9]))
                            })
                            .unwrap();
                        assert!(v.iter().all(|&x| x == k), "a value under the wrong key");
                    }
                });
            }
        });
        let held = c.weight();
        assert!(held <= 4096, "{held} held");
        assert!(!c.is_empty());
    }
}
