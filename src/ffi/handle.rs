//! The one handle type of the C boundary: a box whose first field is a
//! [`Header`] (magic word and fork generation), checked on every entry.
//!
//! Channel and cancel-token handles may be used from several threads at once,
//! and the C caller may destroy one while another thread is still inside a
//! call on it (typically: stop, then destroy, while a receiver is returning).
//! Calls in flight therefore hold the handle: each thread announces the
//! handle it is using in its own *hazard slot*, and destroy waits until no
//! slot names the handle before it frees it.
//!
//! # Why this costs the caller two plain stores
//!
//! Announce-then-check on the caller's side against mark-then-scan on the
//! destroyer's is Dekker's pattern: both sides need a store→load barrier.
//! The caller (every call) takes the light side of `crate::sync`'s
//! asymmetric barrier, a compiler fence; the destroyer (rare) takes the
//! heavy side, `membarrier(2)`. Either the caller sees the dead magic word
//! and backs out, or the destroyer sees the announcement and waits.
//!
//! Message handles belong to one thread at a time (the C contract), so they
//! use the same header and checks without a hazard slot.

use super::not_null;
use crate::error::{Error, Result};
use crate::sync::{heavy_barrier, light_barrier, Scope};
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

const DEAD_MAGIC: u64 = 0xdead_dead_dead_dead;

/// The first field of every handle.
pub(super) struct Header {
    magic: AtomicU64,
    /// Fork generation of the creating process (`crate::fork`).
    born: u64,
}

impl Header {
    pub(super) fn new<T: Handle>() -> Header {
        Header {
            magic: AtomicU64::new(T::MAGIC),
            born: crate::fork::generation(),
        }
    }

    /// Marks a handle that is about to go out of use without being freed
    /// through [`free`] (a receive callback's message on the dispatcher's
    /// stack), so that a use after the callback returned is detected.
    pub(super) fn kill(&self) {
        self.magic.store(DEAD_MAGIC, Ordering::Relaxed);
    }

    /// Makes a killed handle live again as a new handle of this process: a
    /// side handle's embedded message slot, or a spare message box (which
    /// may have been made before a fork). `generation_now`: this process
    /// made a handle already, so the fork handler is registered.
    pub(super) fn revive<T: Handle>(&mut self) {
        self.born = crate::fork::generation_now();
        self.magic.store(T::MAGIC, Ordering::Relaxed);
    }
}

/// A type handed to C as an opaque pointer.
pub(super) trait Handle: Sized {
    /// The magic word of a live handle of this type.
    const MAGIC: u64;
    /// What a dead or foreign pointer is reported as not being.
    const WHAT: &'static str;
    /// Whether a handle inherited through `fork()` is refused (it acts on
    /// resources, such as an ipc:// attachment, that belong to the parent).
    const PROCESS_BOUND: bool;
    /// Whether calls on other threads may be using a handle while it is
    /// freed (they then hold it with [`enter`], and [`free`] waits for
    /// them). False for handles one thread owns at a time.
    const SHARED: bool;

    /// The header, from a pointer to a handle (possibly freed: the address is
    /// computed without reading through it).
    fn header(p: *const Self) -> *const Header;
}

/// Checks a handle argument without holding it: not NULL, not (detectably)
/// freed, and, for process-bound types, opened in this process.
///
/// # Safety
/// `p` is NULL or a pointer from this type's constructor; a freed handle is
/// a use after free that is only detected where its memory was not reused.
#[inline(always)]
pub(super) unsafe fn live<'a, T: Handle>(p: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: the caller's contract.
    if !p.is_null() && header_ok::<T>(unsafe { &*T::header(p) }) {
        // SAFETY: non-NULL, and the magic word matches: the handle is live.
        return Ok(unsafe { &*p });
    }
    // SAFETY: as above.
    Err(unsafe { refusal::<T>(p, name) })
}

/// Whether a handle's header is of a live `T` made in this process (for
/// process-bound types). The check of every call, so kept to two loads.
#[inline(always)]
fn header_ok<T: Handle>(header: &Header) -> bool {
    header.magic.load(Ordering::Acquire) == T::MAGIC
        && (!T::PROCESS_BOUND || crate::fork::is_ours(header.born))
}

/// Why [`live`] refused `p`.
///
/// # Safety
/// As for [`live`].
#[cold]
#[inline(never)]
unsafe fn refusal<T: Handle>(p: *const T, name: &str) -> Error {
    if let Err(e) = not_null(p, name) {
        return e;
    }
    // SAFETY: non-NULL; the caller's contract.
    match check_header::<T>(unsafe { &*T::header(p) }, name) {
        Err(e) => e,
        Ok(()) => Error::invalid(format!(
            "{name}: refused, then found live (used by two threads at once?)"
        )),
    }
}

fn check_header<T: Handle>(header: &Header, name: &str) -> Result<()> {
    check_magic::<T>(header, name)?;
    if T::PROCESS_BOUND && !crate::fork::is_ours(header.born) {
        return Err(Error::invalid(format!(
            "{name} was made by another process and inherited through fork(); a {} works only in the process that made it (open the channel again here; freeing the inherited one leaves the parent's alone)",
            T::WHAT
        )));
    }
    Ok(())
}

fn check_magic<T: Handle>(header: &Header, name: &str) -> Result<()> {
    if header.magic.load(Ordering::Acquire) != T::MAGIC {
        return Err(Error::invalid(format!(
            "{name} is not a live {} (already freed, or not one)",
            T::WHAT
        )));
    }
    Ok(())
}

/// A handle held for the duration of a call: [`free`] waits until it is
/// dropped. Dereferences to the handle.
pub(super) struct InCall<'a, T> {
    handle: &'a T,
    slot: &'static Slot,
    previous: usize,
    /// The slot was taken for this call only and goes back when it ends.
    borrowed: bool,
}

impl<T> std::ops::Deref for InCall<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        self.handle
    }
}

impl<T> Drop for InCall<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        // Release: everything this call did with the handle happens before a
        // destroyer that reads the slot frees it.
        self.slot.handle.store(self.previous, Ordering::Release);
        if self.borrowed {
            give_back(self.slot);
        }
    }
}

/// Checks a handle argument like [`live`] and holds it until the returned
/// guard is dropped: a concurrent [`free`] waits for the guard.
///
/// # Safety
/// As for [`live`].
#[inline]
pub(super) unsafe fn enter<'a, T: Handle>(p: *const T, name: &str) -> Result<InCall<'a, T>> {
    // SAFETY: the caller's contract.
    unsafe { hold(p, name, check_header::<T>) }
}

/// [`enter`] with the check of the header to make once held.
///
/// # Safety
/// As for [`live`].
#[inline(always)]
unsafe fn hold<'a, T: Handle>(
    p: *const T,
    name: &str,
    check: fn(&Header, &str) -> Result<()>,
) -> Result<InCall<'a, T>> {
    not_null(p, name)?;
    let (slot, borrowed) = this_threads_slot();
    // Calls nest (a receive callback calling into the library), so the slot
    // keeps what it held and gets it back on exit.
    let previous = slot.handle.load(Ordering::Relaxed);
    slot.handle.store(p as usize, Ordering::Relaxed);
    light_barrier();
    let guard = InCall {
        // SAFETY: non-NULL; the reference is only used after the check below.
        handle: unsafe { &*p },
        slot,
        previous,
        borrowed,
    };
    // SAFETY: as for `live`: a handle, or freed memory whose magic word no
    // longer matches. From here on `free` cannot release it (the slot names it).
    check(unsafe { &*T::header(p) }, name)?;
    Ok(guard)
}

/// Frees a handle made by `Box::into_raw`: marks it dead (a second free, or a
/// later use, is `INVALID_ARGUMENT` where the memory was not reused), waits
/// until no call in flight holds it, and returns the box to drop. NULL is
/// `Ok(None)`. A handle inherited through `fork()` is accepted here even when
/// its type is process-bound: dropping it must then be inert.
///
/// # Safety
/// `p` is NULL or a pointer from this type's constructor (`Box::into_raw`).
pub(super) unsafe fn free<T: Handle>(p: *mut T, name: &str) -> Result<Option<Box<T>>> {
    if p.is_null() {
        return Ok(None);
    }
    // A free racing another free (or any call) on a shared handle holds it
    // like a call does, so the winner waits for the loser's check below.
    let held = if T::SHARED {
        // SAFETY: caller contract. Inherited handles are freed too (inertly).
        Some(unsafe { hold(p.cast_const(), name, check_magic::<T>) }?)
    } else {
        None
    };
    // SAFETY: non-NULL; a handle or freed memory, as for `live`.
    let header = unsafe { &*T::header(p) };
    if header
        .magic
        .compare_exchange(T::MAGIC, DEAD_MAGIC, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return Err(Error::invalid(format!(
            "{name} is not a live {} (already freed, or not one)",
            T::WHAT
        )));
    }
    drop(held);
    if T::SHARED {
        // Pairs with the light barrier in `enter` (see the module comment).
        heavy_barrier(Scope::Process);
        wait_until_unheld(p as usize);
    }
    // SAFETY: made by Box::into_raw (contract); this call won the only
    // MAGIC -> DEAD transition and no call in flight holds it any more.
    Ok(Some(unsafe { Box::from_raw(p) }))
}

// ---- hazard slots ----------------------------------------------------------------

/// One thread's announcement: the handle it is inside a call on (0: none).
pub(super) struct Slot {
    handle: CachePadded<AtomicUsize>,
    /// Fork generation of the process the owning thread runs in: slots of
    /// threads that did not survive a `fork()` are ignored in the child.
    generation: AtomicU64,
}

/// Every slot ever made; a slot is reused after its thread exits.
static SLOTS: Mutex<Vec<&'static Slot>> = Mutex::new(Vec::new());
/// Slots of exited threads, ready for reuse.
static SPARE: Mutex<Vec<&'static Slot>> = Mutex::new(Vec::new());

struct Owned(&'static Slot);

impl Drop for Owned {
    fn drop(&mut self) {
        give_back(self.0);
    }
}

thread_local! {
    static MINE: Owned = Owned(take_slot());
}

fn take_slot() -> &'static Slot {
    let slot = SPARE.lock().pop().unwrap_or_else(|| {
        let s: &'static Slot = Box::leak(Box::new(Slot {
            handle: CachePadded::new(AtomicUsize::new(0)),
            generation: AtomicU64::new(0),
        }));
        SLOTS.lock().push(s);
        s
    });
    slot.generation
        .store(crate::fork::generation(), Ordering::Relaxed);
    slot
}

fn give_back(slot: &'static Slot) {
    slot.handle.store(0, Ordering::Release);
    SPARE.lock().push(slot);
}

/// The calling thread's slot, and whether it was borrowed for this call only
/// (a thread whose thread-locals are already torn down: rare, thread-exit
/// destructors calling into the library).
#[inline(always)]
fn this_threads_slot() -> (&'static Slot, bool) {
    match MINE.try_with(|o| o.0) {
        Ok(slot) => {
            let now = crate::fork::generation_now();
            if slot.generation.load(Ordering::Relaxed) != now {
                // This thread called fork() and lives on in the child: its
                // slot belongs to the child's process now.
                slot.generation.store(now, Ordering::Relaxed);
            }
            (slot, false)
        }
        Err(_) => (take_slot(), true),
    }
}

/// Waits until no slot of a live thread of this process names `addr`
/// (ignoring the caller's own slot: a thread freeing a handle it is inside a
/// call on would otherwise wait for itself).
fn wait_until_unheld(addr: usize) {
    let own = MINE.try_with(|o| o.0 as *const Slot).ok();
    let now = crate::fork::generation_now();
    let held = || {
        let held_by = |s: &Slot| {
            Some(s as *const Slot) != own
                && s.generation.load(Ordering::Relaxed) == now
                && s.handle.load(Ordering::Acquire) == addr
        };
        SLOTS.lock().iter().any(|s| held_by(s))
    };
    let mut pause = Duration::from_micros(20);
    while held() {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}
