//! Which process a handle belongs to.
//!
//! A handle (and the attachment behind it) is inherited by a child made with
//! `fork()`, but it belongs to the process that opened it: a child that used
//! or destroyed it would act on the parent's behalf — release the parent's
//! locks through the shared open file description, free its slot, join
//! threads that do not exist in the child. So every handle remembers the
//! fork generation it was opened in, and a handle of another generation is
//! refused (C API) and inert when dropped.
//!
//! The generation is 0 in a process that has not forked since it first used
//! psyne and grows by one in each child `fork()` makes (a `pthread_atfork`
//! handler): along any line of descent, a handle opened in an ancestor has a
//! smaller generation than the process using it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The generation to record in a new handle (registers the fork handler on
/// first use, so that it is in place before any handle exists).
pub(crate) fn generation() -> u64 {
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only increments an atomic, which
        // is async-signal-safe as a fork child handler must be.
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
    GENERATION.load(Ordering::Relaxed)
}

/// Whether a handle recorded with generation `born` belongs to this process.
#[inline(always)]
pub(crate) fn is_ours(born: u64) -> bool {
    GENERATION.load(Ordering::Relaxed) == born
}

/// This process's generation (without registering the fork handler: for
/// comparisons with generations recorded by [`generation`]).
#[inline(always)]
pub(crate) fn generation_now() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}
