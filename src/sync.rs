//! Synchronisation primitives the ring is built from, in one place so that
//! `loom` can replace them for model checking:
//!
//! * atomics (std, or loom's under `--cfg loom`);
//! * futex wait/wake on a 32-bit word (process-private for `memory://`,
//!   shared for rings in shared memory);
//! * an *asymmetric* store→load barrier built on `membarrier(2)`.
//!
//! # Why an asymmetric barrier
//!
//! A sleeping receiver must not miss a wake-up: the receiver publishes "I am
//! going to sleep" and then re-checks the ring, the sender publishes a message
//! and then checks for sleepers. That is Dekker's pattern and needs a
//! store→load fence on *both* sides. A fence (or any locked instruction) on the
//! sender's per-message path stalls it until its store buffer drains — on
//! x86 that serialises each message behind a cross-core cache miss and costs
//! far more than the rest of the send. `membarrier(MEMBARRIER_CMD_*_EXPEDITED)`
//! lets the *rare* side (the thread about to sleep) force a full barrier on
//! every running thread, so the *hot* side needs only a compiler fence
//! ([`light_barrier`]). Where membarrier is unavailable both sides fall back to
//! a real `SeqCst` fence, which is always correct.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

use std::time::Duration;

/// Which processes share a futex word / need the barrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Only threads of this process touch the ring (`memory://`).
    Process,
    /// Several processes map the ring (`ipc://`).
    #[cfg_attr(loom, allow(dead_code))]
    Shared,
}

#[cfg(not(loom))]
mod imp {
    use super::*;
    use std::sync::atomic::AtomicU8;

    const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_long = 1 << 1;
    const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_long = 1 << 2;
    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    /// 0 = not yet probed, 1 = membarrier registered, 2 = use fences.
    static BARRIER_STATE: AtomicU8 = AtomicU8::new(0);

    fn membarrier(cmd: libc::c_long) -> bool {
        // SAFETY: membarrier takes (cmd, flags, cpu_id) integers and touches no
        // user memory; an unsupported command returns -1 without side effects.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            ) == 0
        }
    }

    /// Registers this process for expedited membarrier (idempotent). Must run
    /// before any ring is used; ring construction calls it.
    pub(crate) fn init_barriers() {
        if BARRIER_STATE.load(Ordering::Acquire) != 0 {
            return;
        }
        let ok = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)
            && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
        BARRIER_STATE.store(if ok { 1 } else { 2 }, Ordering::Release);
    }

    #[inline]
    fn membarrier_ok() -> bool {
        BARRIER_STATE.load(Ordering::Relaxed) == 1
    }

    /// The hot side of the asymmetric barrier: orders the caller's earlier
    /// stores before its later loads *as seen by a thread that runs
    /// [`heavy_barrier`]*.
    #[inline]
    pub(crate) fn light_barrier() {
        if membarrier_ok() {
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// The rare side: a full barrier on every thread of this process (or of
    /// every registered process, for [`Scope::Shared`]).
    pub(crate) fn heavy_barrier(scope: Scope) {
        fence(Ordering::SeqCst);
        if membarrier_ok() {
            let cmd = match scope {
                Scope::Process => MEMBARRIER_CMD_PRIVATE_EXPEDITED,
                Scope::Shared => MEMBARRIER_CMD_GLOBAL_EXPEDITED,
            };
            if !membarrier(cmd) {
                // Registration succeeded, so this cannot fail short of a kernel
                // bug; stay correct regardless by dropping to fences everywhere.
                BARRIER_STATE.store(2, Ordering::Relaxed);
                fence(Ordering::SeqCst);
            }
        }
    }

    /// Sleeps while `*word == expected`, at most `timeout`. Spurious returns are allowed.
    pub(crate) fn futex_wait(
        word: &AtomicU32,
        expected: u32,
        timeout: Option<Duration>,
        scope: Scope,
    ) {
        let ts;
        let ts_ptr = match timeout {
            Some(d) => {
                ts = libc::timespec {
                    tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                };
                &ts as *const libc::timespec
            }
            None => std::ptr::null(),
        };
        let op = match scope {
            Scope::Process => libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            Scope::Shared => libc::FUTEX_WAIT,
        };
        // SAFETY: `word` is a live, 4-byte aligned atomic for the duration of the
        // call; the kernel only reads it and the (optional) timespec on our stack.
        unsafe {
            libc::syscall(libc::SYS_futex, word.as_ptr(), op, expected, ts_ptr);
        }
    }

    /// Wakes every thread sleeping on `word`.
    pub(crate) fn futex_wake_all(word: &AtomicU32, scope: Scope) {
        let op = match scope {
            Scope::Process => libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            Scope::Shared => libc::FUTEX_WAKE,
        };
        // SAFETY: as in futex_wait; FUTEX_WAKE does not dereference the word.
        unsafe {
            libc::syscall(libc::SYS_futex, word.as_ptr(), op, i32::MAX);
        }
    }
}

#[cfg(loom)]
mod imp {
    //! Under loom the barrier pair is modelled by what membarrier guarantees:
    //! a full fence on both sides. Futex sleeps become yields (a spurious
    //! wake-up, which every caller must tolerate anyway).
    use super::*;

    #[allow(dead_code)]
    pub(crate) fn init_barriers() {}
    pub(crate) fn light_barrier() {
        fence(Ordering::SeqCst);
    }
    pub(crate) fn heavy_barrier(_scope: Scope) {
        fence(Ordering::SeqCst);
    }
    pub(crate) fn futex_wait(_w: &AtomicU32, _e: u32, _t: Option<Duration>, _s: Scope) {
        loom::thread::yield_now();
    }
    pub(crate) fn futex_wake_all(_w: &AtomicU32, _s: Scope) {}
}

// (Under loom nothing maps shared memory, so some of this goes unused.)
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use imp::{futex_wait, futex_wake_all, heavy_barrier, init_barriers, light_barrier};

/// The polling phase of a blocking call, before it sleeps.
///
/// A blocking call polls for as long as a sleep and wake-up would cost (about
/// [`SpinWait::BUDGET`]), one `pause` between polls, then sleeps. Waking a
/// sleeper costs the waker a system call and the sleeper tens of microseconds
/// on a virtual machine, so a message that arrives within the budget is
/// caught at once, and an idle channel costs one budget of CPU per idle
/// period. Polls are not spaced out (exponential backoff): a poll of a line
/// nobody writes hits the local cache and costs the other side nothing.
pub(crate) struct SpinWait {
    polls: u32,
    #[cfg(not(loom))]
    budget: Duration,
    #[cfg(not(loom))]
    until: Option<std::time::Instant>,
}

impl SpinWait {
    /// How long to poll before sleeping, unless the handle's `spin` option
    /// says otherwise.
    pub(crate) const BUDGET: Duration = Duration::from_micros(20);

    /// Polls between looks at the clock (a clock read costs about two polls).
    #[cfg(not(loom))]
    const CLOCK_EVERY: u32 = 16;

    /// Polls for about `budget` (zero: sleep at the first failed attempt).
    pub(crate) fn new(budget: Duration) -> Self {
        #[cfg(loom)]
        let _ = budget;
        SpinWait {
            polls: 0,
            #[cfg(not(loom))]
            budget,
            #[cfg(not(loom))]
            until: None,
        }
    }

    /// Waits a moment before the next poll; returns `false` once it is time
    /// to sleep instead.
    #[cfg(not(loom))]
    pub(crate) fn snooze(&mut self) -> bool {
        if self.budget.is_zero() {
            return false;
        }
        self.polls = self.polls.wrapping_add(1);
        if self.polls % Self::CLOCK_EVERY == 0 {
            // The budget starts at the first look: calls that succeed within
            // a few polls never read the clock.
            let now = std::time::Instant::now();
            match self.until {
                None => self.until = Some(now + self.budget),
                Some(until) if now >= until => return false,
                Some(_) => {}
            }
        }
        std::hint::spin_loop();
        true
    }

    /// Under loom: a few yields, so that models explore both the polling
    /// and the sleeping path.
    #[cfg(loom)]
    pub(crate) fn snooze(&mut self) -> bool {
        if self.polls >= 4 {
            return false;
        }
        self.polls += 1;
        loom::thread::yield_now();
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::SpinWait;
    use std::time::Duration;

    #[test]
    fn a_zero_budget_sleeps_at_the_first_failed_attempt() {
        assert!(!SpinWait::new(Duration::ZERO).snooze());
    }

    #[test]
    fn a_budget_polls_until_it_is_spent_then_says_sleep() {
        let mut spin = SpinWait::new(Duration::from_millis(1));
        // The clock is first read after CLOCK_EVERY polls: those never end it.
        for _ in 0..SpinWait::CLOCK_EVERY {
            assert!(spin.snooze());
        }
        std::thread::sleep(Duration::from_millis(5));
        let polls = (0..10 * SpinWait::CLOCK_EVERY)
            .take_while(|_| spin.snooze())
            .count();
        assert!(polls < SpinWait::CLOCK_EVERY as usize, "{polls} polls");
    }
}
