//! Cancellation tokens for waiting calls (used by the Go binding's contexts).

use super::{not_null, psyne_error_t, run};
use crate::error::{Error, Result};
use crate::ring::wait::CancelToken;

const CANCEL_MAGIC: u64 = 0x7073_796e_6543_414e; // "psyneCAN"
const DEAD_MAGIC: u64 = 0xdead_dead_dead_dead;

/// A cancellation token (opaque): `psyne_cancel_trigger` wakes every
/// `*_cancellable` call waiting with it, which then returns
/// `PSYNE_ERROR_CANCELLED`.
pub struct psyne_cancel_t {
    magic: u64,
    token: CancelToken,
}

impl psyne_cancel_t {
    /// Checks a token argument: not NULL, and not (detectably) freed.
    ///
    /// # Safety
    /// `p` is NULL or a pointer from `psyne_cancel_new`; a freed token is a use
    /// after free that is only caught where the memory was not reused.
    unsafe fn from_ptr<'a>(p: *const psyne_cancel_t) -> Result<&'a Self> {
        not_null(p, "cancel")?;
        // SAFETY: non-NULL; by the contract above it points to a live token
        // (or to freed memory whose magic word no longer matches).
        let magic = unsafe { std::ptr::addr_of!((*p).magic).read_volatile() };
        if magic != CANCEL_MAGIC {
            return Err(Error::invalid(
                "cancel is not a live psyne_cancel_t (freed, or not a token)",
            ));
        }
        // SAFETY: live token; only psyne_cancel_free frees it.
        Ok(unsafe { &*p })
    }

    /// An optional token argument (NULL: none), cloned so that the wait keeps
    /// it alive on its own.
    ///
    /// # Safety
    /// As for `from_ptr`.
    pub(super) unsafe fn token(p: *const psyne_cancel_t) -> Result<Option<CancelToken>> {
        if p.is_null() {
            return Ok(None);
        }
        // SAFETY: caller contract.
        Ok(Some(unsafe { Self::from_ptr(p) }?.token.clone()))
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
            magic: CANCEL_MAGIC,
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
        unsafe { psyne_cancel_t::from_ptr(c) }?.token.cancel();
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
        unsafe { psyne_cancel_t::from_ptr(c) }?.token.reset();
        Ok(())
    })
}

/// Frees a token. NULL is a no-op (`PSYNE_OK`). Calls already waiting with
/// it keep working (they hold their own reference), but no thread may pass
/// `c` to a psyne function during or after this call; a freed token is
/// detected where cheap (`PSYNE_ERROR_INVALID_ARGUMENT`), otherwise undefined.
///
/// # Safety
/// `c` must be NULL or a live token that no other thread is passing in.
#[no_mangle]
pub unsafe extern "C" fn psyne_cancel_free(c: *mut psyne_cancel_t) -> psyne_error_t {
    run("psyne_cancel_free", || {
        if c.is_null() {
            return Ok(());
        }
        // SAFETY: caller contract.
        unsafe { psyne_cancel_t::from_ptr(c) }?;
        // SAFETY: live token made by Box::into_raw in psyne_cancel_new; the
        // magic is cleared first so a second free is detected.
        let b = unsafe {
            std::ptr::addr_of_mut!((*c).magic).write_volatile(DEAD_MAGIC);
            Box::from_raw(c)
        };
        drop(b);
        Ok(())
    })
}
