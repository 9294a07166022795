//! How the reads a thread is about to make are spread, for sources that read ahead
//! (a remote file streaming long requests): reads of scattered extents, such as an
//! incremental backup's changed blocks, must not start streams that would fetch all the
//! unchanged bytes between them. A thread-local scope, so the hint passes through every
//! layer in between (block cache, VMDK chain, windows) without each carrying it.

use std::cell::Cell;

thread_local! {
    static SCATTERED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's reads marked as scattered.
pub fn scattered<T>(f: impl FnOnce() -> T) -> T {
    let before = SCATTERED.with(|s| s.replace(true));
    // Restored on unwind too: the flag must not outlive the scope.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCATTERED.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

/// Whether the current thread's reads are inside a `scattered` scope.
pub fn is_scattered() -> bool {
    SCATTERED.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_nests_and_ends() {
        assert!(!is_scattered());
        scattered(|| {
            assert!(is_scattered());
            scattered(|| assert!(is_scattered()));
            assert!(is_scattered());
        });
        assert!(!is_scattered());
        let r = std::panic::catch_unwind(|| scattered(|| panic!("inside")));
        assert!(r.is_err());
        assert!(!is_scattered(), "restored after a panic");
        std::thread::spawn(|| assert!(!is_scattered()))
            .join()
            .unwrap();
    }
}
