//! A thread-safe LRU bounded by the total weight of what it holds rather than by the
//! number of items: one 65 536-entry directory or one chain of a million runs must
//! count for what it costs in memory.

use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

pub(crate) trait Weight {
    /// Roughly proportional to memory held; at least 1.
    fn weight(&self) -> usize;
}

struct Inner<K: Hash + Eq, V> {
    lru: LruCache<K, Arc<V>>,
    held: usize,
}

pub(crate) struct WeightedLru<K: Hash + Eq, V> {
    inner: Mutex<Inner<K, V>>,
    max: usize,
}

impl<K: Hash + Eq, V: Weight> WeightedLru<K, V> {
    pub fn new(max: usize) -> Self {
        WeightedLru {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                held: 0,
            }),
            max,
        }
    }

    // A panic elsewhere while holding the lock leaves the cache consistent (every
    // mutation below completes before anything can panic), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        self.lock().lru.get(key).cloned()
    }

    /// Items heavier than the whole budget are not kept: caching one would evict
    /// everything else and then itself.
    pub fn put(&self, key: K, value: Arc<V>) {
        let weight = value.weight();
        if weight > self.max {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.lru.put(key, value) {
            inner.held -= old.weight();
        }
        inner.held += weight;
        while inner.held > self.max {
            match inner.lru.pop_lru() {
                Some((_, old)) => inner.held -= old.weight(),
                None => break,
            }
        }
    }

    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.lock().held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Weight for usize {
        fn weight(&self) -> usize {
            *self
        }
    }

    #[test]
    fn bounded_by_weight() {
        let c: WeightedLru<u32, usize> = WeightedLru::new(100);
        c.put(1, Arc::new(50));
        c.put(2, Arc::new(40));
        assert!(c.get(&1).is_some());
        // Over budget: the least recently used (2, since 1 was just read) goes.
        c.put(3, Arc::new(20));
        assert!(c.get(&2).is_none());
        assert!(c.get(&1).is_some() && c.get(&3).is_some());
        c.put(4, Arc::new(101));
        assert!(c.get(&4).is_none(), "too heavy to keep");
        c.put(1, Arc::new(10));
        assert_eq!(c.held(), 30);
    }
}
