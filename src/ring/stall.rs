//! Polling threads that find the ring stalled yield their CPU.
//!
//! Records are handed over in ring order, so one unfinished step holds up
//! everybody behind it: a sender preempted between claiming its record and
//! publishing it stops every receiver at that record (and, once the ring has
//! filled behind it, every sender); a receiver preempted while it holds the
//! oldest record stops every sender once the ring is full. When there are
//! more busy threads than CPUs, the thread everybody waits for may itself be
//! waiting for the CPU that a poller spins on — until the next scheduler tick,
//! 4 ms on a 250 Hz kernel, or 100 000 messages' worth of time.
//!
//! So a thread whose `try_send` / `try_recv` keeps failing while the ring
//! makes no progress calls `sched_yield` once every [`STALL_POLLS`] failed
//! polls. (crossbeam's `ArrayQueue` does the same inside `push` when a slot
//! it needs is still being written.) Progress is judged by a marker the
//! caller reads from the ring — the consumers' `read` position — looked at
//! only every [`SAMPLE_EVERY`] failed polls, so that a poller does not pull
//! the consumers' line across cores on every miss. A ring that is merely
//! empty is not stalled: receivers pass no marker then, and idle polling
//! never yields.

#[cfg(not(loom))]
use std::cell::Cell;

/// Failed polls between two looks at the ring's progress marker.
#[cfg(not(loom))]
const SAMPLE_EVERY: u32 = 16;

/// Failed polls without progress after which the poller yields.
#[cfg(not(loom))]
pub(crate) const STALL_POLLS: u32 = 64;

#[cfg(not(loom))]
#[derive(Clone, Copy)]
struct Streak {
    /// Which ring (its control block's address); 0 = none yet.
    ring: usize,
    /// The progress marker at the start of the streak.
    mark: u64,
    /// Failed polls since the marker last moved.
    polls: u32,
}

#[cfg(not(loom))]
thread_local! {
    static STREAK: Cell<Streak> = const { Cell::new(Streak { ring: 0, mark: 0, polls: 0 }) };
    /// Yields so far on this thread (read by tests).
    static YIELDS: Cell<u64> = const { Cell::new(0) };
}

/// How many times this thread has yielded to a stalled peer.
#[cfg(all(test, not(loom)))]
pub(crate) fn yields_on_this_thread() -> u64 {
    YIELDS.with(Cell::get)
}

/// Called after every failed poll of the ring at address `ring`. `mark`
/// reads the ring's progress marker, or `None` when the ring is not stalled
/// (which ends the streak). Returns whether it yielded.
#[cfg(not(loom))]
#[inline]
pub(crate) fn failed_poll(ring: usize, mark: impl FnOnce() -> Option<u64>) -> bool {
    STREAK.with(|cell| {
        let mut s = cell.get();
        if s.ring != ring {
            s = Streak {
                ring,
                mark: u64::MAX,
                polls: 0,
            };
        }
        s.polls += 1;
        let mut yielded = false;
        if s.polls % SAMPLE_EVERY == 0 {
            match mark() {
                Some(m) if m == s.mark => {
                    if s.polls >= STALL_POLLS {
                        std::thread::yield_now();
                        YIELDS.with(|y| y.set(y.get() + 1));
                        yielded = true;
                        s.polls = 0;
                    }
                }
                Some(m) => {
                    s.mark = m;
                    s.polls = 0;
                }
                None => {
                    s.mark = u64::MAX;
                    s.polls = 0;
                }
            }
        }
        cell.set(s);
        yielded
    })
}

/// Loom models run every interleaving anyway; yielding would only add states.
#[cfg(loom)]
#[inline]
pub(crate) fn failed_poll(_ring: usize, _mark: impl FnOnce() -> Option<u64>) -> bool {
    false
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn polls(ring: usize, n: u32, mut mark: impl FnMut(u32) -> Option<u64>) -> u64 {
        let before = yields_on_this_thread();
        for i in 0..n {
            failed_poll(ring, || mark(i));
        }
        yields_on_this_thread() - before
    }

    #[test]
    fn yields_once_per_stall_polls_while_the_marker_stands_still() {
        // The first look only records the marker; from then on every
        // STALL_POLLS polls without movement yield once.
        let n = SAMPLE_EVERY + 3 * STALL_POLLS;
        assert_eq!(polls(1, n, |_| Some(42)), 3);
    }

    #[test]
    fn never_yields_while_the_marker_moves_or_the_ring_is_not_stalled() {
        assert_eq!(
            polls(2, 10 * STALL_POLLS, |i| Some(
                i as u64 / SAMPLE_EVERY as u64
            )),
            0
        );
        assert_eq!(polls(3, 10 * STALL_POLLS, |_| None), 0);
    }

    #[test]
    fn a_streak_belongs_to_one_ring() {
        // Alternating between two rings restarts the streak on every call.
        let before = yields_on_this_thread();
        for _ in 0..10 * STALL_POLLS {
            failed_poll(4, || Some(7));
            failed_poll(5, || Some(7));
        }
        assert_eq!(yields_on_this_thread() - before, 0);
    }
}
