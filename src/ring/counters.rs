//! Per-side message/byte/block counters that cost no locked instruction and no
//! shared cache-line write per message.
//!
//! Each side of a ring has [`COUNTER_STRIPES`] counter lines. A single side
//! counts on line 0: one thread at a time owns the side, so a plain
//! load + store is exact. On a multi side, every thread of the process holds
//! a *thread slot* — an index drawn from a process-wide bitmap on first use and
//! given back when the thread exits — and counts with plain load + store on the
//! line of that index, which no other live thread of the process writes.
//! Threads beyond the first `COUNTER_STRIPES - 1` (and, for `ipc://`, every
//! thread: other processes draw the same indices) count with `fetch_add`
//! instead, which stays exact at the price of a locked instruction.
//!
//! Why not `fetch_add` always: on this path a locked add costs about as much as
//! the rest of a send (it waits for the payload stores to drain), and a send
//! made two of them.

use super::layout::{Padded, SideCounters, COUNTER_STRIPES};
use crate::sync::{AtomicU64, Ordering, Scope};

/// One side's counter lines.
pub(crate) type CounterLines = [Padded<SideCounters>; COUNTER_STRIPES];

/// How a thread counts on a multi side.
#[derive(Clone, Copy)]
enum Slot {
    /// This line is ours alone among live threads of the process.
    Exclusive(usize),
    /// Shared with other threads: count with `fetch_add`.
    Shared(usize),
}

/// Which line to count on, and whether plain stores are exact there.
#[inline]
fn slot(multi: bool, scope: Scope) -> Slot {
    if !multi {
        return Slot::Exclusive(0);
    }
    match (thread_slot(), scope) {
        (Some(i), Scope::Process) => Slot::Exclusive(i),
        (Some(i), Scope::Shared) => Slot::Shared(i),
        (None, _) => Slot::Shared(COUNTER_STRIPES - 1),
    }
}

/// Adds one message of `bytes` bytes.
#[inline]
pub(crate) fn count_message(lines: &CounterLines, multi: bool, scope: Scope, bytes: u64) {
    match slot(multi, scope) {
        Slot::Exclusive(i) => {
            let c = &lines[i].0;
            bump(&c.messages, 1);
            bump(&c.bytes, bytes);
        }
        Slot::Shared(i) => {
            let c = &lines[i].0;
            c.messages.fetch_add(1, Ordering::Relaxed);
            c.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

/// Takes back one message of `bytes` counted by [`count_message`] (a send
/// refused after its count, see `Ring::commit_counted`). Sums wrap, so a
/// negative step on another line than the count's still cancels it.
pub(crate) fn uncount_message(lines: &CounterLines, multi: bool, scope: Scope, bytes: u64) {
    match slot(multi, scope) {
        Slot::Exclusive(i) => {
            let c = &lines[i].0;
            bump(&c.messages, 1u64.wrapping_neg());
            bump(&c.bytes, bytes.wrapping_neg());
        }
        Slot::Shared(i) => {
            let c = &lines[i].0;
            c.messages.fetch_sub(1, Ordering::Relaxed);
            c.bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

/// Adds one encoded message: `raw` decoded bytes taking `ring` bytes in
/// the ring; `flag` bumps `compressed_or_bad_checksum` (producers: it was
/// compressed).
#[inline]
pub(crate) fn count_encoded(
    lines: &CounterLines,
    multi: bool,
    scope: Scope,
    raw: u64,
    ring: u64,
    flag: bool,
) {
    let add = |c: &SideCounters, exclusive: bool| {
        let f = |w: &AtomicU64, by: u64| {
            if exclusive {
                bump(w, by)
            } else {
                w.fetch_add(by, Ordering::Relaxed);
            }
        };
        f(&c.messages, 1);
        f(&c.bytes, raw);
        f(&c.encoded_raw, raw);
        f(&c.encoded_ring, ring);
        if flag {
            f(&c.compressed_or_bad_checksum, 1);
        }
    };
    match slot(multi, scope) {
        Slot::Exclusive(i) => add(&lines[i].0, true),
        Slot::Shared(i) => add(&lines[i].0, false),
    }
}

/// Counts an encoded message a consumer dropped: its checksum did not match
/// (`bad_checksum`), or it did not decode.
pub(crate) fn count_dropped(lines: &CounterLines, multi: bool, scope: Scope, bad_checksum: bool) {
    let i = match slot(multi, scope) {
        Slot::Exclusive(i) | Slot::Shared(i) => i,
    };
    let c = &lines[i].0;
    let w = if bad_checksum {
        &c.compressed_or_bad_checksum
    } else {
        &c.malformed
    };
    // Rare: always a locked add.
    w.fetch_add(1, Ordering::Relaxed);
}

/// Adds one block (a send that found the ring full, a receive that found it
/// empty). Polling loops call this on every miss, so it too avoids locked
/// instructions where it can: a locked add per poll slows the poll loop down,
/// and with it the moment a waiting consumer sees a message.
#[inline]
pub(crate) fn count_block(lines: &CounterLines, multi: bool, scope: Scope) {
    match slot(multi, scope) {
        Slot::Exclusive(i) => bump(&lines[i].0.blocks, 1),
        Slot::Shared(i) => {
            lines[i].0.blocks.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sums one field over all lines.
pub(crate) fn sum(lines: &CounterLines, field: fn(&SideCounters) -> &AtomicU64) -> u64 {
    lines
        .iter()
        .map(|l| field(&l.0).load(Ordering::Relaxed))
        .fold(0, u64::wrapping_add)
}

/// Zeroes every line. A message counted at the same moment may survive the
/// reset (plain stores): resetting under traffic is approximate.
pub(crate) fn reset(lines: &CounterLines) {
    for l in lines {
        l.0.messages.store(0, Ordering::Relaxed);
        l.0.bytes.store(0, Ordering::Relaxed);
        l.0.blocks.store(0, Ordering::Relaxed);
        l.0.encoded_raw.store(0, Ordering::Relaxed);
        l.0.encoded_ring.store(0, Ordering::Relaxed);
        l.0.compressed_or_bad_checksum.store(0, Ordering::Relaxed);
        l.0.malformed.store(0, Ordering::Relaxed);
    }
}

/// A plain read-modify-write: exact because only this thread writes the word.
#[inline(always)]
fn bump(word: &AtomicU64, by: u64) {
    word.store(
        word.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

#[cfg(not(loom))]
mod slots {
    use super::COUNTER_STRIPES;
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The indices that can be held exclusively: all but the last line,
    /// which is the shared overflow line.
    const EXCLUSIVE: u32 = (1 << super::THREAD_SLOTS) - 1;

    /// Bit i set: index i is held by a live thread of this process.
    static TAKEN: AtomicU32 = AtomicU32::new(0);

    /// Not drawn yet.
    const UNSET: usize = usize::MAX - 1;
    /// Nothing was free (or the thread is exiting): use the overflow line.
    const NONE: usize = usize::MAX;

    thread_local! {
        /// This thread's index. A const-initialised `Cell` without a
        /// destructor, so that reading it is one thread-relative load.
        static SLOT: Cell<usize> = const { Cell::new(UNSET) };
        /// Gives the index back when the thread exits (set up on first draw).
        static HELD: Held = const { Held(Cell::new(NONE)) };
    }

    struct Held(Cell<usize>);

    impl Drop for Held {
        fn drop(&mut self) {
            give_back(&TAKEN, self.0.get());
            // Counting later in this thread's exit uses the overflow line.
            let _ = SLOT.try_with(|s| s.set(NONE));
        }
    }

    /// Takes the lowest free index of `taken`; `usize::MAX` if none is free.
    pub(super) fn draw(taken: &AtomicU32) -> usize {
        let mut now = taken.load(Ordering::Relaxed);
        loop {
            let free = !now & EXCLUSIVE;
            if free == 0 {
                return usize::MAX;
            }
            let i = free.trailing_zeros() as usize;
            // Acquire: the previous holder's counter stores happen-before ours.
            match taken.compare_exchange_weak(
                now,
                now | 1 << i,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return i,
                Err(actual) => now = actual,
            }
        }
    }

    /// Returns index `i` (`usize::MAX`: nothing was drawn).
    pub(super) fn give_back(taken: &AtomicU32, i: usize) {
        if i < COUNTER_STRIPES {
            // Release: this thread's last plain counter stores happen-before
            // the next holder's Acquire in `draw`, so it adds to them.
            taken.fetch_and(!(1 << i), Ordering::Release);
        }
    }

    /// This thread's exclusive line index; `None` when all are held by other
    /// threads (or this thread is exiting).
    #[inline]
    pub(crate) fn thread_slot() -> Option<usize> {
        let i = SLOT.with(Cell::get);
        if i < UNSET {
            return Some(i);
        }
        if i == NONE {
            return None;
        }
        first_draw()
    }

    #[cold]
    fn first_draw() -> Option<usize> {
        let i = draw(&TAKEN);
        // Register the give-back; a thread already tearing down its locals
        // cannot, so it returns the index at once.
        let i = match HELD.try_with(|h| h.0.set(i)) {
            Ok(()) => i,
            Err(_) => {
                give_back(&TAKEN, i);
                NONE
            }
        };
        SLOT.with(|s| s.set(i));
        (i != NONE).then_some(i)
    }
}

/// Under loom every model thread runs on one OS thread, so thread-locals
/// cannot tell them apart: count with `fetch_add` on the overflow line.
#[cfg(loom)]
mod slots {
    pub(crate) fn thread_slot() -> Option<usize> {
        None
    }
}

/// How many threads of a process hold a slot of their own at once
/// ([`thread_slot`] is below this); the tracker gives them an entry each too.
pub(super) const THREAD_SLOTS: usize = COUNTER_STRIPES - 1;

pub(super) use slots::thread_slot;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::slots::{draw, give_back};
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn indices_are_exclusive_until_given_back() {
        let taken = AtomicU32::new(0);
        let drawn: Vec<usize> = (0..COUNTER_STRIPES - 1).map(|_| draw(&taken)).collect();
        assert_eq!(drawn, (0..COUNTER_STRIPES - 1).collect::<Vec<_>>());
        assert_eq!(
            draw(&taken),
            usize::MAX,
            "the overflow line is never handed out"
        );
        give_back(&taken, 3);
        assert_eq!(draw(&taken), 3, "a returned index is drawn again");
        give_back(&taken, usize::MAX); // nothing drawn: no effect
        assert_eq!(draw(&taken), usize::MAX);
    }

    #[test]
    fn a_thread_keeps_its_slot() {
        assert_eq!(thread_slot(), thread_slot());
    }
}
