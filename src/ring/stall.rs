//! Polling threads that find the ring stalled yield their CPU.
//!
//! Records are handed over in ring order, so one unfinished step holds up
//! everybody behind it: a sender preempted between claiming its record and
//! publishing it stops every receiver at that record (and, once the ring has
//! filled behind it, every sender); a receiver preempted while it holds the
//! oldest record stops every sender once the ring is full. And when there
//! are more busy threads than CPUs, the threads a poller waits for may be
//! waiting for the very CPU it spins on — until the next scheduler tick,
//! 4 ms on a 250 Hz kernel, or 100 000 messages' worth of time.
//!
//! So a thread whose `try_send` / `try_recv` keeps failing while the ring
//! makes no progress calls `sched_yield`:
//!
//! * after [`STALL_POLLS`] failed polls, if a peer's unfinished step is what
//!   holds the ring up (the caller's check). crossbeam's `ArrayQueue` yields
//!   the same way inside `push` when a slot it needs is still being written.
//! * after [`IDLE_POLLS`] failed polls in which *nothing* moved — no message
//!   sent, none received: tens of microseconds — with probability 1/2. The
//!   threads that could move the ring may be queued behind this one. The
//!   coin matters: pollers on several CPUs tend to see such a stall at the
//!   same moment (when every running thread is a sender, say, and the ring is
//!   full), and if all of them yielded together, the scheduler would swap
//!   senders for receivers on every CPU at once and the two would never run
//!   side by side. An idle ring therefore costs a polling thread one yield
//!   every few thousand polls.
//!
//! Two stages keep this off the poll path's cost: progress is judged by a
//! marker the caller reads cheaply, looked at only every [`SAMPLE_EVERY`]
//! failed polls, and only a streak without progress runs the real check,
//! which reads the other side's lines.

#[cfg(not(loom))]
use std::cell::Cell;

/// Failed polls between two looks at the progress marker.
#[cfg(not(loom))]
const SAMPLE_EVERY: u32 = 32;

/// Failed polls without progress after which the poller checks for a
/// stalled peer (a few microseconds: the stalls this ends last milliseconds).
#[cfg(not(loom))]
pub(crate) const STALL_POLLS: u32 = 128;

/// Failed polls without progress after which the poller tosses a coin to
/// yield even though no peer is caught mid-step.
#[cfg(not(loom))]
pub(crate) const IDLE_POLLS: u32 = 1024;

#[cfg(not(loom))]
#[derive(Clone, Copy)]
struct Streak {
    /// Which ring (its control block's address); 0 = none yet.
    ring: usize,
    /// The progress marker at the start of the streak.
    mark: u64,
    /// Failed polls since the marker last moved (or since the last yield).
    polls: u32,
    /// xorshift state for the coin; 0 = not seeded yet.
    coin: u32,
}

#[cfg(not(loom))]
thread_local! {
    static STREAK: Cell<Streak> =
        const { Cell::new(Streak { ring: 0, mark: 0, polls: 0, coin: 0 }) };
}

#[cfg(all(test, not(loom)))]
thread_local! {
    /// Yields so far on this thread.
    static YIELDS: Cell<u64> = const { Cell::new(0) };
}

/// How many times this thread has yielded to a stalled ring.
#[cfg(all(test, not(loom)))]
pub(crate) fn yields_on_this_thread() -> u64 {
    YIELDS.with(Cell::get)
}

/// Called after every failed poll of the ring at address `ring`. `mark`
/// reads the progress marker (it must change whenever a message is sent or
/// received); `stalled` says whether a peer's unfinished step holds the ring
/// up. Under loom it does nothing: the models run every interleaving anyway,
/// and yielding would only add states.
///
/// Busy pollers run this on every miss, so the common case — the same ring
/// as last time, and not a sampling poll — is a count kept inline; the rest
/// is out of line in [`sample`].
#[inline(always)]
pub(crate) fn failed_poll(ring: usize, mark: impl FnOnce() -> u64, stalled: impl FnOnce() -> bool) {
    #[cfg(loom)]
    let _ = (ring, mark, stalled);
    // (A thread that is exiting has no cell left: nothing to track.)
    #[cfg(not(loom))]
    let _ = STREAK.try_with(|cell| {
        let mut s = cell.get();
        s.polls = s.polls.wrapping_add(1);
        if s.ring == ring && s.polls % SAMPLE_EVERY != 0 {
            cell.set(s);
        } else {
            sample(cell, s, ring, mark, stalled);
        }
    });
}

/// The out-of-line part of [`failed_poll`]: a new ring's streak, or a
/// sampling poll (`s.polls` already counts this one).
#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn sample(
    cell: &Cell<Streak>,
    mut s: Streak,
    ring: usize,
    mark: impl FnOnce() -> u64,
    stalled: impl FnOnce() -> bool,
) {
    if s.ring != ring {
        s = Streak {
            ring,
            mark: u64::MAX,
            polls: 1,
            coin: s.coin,
        };
    }
    if s.polls % SAMPLE_EVERY == 0 {
        let m = mark();
        if m != s.mark {
            s.mark = m;
            s.polls = 0;
        } else if s.polls % STALL_POLLS == 0 {
            let idle = s.polls >= IDLE_POLLS;
            if stalled() || (idle && toss(&mut s.coin, cell as *const _ as usize)) {
                std::thread::yield_now();
                #[cfg(test)]
                YIELDS.with(|y| y.set(y.get() + 1));
                s.polls = 0;
            } else if idle {
                s.polls = 0;
            }
        }
    }
    cell.set(s);
}

/// A fair coin from a per-thread xorshift32, seeded on first use from
/// `seed` (the thread-local's address, which differs between threads).
#[cfg(not(loom))]
fn toss(state: &mut u32, seed: usize) -> bool {
    if *state == 0 {
        *state = (seed as u32 ^ (seed >> 32) as u32) | 1;
    }
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    x & 1 != 0
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn polls(ring: usize, n: u32, mut mark: impl FnMut(u32) -> u64, stalled: bool) -> u64 {
        let before = yields_on_this_thread();
        for i in 0..n {
            failed_poll(ring, || mark(i), || stalled);
        }
        yields_on_this_thread() - before
    }

    #[test]
    fn yields_once_per_stall_polls_while_stalled_and_the_marker_stands_still() {
        // The first look only records the marker; from then on every
        // STALL_POLLS polls without movement check, and here yield.
        let n = SAMPLE_EVERY + 3 * STALL_POLLS;
        assert_eq!(polls(1, n, |_| 42, true), 3);
    }

    #[test]
    fn never_yields_while_the_marker_moves() {
        let moving = |i: u32| (i / SAMPLE_EVERY) as u64;
        assert_eq!(polls(2, 10 * IDLE_POLLS, moving, true), 0);
    }

    #[test]
    fn without_a_stalled_peer_waits_idle_polls_then_tosses_a_coin() {
        assert_eq!(polls(3, SAMPLE_EVERY + IDLE_POLLS - 1, |_| 42, false), 0);
        // From then on one toss per IDLE_POLLS: about half of them yield.
        let yields = polls(6, 200 * IDLE_POLLS, |_| 42, false);
        assert!(
            (50..=150).contains(&yields),
            "{yields} yields in 200 tosses"
        );
    }

    #[test]
    fn a_streak_belongs_to_one_ring() {
        // Alternating between two rings restarts the streak on every call.
        let before = yields_on_this_thread();
        for _ in 0..10 * STALL_POLLS {
            failed_poll(4, || 7, || true);
            failed_poll(5, || 7, || true);
        }
        assert_eq!(yields_on_this_thread() - before, 0);
    }
}
