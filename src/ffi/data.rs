//! Copying convenience: send a copy of a buffer, receive into a buffer.

use super::cancel::psyne_cancel_t;
use super::channel::psyne_channel_t;
use super::{check_len, not_null, psyne_error_t, run, wait_limit, PSYNE_WAIT_FOREVER};
use crate::channel::too_small;
use crate::error::Result;
use std::ffi::c_void;
use std::time::Duration;

/// Body of the send functions.
///
/// # Safety
/// As for `psyne_send_data_cancellable`.
unsafe fn send(
    ch: *mut psyne_channel_t,
    data: *const c_void,
    size: usize,
    msg_type: u32,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
) -> Result<()> {
    // SAFETY: caller contract.
    let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
    // SAFETY: caller contract.
    let bytes = unsafe { input(data, size) }?;
    // SAFETY: caller contract.
    let token = unsafe { psyne_cancel_t::for_wait(timeout_ms, cancel) }?;
    match timeout_ms {
        0 => h.channel.try_send(bytes, msg_type),
        PSYNE_WAIT_FOREVER => h.channel.send_until(bytes, msg_type, None, token.as_ref()),
        ms => h.channel.send_until(
            bytes,
            msg_type,
            Some(Duration::from_millis(u64::from(ms))),
            token.as_ref(),
        ),
    }
}

/// Sends a copy of `size` bytes at `data` as one message of type `msg_type`;
/// never blocks (a full ring is `PSYNE_ERROR_CHANNEL_FULL` at once).
///
/// `data` may be NULL when `size` is 0 (an empty message). `size` above
/// `psyne_channel_get_max_message_size` is `PSYNE_ERROR_INVALID_ARGUMENT`
/// (nothing is queued); so is a non-zero `msg_type` on a `PSYNE_TYPE_SINGLE`
/// channel. A stopped channel is `PSYNE_ERROR_CHANNEL_STOPPED`.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `data` NULL or readable for
/// `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn psyne_send_data(
    ch: *mut psyne_channel_t,
    data: *const c_void,
    size: usize,
    msg_type: u32,
) -> psyne_error_t {
    run("psyne_send_data", || {
        // SAFETY: forwarded caller contract; no token.
        unsafe { send(ch, data, size, msg_type, 0, std::ptr::null_mut()) }
    })
}

/// Like `psyne_send_data`, waiting up to `timeout_ms` milliseconds for room
/// (`PSYNE_ERROR_TIMEOUT`; 0 = do not wait; `PSYNE_WAIT_FOREVER` = no limit).
///
/// # Safety
/// As for `psyne_send_data`.
#[no_mangle]
pub unsafe extern "C" fn psyne_send_data_timeout(
    ch: *mut psyne_channel_t,
    data: *const c_void,
    size: usize,
    msg_type: u32,
    timeout_ms: u32,
) -> psyne_error_t {
    run("psyne_send_data_timeout", || {
        // SAFETY: forwarded caller contract; no token.
        unsafe { send(ch, data, size, msg_type, timeout_ms, std::ptr::null_mut()) }
    })
}

/// Like `psyne_send_data_timeout`; a `psyne_cancel_trigger` on `cancel`
/// (NULL: none) ends the wait with `PSYNE_ERROR_CANCELLED`. With
/// `timeout_ms` 0 the call does not wait and does not consult `cancel`.
///
/// # Safety
/// As for `psyne_send_data`; `cancel` must be NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn psyne_send_data_cancellable(
    ch: *mut psyne_channel_t,
    data: *const c_void,
    size: usize,
    msg_type: u32,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
) -> psyne_error_t {
    run("psyne_send_data_cancellable", || {
        // SAFETY: forwarded caller contract.
        unsafe { send(ch, data, size, msg_type, timeout_ms, cancel) }
    })
}

/// Body of the receive functions.
///
/// # Safety
/// As for `psyne_receive_data_cancellable`.
unsafe fn receive(
    ch: *mut psyne_channel_t,
    buf: *mut c_void,
    cap: usize,
    received: *mut usize,
    msg_type: *mut u32,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
) -> Result<()> {
    // SAFETY: caller contract.
    let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
    // SAFETY: caller contract.
    let out = unsafe { output(buf, cap) }?;
    not_null(received, "received")?;
    not_null(msg_type, "type")?;
    // SAFETY: caller contract.
    let token = unsafe { psyne_cancel_t::for_wait(timeout_ms, cancel) }?;
    let r = h.channel.recv_into_raw(
        out,
        wait_limit(timeout_ms, token.as_ref(), h.channel.spin()).as_ref(),
    )?;
    // SAFETY: both checked non-NULL above.
    unsafe { report_received(r, cap, received, msg_type) }
}

/// Writes a copying receive's outcome: the length and type, or (a `buf` of
/// `cap` bytes too small) the size needed, as an error.
///
/// # Safety
/// `received` and `msg_type` are non-NULL and writable.
pub(super) unsafe fn report_received(
    r: std::result::Result<(usize, u32), usize>,
    cap: usize,
    received: *mut usize,
    msg_type: *mut u32,
) -> Result<()> {
    match r {
        Ok((n, t)) => {
            // SAFETY: the function's contract.
            unsafe {
                received.write(n);
                msg_type.write(t);
            }
            Ok(())
        }
        Err(needed) => {
            // SAFETY: the function's contract.
            unsafe { received.write(needed) };
            Err(too_small(cap, needed))
        }
    }
}

/// The buffer of a copying receive's `buf` argument (NULL with `cap` 0
/// receives empty messages only).
///
/// # Safety
/// `buf` NULL or writable for `cap` bytes that nothing else accesses during
/// the call.
pub(super) unsafe fn output<'a>(buf: *mut c_void, cap: usize) -> Result<&'a mut [u8]> {
    if cap == 0 {
        return Ok(&mut []);
    }
    not_null(buf, "buf")?;
    check_len(cap, "buf")?;
    // SAFETY: non-NULL, at most isize::MAX bytes, writable (contract).
    Ok(unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), cap) })
}

/// The bytes of a send's `data` argument (NULL with `size` 0 is an empty
/// message: FFI callers pass NULL).
///
/// # Safety
/// `data` NULL or readable for `size` bytes that nobody writes during the
/// call.
pub(super) unsafe fn input<'a>(data: *const c_void, size: usize) -> Result<&'a [u8]> {
    if size == 0 {
        return Ok(&[]);
    }
    not_null(data, "data")?;
    check_len(size, "data")?;
    // SAFETY: non-NULL, at most isize::MAX bytes, readable (contract).
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) })
}

/// Copies the next message into `buf` (`cap` bytes), writing its length to
/// `*received` and its type to `*msg_type` (0 on SINGLE channels).
///
/// `timeout_ms`: 0 = do not wait (`PSYNE_ERROR_NO_MESSAGE` when empty); > 0
/// waits up to that many milliseconds (`PSYNE_ERROR_TIMEOUT`);
/// `PSYNE_WAIT_FOREVER` = no limit. A stopped channel is first drained, then
/// `PSYNE_ERROR_CHANNEL_STOPPED`. If `cap` is smaller than the next message,
/// returns `PSYNE_ERROR_INVALID_ARGUMENT`, writes the size needed to
/// `*received`, and the message stays queued. `buf` may be NULL when `cap`
/// is 0 (then only an empty message is received).
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `buf` NULL or writable for
/// `cap` bytes; `received` and `msg_type` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_receive_data(
    ch: *mut psyne_channel_t,
    buf: *mut c_void,
    cap: usize,
    received: *mut usize,
    msg_type: *mut u32,
    timeout_ms: u32,
) -> psyne_error_t {
    run("psyne_receive_data", || {
        // SAFETY: forwarded caller contract; no token.
        unsafe {
            receive(
                ch,
                buf,
                cap,
                received,
                msg_type,
                timeout_ms,
                std::ptr::null_mut(),
            )
        }
    })
}

/// Like `psyne_receive_data`; a `psyne_cancel_trigger` on `cancel` (NULL:
/// none) ends the wait with `PSYNE_ERROR_CANCELLED`. With `timeout_ms` 0 the
/// call does not wait and does not consult `cancel`.
///
/// # Safety
/// As for `psyne_receive_data`; `cancel` must be NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn psyne_receive_data_cancellable(
    ch: *mut psyne_channel_t,
    buf: *mut c_void,
    cap: usize,
    received: *mut usize,
    msg_type: *mut u32,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
) -> psyne_error_t {
    run("psyne_receive_data_cancellable", || {
        // SAFETY: forwarded caller contract.
        unsafe { receive(ch, buf, cap, received, msg_type, timeout_ms, cancel) }
    })
}
