//! Blocking on a ring: spin briefly, then sleep on the ring's futex word until a
//! producer (or consumer) wakes us, the deadline passes, the channel stops, or a
//! [`CancelToken`] fires. Idle waiters use no CPU.

use super::{Direction, Ring};
use crate::error::{Error, Result};
use crate::sync::{futex_wait, heavy_barrier, AtomicBool, Ordering, SpinWait};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Instant;

/// Cancels waiting calls from another thread (the Go binding uses one per
/// `context.Context`).
///
/// ```
/// use psyne::{Channel, CancelToken, Mode, ChannelType, Error};
/// let ch = Channel::open("memory://cancel-doc", 1024, Mode::Spsc, ChannelType::Multi)?;
/// let token = CancelToken::new();
/// let t = token.clone();
/// let waiter = std::thread::spawn(move || ch.recv_until(None, Some(&t)).map(|m| m.to_vec()));
/// token.cancel();
/// assert_eq!(waiter.join().unwrap(), Err(Error::Cancelled));
/// # Ok::<(), psyne::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    /// The rings (and directions) threads are asleep on, so `cancel` can wake them.
    sleeping: Mutex<Vec<(usize, Direction)>>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels: every call waiting with this token returns [`Error::Cancelled`],
    /// and so does every later one until [`reset`](CancelToken::reset).
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let sleeping = self.inner.sleeping.lock();
        for &(ring, d) in sleeping.iter() {
            // SAFETY: a waiter registers its ring here only while it holds a
            // reference to it and removes the entry (under this lock) before it
            // returns, so the ring is alive while we hold the lock.
            let ring = unsafe { &*(ring as *const Ring) };
            let line = ring.wake_line(d);
            line.event.fetch_add(1, Ordering::SeqCst);
            crate::sync::futex_wake_all(&line.event, ring.scope());
        }
    }

    /// Whether [`cancel`](CancelToken::cancel) was called since the last reset.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Re-arms the token.
    pub fn reset(&self) {
        self.inner.cancelled.store(false, Ordering::SeqCst);
    }
}

/// When and why a wait ends besides success.
#[derive(Clone, Copy, Default)]
pub(crate) struct WaitLimit<'a> {
    /// How long the wait may take (None: no limit), counted from when it
    /// starts: the clock is read only once a call has to wait, never on the
    /// path where it succeeds at once.
    pub timeout: Option<std::time::Duration>,
    pub cancel: Option<&'a CancelToken>,
    /// How long to poll before sleeping (the handle's `spin` option).
    pub spin: std::time::Duration,
}

impl WaitLimit<'_> {
    fn check(&self, deadline: Option<Instant>) -> Result<()> {
        if self.cancel.is_some_and(|c| c.is_cancelled()) {
            return Err(Error::Cancelled);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Timeout);
        }
        Ok(())
    }
}

impl Ring {
    /// Runs `attempt` until it yields a value or an error, sleeping in direction
    /// `d` between tries. `attempt` must return `Ok(None)` only when retrying
    /// after a wake-up in direction `d` can succeed. Its argument is true for
    /// the last attempt before sleeping, which must look at the ring's
    /// current state (no cached view of it): the wake-up for anything that
    /// happened before it may already have been sent.
    pub(crate) fn block_on<T>(
        &self,
        d: Direction,
        limit: WaitLimit<'_>,
        mut attempt: impl FnMut(bool) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = limit.timeout.map(|t| Instant::now() + t);
        let mut spin = SpinWait::new(limit.spin);
        loop {
            if let Some(v) = attempt(false)? {
                return Ok(v);
            }
            limit.check(deadline)?;
            if spin.snooze() {
                // Polling: yield like a polling caller would, if the ring is
                // stalled on a preempted peer (stall.rs).
                self.note_failed_poll();
                continue;
            }
            let line = self.wake_line(d);
            line.sleepers.store(1, Ordering::SeqCst);
            let seen = line.event.load(Ordering::SeqCst);
            // Pairs with the light barrier after every publish/free: either the
            // other side sees `sleepers`, or we see its update on the re-check.
            heavy_barrier(self.scope());
            if let Some(v) = attempt(true)? {
                return Ok(v);
            }
            let registered = limit.cancel.map(|c| Registration::new(c, self, d));
            let timeout = match limit.check(deadline) {
                Ok(()) => deadline.map(|dl| dl.saturating_duration_since(Instant::now())),
                Err(e) => return Err(e),
            };
            // ipc: sleep at most LIVENESS_INTERVAL, then check that the
            // processes we wait for are alive (ring/track.rs).
            futex_wait(&line.event, seen, self.bound_sleep(timeout), self.scope());
            self.track_idle();
            drop(registered);
            spin = SpinWait::new(limit.spin);
        }
    }
}

/// A sleeping waiter's entry in its token's list (what `cancel` wakes). The
/// entry holds the ring's address while the waiter holds the ring; removing
/// it on drop keeps that true on every way out of the wait, a panic (say, in
/// ipc recovery) included.
struct Registration<'a> {
    token: &'a CancelToken,
    ring: &'a Ring,
    d: Direction,
}

impl<'a> Registration<'a> {
    fn new(token: &'a CancelToken, ring: &'a Ring, d: Direction) -> Registration<'a> {
        token
            .inner
            .sleeping
            .lock()
            .push((ring as *const Ring as usize, d));
        Registration { token, ring, d }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut v = self.token.inner.sleeping.lock();
        let me = (self.ring as *const Ring as usize, self.d);
        if let Some(i) = v.iter().position(|&e| e == me) {
            v.swap_remove(i);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::config::Mode;

    #[test]
    fn a_registration_is_removed_when_the_wait_unwinds() {
        let ring = Ring::new_heap(1024, Mode::Spsc).unwrap();
        let token = CancelToken::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _registered = Registration::new(&token, &ring, Direction::Data);
            assert_eq!(token.inner.sleeping.lock().len(), 1);
            panic!("in the liveness check");
        }));
        assert!(r.is_err());
        assert!(token.inner.sleeping.lock().is_empty());
        token.cancel(); // nothing left to dereference
    }
}
