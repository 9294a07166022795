//! Locks that outlive a panic. A panic in one FUSE request (a reader bug on some odd
//! guest structure) poisons whatever lock its thread held; refusing every later request
//! over it would take the whole mount, and the snapshots it holds, down with one file.
//! The data behind our locks is kept consistent between statements (caches, tables,
//! state machines that are only assigned whole), so later holders go on with it.

use std::sync::{LockResult, PoisonError};

/// `.relock()` on what `lock()`, `read()`, `write()` or a condvar's `wait()` returns:
/// the guard, poisoned or not.
pub trait Relock<G> {
    fn relock(self) -> G;
}

impl<G> Relock<G> for LockResult<G> {
    fn relock(self) -> G {
        self.unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_lock_poisoned_by_a_panic_is_still_taken() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().relock();
            panic!("a request panics holding the lock");
        })
        .join();
        assert!(m.is_poisoned());
        *m.lock().relock() += 1;
        assert_eq!(*m.lock().relock(), 2);
    }
}
