//! Exclusive side handles: `psyne_producer_t` and `psyne_consumer_t`, the C
//! form of `Channel::producer()` / `Channel::consumer()`.
//!
//! A side handle takes its side of the channel once, when it is made, so its
//! calls skip the per-call side lock (on single sides) and the per-message
//! channel reference a message from `psyne_message_reserve` holds. Its
//! messages are not allocated either: each side handle embeds one message
//! handle, which `psyne_producer_reserve*` / `psyne_consumer_receive*` hand
//! out and `psyne_message_send` / `_cancel` / `_release` give back. So a
//! producer holds at most one reservation at a time, a consumer one received
//! message; asking for a second is `PSYNE_ERROR_INVALID_ARGUMENT`.
//!
//! Like a message, a side handle is used by one thread at a time (it may move
//! between threads); several side handles on one multi side may be used
//! concurrently, one per thread.

use super::cancel::psyne_cancel_t;
use super::channel::psyne_channel_t;
use super::data::{input, output, report_received};
use super::handle::{self, Handle, Header};
use super::message::{psyne_message_t, MessageKind};
use super::{not_null, psyne_error_t, run, wait_limit};
use crate::channel::{Consumer, Producer, ReadGuard, WriteGuard};
use crate::error::{Error, Result};
use crate::ring::wait::WaitLimit;
use crate::Channel;
use std::ffi::c_void;

/// The producer side of a channel, held exclusively (opaque). Made by
/// `psyne_producer_new`, freed by `psyne_producer_free`.
pub struct psyne_producer_t {
    header: Header,
    /// The one reservation; declared before `side`, so dropped first (its
    /// guard borrows the state `side` keeps alive).
    msg: psyne_message_t,
    side: Producer,
    /// Keeps the channel (a socket end's I/O driver, an ipc attachment)
    /// open for as long as the side handle lives.
    _channel: Channel,
}

/// The consumer side of a channel, held exclusively (opaque). Made by
/// `psyne_consumer_new`, freed by `psyne_consumer_free`.
pub struct psyne_consumer_t {
    header: Header,
    /// The one received message; dropped before `side` (see
    /// `psyne_producer_t::msg`).
    msg: psyne_message_t,
    side: Consumer,
    _channel: Channel,
}

macro_rules! side_handle {
    ($t:ty, $magic:expr, $what:expr) => {
        impl Handle for $t {
            const MAGIC: u64 = $magic;
            const WHAT: &'static str = $what;
            // The side belongs to the process that took it (an ipc side lock
            // names that process).
            const PROCESS_BOUND: bool = true;
            const SHARED: bool = false;

            fn header(p: *const Self) -> *const Header {
                // SAFETY: computes a field address without reading through `p`.
                unsafe { std::ptr::addr_of!((*p).header) }
            }
        }
    };
}

side_handle!(psyne_producer_t, 0x7073_796e_6550_5244, "psyne_producer_t"); // "psynePRD"
side_handle!(psyne_consumer_t, 0x7073_796e_6543_4e53, "psyne_consumer_t"); // "psyneCNS"

/// Checks a side handle argument and lends it for the call.
///
/// # Safety
/// `p` is NULL or a pointer from this type's `_new`; the C caller uses a
/// side handle from one thread at a time, so this is the only reference.
#[inline(always)]
unsafe fn side<'a, T: Handle>(p: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: caller contract.
    unsafe { handle::live(p, name) }?;
    // SAFETY: live, and used by this thread alone (contract).
    Ok(unsafe { &mut *p })
}

/// Refuses a second message while the embedded one is out.
#[inline(always)]
fn check_vacant(msg: &psyne_message_t, what: &'static str) -> Result<()> {
    if msg.in_use() {
        return Err(still_held(what));
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn still_held(what: &'static str) -> Error {
    Error::invalid(format!(
        "this {what} still holds its message (a side handle holds one at a time): send, cancel or release it first"
    ))
}

/// Makes a side handle of a channel.
///
/// # Safety
/// `ch` NULL or a live channel handle; `out` NULL or writable.
unsafe fn new_side<T>(
    ch: *mut psyne_channel_t,
    out: *mut *mut T,
    make: impl FnOnce(&Channel) -> Result<T>,
) -> Result<()> {
    not_null(out, "out")?;
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { out.write(std::ptr::null_mut()) };
    // SAFETY: caller contract.
    let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
    let b = Box::new(make(&h.channel)?);
    // SAFETY: as above.
    unsafe { out.write(Box::into_raw(b)) };
    Ok(())
}

/// Takes the producer side of `ch` for as long as the returned handle
/// lives and writes the handle to `*out` (NULL on failure).
///
/// On SPSC/SPMC channels this makes it the only sender: sends and
/// reservations through any channel handle, and a second producer, are
/// `PSYNE_ERROR_INVALID_ARGUMENT` until it is freed. On MPSC/MPMC channels
/// any number of producers may be made, one per sending thread. In return
/// its calls take no lock and allocate nothing per message. The producer
/// keeps the channel open; free it with `psyne_producer_free` (before or
/// after `psyne_channel_destroy`).
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_producer_new(
    ch: *mut psyne_channel_t,
    out: *mut *mut psyne_producer_t,
) -> psyne_error_t {
    run("psyne_producer_new", || {
        // SAFETY: forwarded caller contract.
        unsafe {
            new_side(ch, out, |c| {
                Ok(psyne_producer_t {
                    header: Header::new::<psyne_producer_t>(),
                    msg: psyne_message_t::vacant(),
                    side: c.producer()?,
                    _channel: c.clone(),
                })
            })
        }
    })
}

/// Frees a producer and gives its side back. A reservation it still holds
/// is cancelled (its message handle dies with it). NULL is a no-op
/// (`PSYNE_OK`).
///
/// # Safety
/// `p` must be NULL or a live producer, not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn psyne_producer_free(p: *mut psyne_producer_t) -> psyne_error_t {
    run("psyne_producer_free", || {
        // SAFETY: caller contract; the magic word is cleared so that a
        // second free is detected.
        drop(unsafe { handle::free(p, "producer") }?);
        Ok(())
    })
}

/// Body of the reserve functions. `send_held`: send the reservation the
/// producer holds first, with this type (else holding one refuses the
/// call).
///
/// # Safety
/// As for `psyne_producer_reserve_cancellable`.
#[inline(always)]
unsafe fn reserve(
    p: *mut psyne_producer_t,
    size: usize,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
    msg: *mut *mut psyne_message_t,
    data: *mut *mut c_void,
    send_held: Option<u32>,
) -> Result<()> {
    if send_held.is_some() {
        // `*msg` stays as it is until the held reservation is sent: it may
        // be the caller's only pointer to it.
        not_null(msg, "msg")?;
    } else {
        // SAFETY: caller contract.
        unsafe { clear_reserve_outs(msg, data) }?;
    }
    // SAFETY: caller contract.
    let h = unsafe { side(p, "producer") }?;
    if send_held.is_none() {
        check_vacant(&h.msg, "producer")?;
    }
    // `for_wait` makes this test too; made here as well, the no-wait call
    // carries nothing of the lookup's `Result` (18 instructions per fused
    // call, `hotpath c_fused`).
    let token = if timeout_ms == 0 {
        None
    } else {
        // SAFETY: caller contract.
        unsafe { psyne_cancel_t::for_wait(timeout_ms, cancel) }?
    };
    let limit = wait_limit(timeout_ms, token.as_ref(), h.side.spin());
    if let Some(msg_type) = send_held {
        let sent = h.msg.send_held(msg_type);
        if h.msg.in_use() {
            return sent; // a refused type: the reservation and `*msg` stay
        }
        // SAFETY: caller contract.
        unsafe { clear_reserve_outs(msg, data) }?;
        sent?;
    }
    // SAFETY: outs checked by `clear_reserve_outs`; `h.msg` is vacant.
    unsafe { reserve_into(h, size, limit.as_ref(), msg, data) }
}

/// Checks a reserve's `msg` out-argument and sets `*msg` (and `*data`,
/// unless NULL) to NULL, for the failure cases.
///
/// # Safety
/// `msg` NULL or writable; `data` NULL or writable.
#[inline(always)]
unsafe fn clear_reserve_outs(msg: *mut *mut psyne_message_t, data: *mut *mut c_void) -> Result<()> {
    not_null(msg, "msg")?;
    // SAFETY: checked non-NULL (`data`: or NULL, not wanted); the caller
    // provides writable storage.
    unsafe {
        msg.write(std::ptr::null_mut());
        write_opt(data, std::ptr::null_mut());
    }
    Ok(())
}

/// Reserves into the producer's vacant embedded message and hands it out.
///
/// # Safety
/// `h.msg` is vacant; `msg` writable; `data` NULL or writable.
#[inline(always)]
unsafe fn reserve_into(
    h: &mut psyne_producer_t,
    size: usize,
    limit: Option<&WaitLimit<'_>>,
    msg: *mut *mut psyne_message_t,
    data: *mut *mut c_void,
) -> Result<()> {
    let guard = h.side.reserve_limited(size, limit)?;
    // SAFETY: the guard borrows the channel state that `h.side` keeps
    // alive; it is stored in `h.msg`, which is emptied (send, cancel) or
    // dropped before `h.side` (field order), and a side handle hands out no
    // other guard while `h.msg` is in use (`check_vacant`).
    let mut guard = unsafe { std::mem::transmute::<WriteGuard<'_>, WriteGuard<'static>>(guard) };
    let bytes = guard.as_mut_ptr();
    h.msg.fill(MessageKind::Reserved(guard));
    // SAFETY: caller contract.
    unsafe {
        msg.write(&mut h.msg);
        write_opt(data, bytes.cast());
    }
    Ok(())
}

/// Writes an optional out-argument (NULL: not wanted).
///
/// # Safety
/// `out` is NULL or writable.
#[inline(always)]
unsafe fn write_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable (contract).
        unsafe { out.write(value) };
    }
}

/// Reserves `size` bytes inside the ring for a zero-copy send, as
/// `psyne_message_reserve` does, without allocating: `*msg` is the
/// producer's own message handle, and `*data` (unless `data` is NULL) the
/// bytes to fill, as `psyne_message_get_data` gives them. Never blocks.
/// Then `psyne_message_send` or `psyne_message_cancel` it before the
/// producer's next reservation (until then that is
/// `PSYNE_ERROR_INVALID_ARGUMENT`). On failure `*msg` (and `*data`) are
/// set to NULL.
///
/// # Safety
/// `p` must be NULL or a live producer; `msg` NULL or writable; `data` NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_producer_reserve(
    p: *mut psyne_producer_t,
    size: usize,
    msg: *mut *mut psyne_message_t,
    data: *mut *mut c_void,
) -> psyne_error_t {
    run("psyne_producer_reserve", || {
        // SAFETY: forwarded caller contract; no wait, no token.
        unsafe { reserve(p, size, 0, std::ptr::null_mut(), msg, data, None) }
    })
}

/// Like `psyne_producer_reserve`, waiting up to `timeout_ms` milliseconds
/// for room (`PSYNE_ERROR_TIMEOUT`; `PSYNE_WAIT_FOREVER` = no limit); a
/// `psyne_cancel_trigger` on `cancel` (NULL: none) ends the wait with
/// `PSYNE_ERROR_CANCELLED`, a stop with `PSYNE_ERROR_CHANNEL_STOPPED`.
///
/// # Safety
/// As for `psyne_producer_reserve`; `cancel` must be NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn psyne_producer_reserve_cancellable(
    p: *mut psyne_producer_t,
    size: usize,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
    msg: *mut *mut psyne_message_t,
    data: *mut *mut c_void,
) -> psyne_error_t {
    run("psyne_producer_reserve_cancellable", || {
        // SAFETY: forwarded caller contract.
        unsafe { reserve(p, size, timeout_ms, cancel, msg, data, None) }
    })
}

/// Sends the reservation the producer holds, if it holds one, as one
/// message of type `msg_type` (as `psyne_message_send` does), then reserves
/// `size` bytes as `psyne_producer_reserve_cancellable` does: one call per
/// message for a producer that streams zero-copy messages.
///
/// ```c
/// psyne_message_t *m;  void *out;
/// for (int i = 0; i < n; i++) {
///     while (psyne_producer_send_and_reserve(tx, 1, 64, 0, NULL, &m, &out) == PSYNE_ERROR_CHANNEL_FULL)
///         ;  // the previous frame is sent: retry the reservation
///     fill(out, i);
/// }
/// psyne_message_send(m, 1);  // the last one
/// ```
///
/// The held reservation is sent even when the reservation after it fails
/// (`CHANNEL_FULL`, `TIMEOUT`, ...): then the producer holds nothing and
/// `*msg` (and `*data`) are NULL. If the send itself fails, nothing is
/// reserved: a type a SINGLE channel refuses is
/// `PSYNE_ERROR_INVALID_ARGUMENT`, keeps the reservation and leaves `*msg`
/// as it was; a stopped channel is `PSYNE_ERROR_CHANNEL_STOPPED` and ends
/// it (`*msg` NULL). Bad arguments (NULL `msg`, a foreign `cancel`) are
/// refused before anything is sent, and leave `*msg` as it was. So after
/// any failure `*msg` still equal to the held message means it is still
/// held.
///
/// # Safety
/// As for `psyne_producer_reserve_cancellable`.
#[no_mangle]
pub unsafe extern "C" fn psyne_producer_send_and_reserve(
    p: *mut psyne_producer_t,
    msg_type: u32,
    size: usize,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
    msg: *mut *mut psyne_message_t,
    data: *mut *mut c_void,
) -> psyne_error_t {
    run("psyne_producer_send_and_reserve", || {
        // SAFETY: forwarded caller contract.
        unsafe { reserve(p, size, timeout_ms, cancel, msg, data, Some(msg_type)) }
    })
}

/// Sends a copy of `size` bytes at `data` as one message of type
/// `msg_type`, as `psyne_send_data_cancellable` does (`timeout_ms` 0: do
/// not wait). `PSYNE_ERROR_INVALID_ARGUMENT` while the producer holds a
/// reservation.
///
/// # Safety
/// `p` must be NULL or a live producer; `data` NULL or readable for `size`
/// bytes; `cancel` NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn psyne_producer_send_data(
    p: *mut psyne_producer_t,
    data: *const c_void,
    size: usize,
    msg_type: u32,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
) -> psyne_error_t {
    run("psyne_producer_send_data", || {
        // SAFETY: caller contract.
        let h = unsafe { side(p, "producer") }?;
        check_vacant(&h.msg, "producer")?;
        // SAFETY: caller contract.
        let bytes = unsafe { input(data, size) }?;
        if timeout_ms == 0 {
            // The no-wait call on its own path: a limit built at run time
            // costs it 20-odd instructions.
            return h.side.try_send(bytes, msg_type);
        }
        // SAFETY: caller contract.
        let token = unsafe { psyne_cancel_t::for_wait(timeout_ms, cancel) }?;
        let limit = wait_limit(timeout_ms, token.as_ref(), h.side.spin());
        h.side.send_limited(bytes, msg_type, limit.as_ref())
    })
}

/// Takes the consumer side of `ch` for as long as the returned handle
/// lives and writes the handle to `*out` (NULL on failure).
///
/// On SPSC/MPSC channels this makes it the only receiver: receives through
/// any channel handle, a receive callback, and a second consumer, are
/// `PSYNE_ERROR_INVALID_ARGUMENT` until it is freed. On SPMC/MPMC channels
/// any number may be made, one per receiving thread. Its calls take no lock
/// and allocate nothing per message. The consumer keeps the channel open;
/// free it with `psyne_consumer_free`.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_consumer_new(
    ch: *mut psyne_channel_t,
    out: *mut *mut psyne_consumer_t,
) -> psyne_error_t {
    run("psyne_consumer_new", || {
        // SAFETY: forwarded caller contract.
        unsafe {
            new_side(ch, out, |c| {
                Ok(psyne_consumer_t {
                    header: Header::new::<psyne_consumer_t>(),
                    msg: psyne_message_t::vacant(),
                    side: c.consumer()?,
                    _channel: c.clone(),
                })
            })
        }
    })
}

/// Frees a consumer and gives its side back. A message it still holds is
/// released (its message handle dies with it). NULL is a no-op
/// (`PSYNE_OK`).
///
/// # Safety
/// `c` must be NULL or a live consumer, not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn psyne_consumer_free(c: *mut psyne_consumer_t) -> psyne_error_t {
    run("psyne_consumer_free", || {
        // SAFETY: caller contract; see `psyne_producer_free`.
        drop(unsafe { handle::free(c, "consumer") }?);
        Ok(())
    })
}

/// Body of the receive functions. `release_held`: release the message
/// the consumer holds first (else holding one refuses the call).
///
/// # Safety
/// As for `psyne_consumer_receive_cancellable`.
#[inline(always)]
unsafe fn receive(
    c: *mut psyne_consumer_t,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
    outs: ReceiveOuts,
    release_held: bool,
) -> Result<()> {
    if release_held {
        // Every argument is checked before the held message is released;
        // `*msg` stays as it is until then.
        not_null(outs.msg, "msg")?;
        not_null(outs.msg_type, "type")?;
    } else {
        // SAFETY: caller contract.
        unsafe { outs.clear() }?;
    }
    // SAFETY: caller contract.
    let h = unsafe { side(c, "consumer") }?;
    if !release_held {
        check_vacant(&h.msg, "consumer")?;
    }
    // `for_wait` makes this test too; made here as well, the no-wait call
    // carries nothing of the lookup's `Result` (18 instructions per fused
    // call, `hotpath c_fused`).
    let token = if timeout_ms == 0 {
        None
    } else {
        // SAFETY: caller contract.
        unsafe { psyne_cancel_t::for_wait(timeout_ms, cancel) }?
    };
    let limit = wait_limit(timeout_ms, token.as_ref(), h.side.spin());
    if release_held {
        h.msg.release_viewed();
        // SAFETY: caller contract.
        unsafe { outs.clear() }?;
    }
    // SAFETY: outs checked by `clear`; `h.msg` is vacant.
    unsafe { receive_into(h, limit.as_ref(), outs) }
}

/// The out-arguments of a zero-copy receive.
#[derive(Clone, Copy)]
struct ReceiveOuts {
    msg: *mut *mut psyne_message_t,
    data: *mut *const c_void,
    size: *mut usize,
    msg_type: *mut u32,
}

impl ReceiveOuts {
    #[inline(always)]
    fn new(
        msg: *mut *mut psyne_message_t,
        data: *mut *const c_void,
        size: *mut usize,
        msg_type: *mut u32,
    ) -> ReceiveOuts {
        ReceiveOuts {
            msg,
            data,
            size,
            msg_type,
        }
    }

    /// Checks the required out-arguments and sets `*msg` (and `*data`,
    /// unless NULL) to NULL, for the failure cases.
    ///
    /// # Safety
    /// Each pointer NULL or writable.
    #[inline(always)]
    unsafe fn clear(&self) -> Result<()> {
        not_null(self.msg, "msg")?;
        // SAFETY: checked non-NULL (`data`: or NULL, not wanted); the
        // caller provides writable storage.
        unsafe {
            self.msg.write(std::ptr::null_mut());
            write_opt(self.data, std::ptr::null());
        }
        not_null(self.msg_type, "type")
    }
}

/// Receives into the consumer's vacant embedded message and hands it out.
///
/// # Safety
/// `h.msg` is vacant; `outs` passed [`ReceiveOuts::clear`].
#[inline(always)]
unsafe fn receive_into(
    h: &mut psyne_consumer_t,
    limit: Option<&WaitLimit<'_>>,
    outs: ReceiveOuts,
) -> Result<()> {
    let guard = h.side.recv_inner(limit)?;
    let t = guard.msg_type();
    // SAFETY: as in the producer's `reserve_into`: stored in `h.msg`,
    // emptied or dropped before `h.side`, which serves no other guard
    // meanwhile.
    let guard = unsafe { std::mem::transmute::<ReadGuard<'_>, ReadGuard<'static>>(guard) };
    let (bytes, len) = (guard.as_ptr(), guard.len());
    h.msg.fill(MessageKind::Viewed(guard));
    // SAFETY: `msg` and `msg_type` checked non-NULL and writable; `data`
    // and `size` NULL or writable.
    unsafe {
        outs.msg_type.write(t);
        outs.msg.write(&mut h.msg);
        write_opt(outs.data, bytes.cast());
        write_opt(outs.size, len);
    }
    Ok(())
}

/// Takes the next message as a zero-copy view, as `psyne_message_receive`
/// does, without allocating: `*msg` is the consumer's own message handle,
/// `*data` and `*size` (each unless NULL) its bytes, as
/// `psyne_message_get_data` gives them, and `*msg_type` its type. Never
/// blocks. `psyne_message_release` it before the consumer's next receive
/// (until then that is `PSYNE_ERROR_INVALID_ARGUMENT`). On failure `*msg`
/// (and `*data`) are set to NULL.
///
/// # Safety
/// `c` must be NULL or a live consumer; `msg`, `data`, `size` and
/// `msg_type` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_consumer_receive(
    c: *mut psyne_consumer_t,
    msg: *mut *mut psyne_message_t,
    data: *mut *const c_void,
    size: *mut usize,
    msg_type: *mut u32,
) -> psyne_error_t {
    run("psyne_consumer_receive", || {
        let outs = ReceiveOuts::new(msg, data, size, msg_type);
        // SAFETY: forwarded caller contract; no wait, no token.
        unsafe { receive(c, 0, std::ptr::null_mut(), outs, false) }
    })
}

/// Like `psyne_consumer_receive`, waiting up to `timeout_ms` milliseconds
/// (`PSYNE_ERROR_TIMEOUT`; `PSYNE_WAIT_FOREVER` = no limit); a
/// `psyne_cancel_trigger` on `cancel` (NULL: none) ends the wait with
/// `PSYNE_ERROR_CANCELLED`.
///
/// # Safety
/// As for `psyne_consumer_receive`; `cancel` must be NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn psyne_consumer_receive_cancellable(
    c: *mut psyne_consumer_t,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
    msg: *mut *mut psyne_message_t,
    data: *mut *const c_void,
    size: *mut usize,
    msg_type: *mut u32,
) -> psyne_error_t {
    run("psyne_consumer_receive_cancellable", || {
        let outs = ReceiveOuts::new(msg, data, size, msg_type);
        // SAFETY: forwarded caller contract.
        unsafe { receive(c, timeout_ms, cancel, outs, false) }
    })
}

/// Releases the message the consumer holds, if it holds one (as
/// `psyne_message_release` does), then receives the next one as
/// `psyne_consumer_receive_cancellable` does: one call per message for a
/// consumer that reads zero-copy views.
///
/// ```c
/// psyne_message_t *m;  const void *in;  size_t n;  uint32_t type;
/// for (int i = 0; i < count; i++) {
///     while (psyne_consumer_release_and_receive(rx, 0, NULL, &m, &in, &n, &type) == PSYNE_ERROR_NO_MESSAGE)
///         ;  // the previous view is released already
///     consume(in, n);
/// }
/// psyne_message_release(m);  // the last one
/// ```
///
/// The held message is released even when the receive after it fails;
/// then the consumer holds nothing and `*msg` (and `*data`) are NULL. Bad
/// arguments (NULL `msg` or `msg_type`, a foreign `cancel`) are refused
/// before anything is released, and leave `*msg` as it was.
///
/// # Safety
/// As for `psyne_consumer_receive_cancellable`.
#[no_mangle]
pub unsafe extern "C" fn psyne_consumer_release_and_receive(
    c: *mut psyne_consumer_t,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
    msg: *mut *mut psyne_message_t,
    data: *mut *const c_void,
    size: *mut usize,
    msg_type: *mut u32,
) -> psyne_error_t {
    run("psyne_consumer_release_and_receive", || {
        let outs = ReceiveOuts::new(msg, data, size, msg_type);
        // SAFETY: forwarded caller contract.
        unsafe { receive(c, timeout_ms, cancel, outs, true) }
    })
}

/// Copies the next message into `buf`, as `psyne_receive_data_cancellable`
/// does (a too-small `buf` writes the size needed to `*received` and leaves
/// the message queued). `PSYNE_ERROR_INVALID_ARGUMENT` while the consumer
/// holds a message.
///
/// # Safety
/// `c` must be NULL or a live consumer; `buf` NULL or writable for `cap`
/// bytes; `received` and `msg_type` NULL or writable; `cancel` NULL or a
/// live token.
#[no_mangle]
pub unsafe extern "C" fn psyne_consumer_receive_data(
    c: *mut psyne_consumer_t,
    buf: *mut c_void,
    cap: usize,
    received: *mut usize,
    msg_type: *mut u32,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
) -> psyne_error_t {
    run("psyne_consumer_receive_data", || {
        // SAFETY: caller contract.
        let h = unsafe { side(c, "consumer") }?;
        check_vacant(&h.msg, "consumer")?;
        not_null(received, "received")?;
        not_null(msg_type, "type")?;
        // SAFETY: caller contract.
        let out = unsafe { output(buf, cap) }?;
        let r = if timeout_ms == 0 {
            h.side.recv_into_limited(out, None)? // see psyne_producer_send_data
        } else {
            // SAFETY: caller contract.
            let token = unsafe { psyne_cancel_t::for_wait(timeout_ms, cancel) }?;
            let limit = wait_limit(timeout_ms, token.as_ref(), h.side.spin());
            h.side.recv_into_limited(out, limit.as_ref())?
        };
        // SAFETY: both checked non-NULL above.
        unsafe { report_received(r, cap, received, msg_type) }
    })
}
