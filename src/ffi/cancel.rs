//! Cancellation tokens for waiting calls (used by the Go binding's contexts).

use super::handle::{self, Handle, Header};
use super::{not_null, psyne_error_t, run};
use crate::error::Result;
use crate::ring::wait::CancelToken;

/// A cancellation token (opaque): `psyne_cancel_trigger` wakes every
/// `*_cancellable` call waiting with it, which then returns
/// `PSYNE_ERROR_CANCELLED`.
pub struct psyne_cancel_t {
    header: Header,
    token: CancelToken,
}

impl Handle for psyne_cancel_t {
    const MAGIC: u64 = 0x7073_796e_6543_414e; // "psyneCAN"
    const WHAT: &'static str = "psyne_cancel_t";
    // A token is process-local memory: a forked child's copy is its own.
    const PROCESS_BOUND: bool = false;
    const SHARED: bool = true;

    fn header(p: *const Self) -> *const Header {
        // SAFETY: computes a field address without reading through `p`.
        unsafe { std::ptr::addr_of!((*p).header) }
    }
}

impl psyne_cancel_t {
    /// The token argument of a call that may wait up to `timeout_ms`
    /// (NULL: none), cloned so that the wait keeps it alive on its own. A
    /// call that does not wait (`timeout_ms` 0) does not look at it.
    ///
    /// Inline, so that the usual no-wait call or NULL token costs a test and
    /// no call.
    ///
    /// # Safety
    /// `p` is NULL or a pointer from `psyne_cancel_new`; a freed token is a use
    /// after free that is only caught where the memory was not reused.
    #[inline(always)]
    pub(super) unsafe fn for_wait(
        timeout_ms: u32,
        p: *const psyne_cancel_t,
    ) -> Result<Option<CancelToken>> {
        if timeout_ms == 0 || p.is_null() {
            return Ok(None);
        }
        // SAFETY: caller contract.
        unsafe { Self::token_of(p) }.map(Some)
    }

    /// [`Self::for_wait`] of a non-NULL argument.
    ///
    /// # Safety
    /// As for [`Self::for_wait`].
    #[inline(never)]
    unsafe fn token_of(p: *const psyne_cancel_t) -> Result<CancelToken> {
        // SAFETY: caller contract.
        Ok(unsafe { handle::enter(p, "cancel") }?.token.clone())
    }
}

/// Creates a token (not triggered) and writes it to `*out`; free it with
/// `psyne_cancel_free`.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_cancel_new(out: *mut *mut psyne_cancel_t) -> psyne_error_t {
    run("psyne_cancel_new", || {
        not_null(out, "out")?;
        let b = Box::new(psyne_cancel_t {
            header: Header::new::<psyne_cancel_t>(),
            token: CancelToken::new(),
        });
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { out.write(Box::into_raw(b)) };
        Ok(())
    })
}

/// Triggers the token: every call waiting with it returns
/// `PSYNE_ERROR_CANCELLED`, and so does every later waiting call until
/// `psyne_cancel_reset`. Safe to call from any thread, any number of times.
///
/// # Safety
/// `c` must be NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn psyne_cancel_trigger(c: *mut psyne_cancel_t) -> psyne_error_t {
    run("psyne_cancel_trigger", || {
        // SAFETY: caller contract.
        unsafe { handle::enter(c, "cancel") }?.token.cancel();
        Ok(())
    })
}

/// Re-arms a triggered token for reuse.
///
/// # Safety
/// `c` must be NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn psyne_cancel_reset(c: *mut psyne_cancel_t) -> psyne_error_t {
    run("psyne_cancel_reset", || {
        // SAFETY: caller contract.
        unsafe { handle::enter(c, "cancel") }?.token.reset();
        Ok(())
    })
}

/// Frees a token. NULL is a no-op (`PSYNE_OK`). Calls already waiting with
/// it keep working (they hold their own reference), and a call that another
/// thread is making with `c` right now finishes before the token is freed.
/// Passing `c` to a psyne function after this call returns is a use after
/// free, detected where cheap (`PSYNE_ERROR_INVALID_ARGUMENT`).
///
/// # Safety
/// `c` must be NULL or a token from `psyne_cancel_new`, not passed to psyne
/// after this call returns.
#[no_mangle]
pub unsafe extern "C" fn psyne_cancel_free(c: *mut psyne_cancel_t) -> psyne_error_t {
    run("psyne_cancel_free", || {
        // SAFETY: caller contract.
        drop(unsafe { handle::free(c, "cancel") }?);
        Ok(())
    })
}
