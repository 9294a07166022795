//! Whether a server answers several ranges in one request. Unknown until one such
//! request has been answered; while one is out, other callers wait for its answer
//! rather than ask too, so a server that refuses is asked that way once, not once per
//! reader that started before the refusal came back.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Unknown,
    Asking,
    Yes,
    No,
}

pub(super) struct Several {
    state: Mutex<State>,
    answered: Condvar,
}

/// The right to ask several ranges while the answer is unknown, or because it is known
/// to work. Dropped without [`Ask::works`] or [`Several::refuse`], a question that was
/// out becomes unknown again (the request failed before the server said anything).
pub(super) struct Ask<'a> {
    several: &'a Several,
    probing: bool,
}

impl Several {
    pub(super) fn new() -> Self {
        Several {
            state: Mutex::new(State::Unknown),
            answered: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is one enum: a panic elsewhere cannot leave it half written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some` when this caller may ask several ranges now. `None` when the server is
    /// known not to answer them, or when another caller's question is still out after
    /// `wait` (then one range a request serves this caller, as it always can).
    pub(super) fn ask(&self, wait: Duration) -> Option<Ask<'_>> {
        let until = Instant::now() + wait;
        let mut state = self.lock();
        loop {
            match *state {
                State::Yes => {
                    return Some(Ask {
                        several: self,
                        probing: false,
                    })
                }
                State::No => return None,
                State::Unknown => {
                    *state = State::Asking;
                    return Some(Ask {
                        several: self,
                        probing: true,
                    });
                }
                State::Asking => {
                    let left = until.checked_duration_since(Instant::now())?;
                    state = self
                        .answered
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// The server answered several ranges with less (or other) than asked: one range a
    /// request from now on. True the first time, for the caller to say so once.
    pub(super) fn refuse(&self) -> bool {
        let mut state = self.lock();
        let first = *state != State::No;
        *state = State::No;
        self.answered.notify_all();
        first
    }
}

impl Ask<'_> {
    /// The server answered several ranges as asked.
    pub(super) fn works(mut self) {
        let mut state = self.several.lock();
        if *state == State::Asking {
            *state = State::Yes;
            self.several.answered.notify_all();
        }
        self.probing = false;
    }
}

impl Drop for Ask<'_> {
    fn drop(&mut self) {
        if self.probing {
            let mut state = self.several.lock();
            if *state == State::Asking {
                *state = State::Unknown;
                self.several.answered.notify_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn one_question_out_at_a_time() {
        let s = Arc::new(Several::new());
        let first = s.ask(Duration::ZERO).expect("unknown: may ask");
        // A second caller waits for the answer; with no time to wait it asks one range.
        assert!(s.ask(Duration::ZERO).is_none());
        let waiter = {
            let s = s.clone();
            thread::spawn(move || s.ask(Duration::from_secs(30)).is_some())
        };
        thread::sleep(Duration::from_millis(50));
        assert!(s.refuse());
        drop(first);
        assert!(
            !waiter.join().unwrap(),
            "refused: the waiter asks one range"
        );
        assert!(s.ask(Duration::from_secs(30)).is_none(), "known: no wait");
        assert!(!s.refuse(), "said once");
    }

    #[test]
    fn an_answer_lets_every_waiter_ask() {
        let s = Arc::new(Several::new());
        let first = s.ask(Duration::ZERO).unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || s.ask(Duration::from_secs(30)).map(|a| a.probing))
            })
            .collect();
        thread::sleep(Duration::from_millis(50));
        first.works();
        for w in waiters {
            assert_eq!(w.join().unwrap(), Some(false));
        }
    }

    #[test]
    fn a_failed_question_is_asked_again() {
        let s = Several::new();
        drop(s.ask(Duration::ZERO).unwrap());
        let again = s.ask(Duration::ZERO).expect("unknown again");
        assert!(again.probing);
    }
}
