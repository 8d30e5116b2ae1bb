//! Zero-copy messages: reservations (writable bytes inside the ring) and
//! received messages (read-only views of the ring).

use super::cancel::psyne_cancel_t;
use super::channel::psyne_channel_t;
use super::handle::{self, Handle, Header};
use super::{not_null, psyne_error_t, run, wait_limit};
use crate::channel::{OwnedReadGuard, OwnedWriteGuard, ReadGuard, WriteGuard};
use crate::config::ChannelType;
use crate::error::{Error, Result};
use std::cell::RefCell;
use std::ffi::c_void;

/// What a message handle holds.
pub(super) enum MessageKind {
    /// From `psyne_message_reserve*`: writable ring bytes, published by send.
    Reservation(OwnedWriteGuard),
    /// From `psyne_message_receive*`: a read-only view, freed by release.
    Received(OwnedReadGuard),
    /// Handed to a receive callback; valid only during the call, owned by the
    /// dispatcher (it cannot be sent, cancelled or released).
    Borrowed { data: *const u8, len: usize },
    /// From `psyne_producer_reserve*`: the producer's own message, embedded
    /// in its handle (no allocation). The guard borrows the producer's
    /// channel state, which the producer handle keeps alive and outlives it.
    Reserved(WriteGuard<'static>),
    /// From `psyne_consumer_receive*`: the consumer's own message, embedded
    /// like [`MessageKind::Reserved`].
    Viewed(ReadGuard<'static>),
    /// An embedded message not in use (its header is dead).
    Vacant,
}

/// A message (opaque): a reservation (`psyne_message_reserve*`), a received
/// message (`psyne_message_receive*`), or a message handed to a receive
/// callback (valid only during the call).
pub struct psyne_message_t {
    header: Header,
    kind: MessageKind,
}

impl Handle for psyne_message_t {
    const MAGIC: u64 = 0x7073_796e_654d_5347; // "psyneMSG"
    const WHAT: &'static str = "psyne_message_t (already sent, cancelled or released, or a callback's message used after the callback returned)";
    // A message holds ring space (and a side lock) of an attachment that
    // belongs to the process that made it.
    const PROCESS_BOUND: bool = true;
    const SHARED: bool = false;

    fn header(p: *const Self) -> *const Header {
        // SAFETY: computes a field address without reading through `p`.
        unsafe { std::ptr::addr_of!((*p).header) }
    }
}

impl psyne_message_t {
    pub(super) fn new(kind: MessageKind) -> psyne_message_t {
        psyne_message_t {
            header: Header::new::<psyne_message_t>(),
            kind,
        }
    }

    /// An embedded message slot, not in use (dead until [`Self::fill`]).
    pub(super) fn vacant() -> psyne_message_t {
        let m = psyne_message_t::new(MessageKind::Vacant);
        m.header.kill();
        m
    }

    /// Whether an embedded slot holds a message.
    pub(super) fn in_use(&self) -> bool {
        !matches!(self.kind, MessageKind::Vacant)
    }

    /// Puts a message into a vacant embedded slot and makes it live.
    #[inline(always)]
    pub(super) fn fill(&mut self, kind: MessageKind) {
        debug_assert!(!self.in_use());
        // SAFETY: the slot holds `Vacant`, which owns nothing, so not
        // dropping it loses nothing (and skips a match on the kind).
        unsafe { std::ptr::write(&mut self.kind, kind) };
        self.header.revive::<psyne_message_t>();
    }

    /// A side handle's reservation that may be sent with `msg_type`, taken
    /// out (the slot is left vacant and dead); `None` for any other message
    /// or type, which the general path reports on.
    #[inline(always)]
    fn take_reserved(&mut self, msg_type: u32) -> Option<WriteGuard<'static>> {
        let MessageKind::Reserved(g) = &self.kind else {
            return None;
        };
        if msg_type != 0 && g.channel_type() == ChannelType::Single {
            return None;
        }
        // SAFETY: the guard is moved out and the slot overwritten with
        // `Vacant` without dropping what it held, so the guard is owned
        // (and dropped) exactly once, by the caller.
        let g = unsafe {
            let g = std::ptr::read(g);
            std::ptr::write(&mut self.kind, MessageKind::Vacant);
            g
        };
        self.header.kill();
        Some(g)
    }

    /// Releases a side handle's received message (the slot is left vacant
    /// and dead); false for any other message (a vacant slot included).
    #[inline(always)]
    pub(super) fn release_viewed(&mut self) -> bool {
        let MessageKind::Viewed(g) = &self.kind else {
            return false;
        };
        // SAFETY: as in `take_reserved`: moved out once, the slot
        // overwritten without a drop.
        let g = unsafe {
            let g = std::ptr::read(g);
            std::ptr::write(&mut self.kind, MessageKind::Vacant);
            g
        };
        self.header.kill();
        drop(g);
        true
    }

    /// A side handle's fused send: sends the reservation this embedded
    /// slot holds, if it holds one, as `msg_type`. A type its SINGLE
    /// channel refuses keeps the reservation (as `psyne_message_send`
    /// does); a stopped channel consumes it.
    #[inline(always)]
    pub(super) fn send_held(&mut self, msg_type: u32) -> Result<()> {
        if !matches!(self.kind, MessageKind::Reserved(_)) {
            return Ok(()); // vacant: the only other state of a producer's slot
        }
        match self.take_reserved(msg_type) {
            Some(g) => g.send(msg_type),
            None => Err(single_type_refused(msg_type)),
        }
    }

    /// Marks a (stack) message as dead when its callback returns.
    pub(super) fn kill(&mut self) {
        self.header.kill();
    }

    /// Checks a message argument: not NULL, not (detectably) consumed, made
    /// in this process.
    ///
    /// # Safety
    /// `p` is NULL or a pointer from `psyne_message_reserve*`,
    /// `psyne_message_receive*` or a receive callback; a consumed message is a
    /// use after free that is only caught where the memory was not reused.
    #[inline(always)]
    unsafe fn from_ptr<'a>(p: *mut psyne_message_t) -> Result<&'a mut Self> {
        // SAFETY: caller contract.
        unsafe { handle::live(p, "msg") }?;
        // SAFETY: live message; the C caller must not use one message from two
        // threads at once, so this is the only reference.
        Ok(unsafe { &mut *p })
    }

    /// Ends a message: empties an embedded one, gives a boxed one back to
    /// this thread's spares. Either way its magic word is cleared first, so
    /// that a second use is detected (while the memory is not reused).
    ///
    /// # Safety
    /// `p` passed `from_ptr` and is not a callback's (stack) message.
    unsafe fn consume(p: *mut psyne_message_t) -> MessageKind {
        // SAFETY: checked live by `from_ptr`, and (the C contract) used by
        // this thread alone: plain stores suffice.
        let m = unsafe { &mut *p };
        m.header.kill();
        let kind = std::mem::replace(&mut m.kind, MessageKind::Vacant);
        if !matches!(kind, MessageKind::Reserved(_) | MessageKind::Viewed(_)) {
            // SAFETY: the other kinds (but a callback's, excluded by the
            // contract) are made by `boxed`, i.e. by `Box::into_raw`; the
            // handle is dead now and nobody else holds it.
            give_spare(unsafe { Box::from_raw(p) });
        }
        kind
    }

    /// A boxed message: one of this thread's spares if it has one (no
    /// allocation), else a new box.
    fn boxed(kind: MessageKind) -> *mut psyne_message_t {
        let spare = SPARES
            .try_with(|s| s.try_borrow_mut().ok().and_then(|mut v| v.pop()))
            .ok()
            .flatten();
        match spare {
            Some(mut b) => {
                b.kind = kind;
                b.header.revive::<psyne_message_t>();
                Box::into_raw(b)
            }
            None => Box::into_raw(Box::new(psyne_message_t::new(kind))),
        }
    }
}

/// Most message boxes a thread keeps for reuse.
const SPARES_MAX: usize = 16;

thread_local! {
    /// Dead message boxes for `psyne_message_t::boxed` to reuse, so that the
    /// channel handles' reserve/receive allocate only while a thread holds
    /// more messages than ever before. Freed when the thread exits. Boxes,
    /// not values: a box is a handle, whose address C code holds.
    #[allow(clippy::vec_box)]
    static SPARES: RefCell<Vec<Box<psyne_message_t>>> = const { RefCell::new(Vec::new()) };
}

/// Keeps a dead message box for reuse (or frees it: too many spares, or
/// the thread is exiting).
fn give_spare(b: Box<psyne_message_t>) {
    let _ = SPARES.try_with(move |s| {
        if let Ok(mut v) = s.try_borrow_mut() {
            if v.len() < SPARES_MAX {
                v.push(b);
            }
        }
    });
}

/// A reservation's send with a type its SINGLE channel refuses; the
/// reservation is kept.
#[cold]
#[inline(never)]
fn single_type_refused(msg_type: u32) -> Error {
    Error::invalid(format!(
        "message type {msg_type} on a SINGLE channel: SINGLE channels carry no type (send with 0, or open the channel as MULTI); the reservation is kept"
    ))
}

fn kind_name(k: &MessageKind) -> &'static str {
    match k {
        MessageKind::Reservation(_) => "a reservation",
        MessageKind::Received(_) => "a received message",
        MessageKind::Borrowed { .. } => "a receive callback's message",
        MessageKind::Reserved(_) => "a producer's reservation",
        MessageKind::Viewed(_) => "a consumer's received message",
        MessageKind::Vacant => "no message",
    }
}

/// Body of the reserve functions.
///
/// # Safety
/// As for `psyne_message_reserve_cancellable`.
unsafe fn reserve(
    ch: *mut psyne_channel_t,
    size: usize,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
    msg: *mut *mut psyne_message_t,
) -> Result<()> {
    not_null(msg, "msg")?;
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { msg.write(std::ptr::null_mut()) };
    // SAFETY: caller contract.
    let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
    // SAFETY: caller contract.
    let token = unsafe { psyne_cancel_t::for_wait(timeout_ms, cancel) }?;
    let guard = h.channel.reserve_owned(
        size,
        wait_limit(timeout_ms, token.as_ref(), h.channel.spin()).as_ref(),
    )?;
    // SAFETY: as above.
    unsafe { msg.write(psyne_message_t::boxed(MessageKind::Reservation(guard))) };
    Ok(())
}

/// Reserves `size` bytes inside the ring for a zero-copy send; never blocks
/// (a full ring is `PSYNE_ERROR_CHANNEL_FULL` at once). `size` above
/// `psyne_channel_get_max_message_size` is `PSYNE_ERROR_INVALID_ARGUMENT`.
///
/// Fill the bytes from `psyne_message_get_data`, then `psyne_message_send` or
/// `psyne_message_cancel` (each frees `*msg`). On SPSC/SPMC channels the
/// reservation holds the sending side: another send or reserve on the channel
/// is `PSYNE_ERROR_INVALID_ARGUMENT` until it is sent or cancelled.
/// On failure `*msg` is set to NULL (unless `msg` itself is NULL).
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `msg` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_message_reserve(
    ch: *mut psyne_channel_t,
    size: usize,
    msg: *mut *mut psyne_message_t,
) -> psyne_error_t {
    run("psyne_message_reserve", || {
        // SAFETY: forwarded caller contract; no token.
        unsafe { reserve(ch, size, 0, std::ptr::null_mut(), msg) }
    })
}

/// Like `psyne_message_reserve`, waiting up to `timeout_ms` milliseconds for
/// room (`PSYNE_ERROR_TIMEOUT`; 0 = do not wait; `PSYNE_WAIT_FOREVER` = no
/// limit). A stop of the channel ends the wait with
/// `PSYNE_ERROR_CHANNEL_STOPPED`.
///
/// # Safety
/// As for `psyne_message_reserve`.
#[no_mangle]
pub unsafe extern "C" fn psyne_message_reserve_timeout(
    ch: *mut psyne_channel_t,
    size: usize,
    timeout_ms: u32,
    msg: *mut *mut psyne_message_t,
) -> psyne_error_t {
    run("psyne_message_reserve_timeout", || {
        // SAFETY: forwarded caller contract; no token.
        unsafe { reserve(ch, size, timeout_ms, std::ptr::null_mut(), msg) }
    })
}

/// Like `psyne_message_reserve_timeout`; a `psyne_cancel_trigger` on `cancel`
/// (NULL: none) ends the wait with `PSYNE_ERROR_CANCELLED`. With
/// `timeout_ms` 0 the call does not wait and does not consult `cancel`.
///
/// # Safety
/// As for `psyne_message_reserve`; `cancel` must be NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn psyne_message_reserve_cancellable(
    ch: *mut psyne_channel_t,
    size: usize,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
    msg: *mut *mut psyne_message_t,
) -> psyne_error_t {
    run("psyne_message_reserve_cancellable", || {
        // SAFETY: forwarded caller contract.
        unsafe { reserve(ch, size, timeout_ms, cancel, msg) }
    })
}

/// Writes the message's bytes and length to `*data` and `*size`.
///
/// For a reservation the bytes are writable ring memory (fill them before
/// `psyne_message_send`). For a received message, and for a receive callback's
/// message, they are a read-only view: writing to them is undefined
/// behaviour. The pointer is valid until the message is sent, cancelled or
/// released (a callback's message: until the callback returns). For a
/// 0-byte message `*data` is a non-NULL pointer that must not be dereferenced.
///
/// # Safety
/// `msg` must be NULL or a live message; `data` and `size` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_message_get_data(
    msg: *mut psyne_message_t,
    data: *mut *mut c_void,
    size: *mut usize,
) -> psyne_error_t {
    run("psyne_message_get_data", || {
        // SAFETY: caller contract.
        let m = unsafe { psyne_message_t::from_ptr(msg) }?;
        not_null(data, "data")?;
        not_null(size, "size")?;
        let (p, len) = match &mut m.kind {
            MessageKind::Reservation(g) => {
                let b = g.bytes_mut();
                (b.as_mut_ptr(), b.len())
            }
            MessageKind::Received(g) => (g.bytes().as_ptr().cast_mut(), g.bytes().len()),
            MessageKind::Borrowed { data: d, len: l } => (d.cast_mut(), *l),
            MessageKind::Reserved(g) => (g.as_mut_ptr(), g.len()),
            MessageKind::Viewed(g) => (g.as_ptr().cast_mut(), g.len()),
            MessageKind::Vacant => unreachable!("a vacant slot's header is dead"),
        };
        // SAFETY: both checked non-NULL; the caller provides writable storage.
        unsafe {
            data.write(p.cast::<c_void>());
            size.write(len);
        }
        Ok(())
    })
}

/// Publishes a reservation as one message of type `msg_type` and frees
/// `msg`.
///
/// On a `PSYNE_TYPE_SINGLE` channel a non-zero `msg_type` is
/// `PSYNE_ERROR_INVALID_ARGUMENT` and `msg` is NOT consumed (send again with 0,
/// or cancel it). `msg` that is not a reservation (a received or callback
/// message) is `PSYNE_ERROR_INVALID_ARGUMENT` and is not consumed either.
///
/// # Safety
/// `msg` must be NULL or a live message.
#[no_mangle]
pub unsafe extern "C" fn psyne_message_send(
    msg: *mut psyne_message_t,
    msg_type: u32,
) -> psyne_error_t {
    run("psyne_message_send", || {
        // SAFETY: caller contract.
        let m = unsafe { psyne_message_t::from_ptr(msg) }?;
        if let Some(g) = m.take_reserved(msg_type) {
            return g.send(msg_type); // a side handle's: the hot path
        }
        let channel_type = match &m.kind {
            MessageKind::Reservation(g) => g.channel_type(),
            MessageKind::Reserved(g) => g.channel_type(),
            other => {
                return Err(Error::invalid(format!(
                    "msg is {}, not a reservation: only reservations can be sent",
                    kind_name(other)
                )))
            }
        };
        if channel_type == ChannelType::Single && msg_type != 0 {
            return Err(single_type_refused(msg_type));
        }
        // SAFETY: checked live above, and not a callback's message.
        // (A side handle's reservation reaches here only with a type its
        // SINGLE channel refuses, above.)
        match unsafe { psyne_message_t::consume(msg) } {
            MessageKind::Reservation(g) => g.send(msg_type),
            _ => unreachable!("checked to be a channel handle's reservation"),
        }
    })
}

/// Gives a reservation's space back without sending and frees `msg`. `msg`
/// that is not a reservation is `PSYNE_ERROR_INVALID_ARGUMENT` (not consumed).
///
/// # Safety
/// `msg` must be NULL or a live message.
#[no_mangle]
pub unsafe extern "C" fn psyne_message_cancel(msg: *mut psyne_message_t) -> psyne_error_t {
    run("psyne_message_cancel", || {
        // SAFETY: caller contract.
        let m = unsafe { psyne_message_t::from_ptr(msg) }?;
        if !matches!(
            m.kind,
            MessageKind::Reservation(_) | MessageKind::Reserved(_)
        ) {
            return Err(Error::invalid(format!(
                "msg is {}, not a reservation: use psyne_message_release for received messages",
                kind_name(&m.kind)
            )));
        }
        // SAFETY: checked live above, and not a callback's message.
        drop(unsafe { psyne_message_t::consume(msg) });
        Ok(())
    })
}

/// Body of the receive functions.
///
/// # Safety
/// As for `psyne_message_receive_cancellable`.
unsafe fn receive(
    ch: *mut psyne_channel_t,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
    msg: *mut *mut psyne_message_t,
    msg_type: *mut u32,
) -> Result<()> {
    not_null(msg, "msg")?;
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { msg.write(std::ptr::null_mut()) };
    // SAFETY: caller contract.
    let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
    not_null(msg_type, "type")?;
    // SAFETY: caller contract.
    let token = unsafe { psyne_cancel_t::for_wait(timeout_ms, cancel) }?;
    let guard = h
        .channel
        .recv_owned(wait_limit(timeout_ms, token.as_ref(), h.channel.spin()).as_ref())?;
    let t = guard.msg_type();
    // SAFETY: both checked non-NULL above.
    unsafe {
        msg_type.write(t);
        msg.write(psyne_message_t::boxed(MessageKind::Received(guard)));
    }
    Ok(())
}

/// Takes the next message as a zero-copy view; never blocks (an empty
/// channel is `PSYNE_ERROR_NO_MESSAGE`; a stopped and drained one
/// `PSYNE_ERROR_CHANNEL_STOPPED`). Writes the handle to `*msg` and the message
/// type to `*msg_type` (0 on SINGLE channels). Read the bytes with
/// `psyne_message_get_data`, then free the message with
/// `psyne_message_release`. On SPSC/MPSC channels a held message holds the
/// receiving side: another receive is `PSYNE_ERROR_INVALID_ARGUMENT` until it
/// is released. On failure `*msg` is set to NULL (unless `msg` itself is NULL).
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `msg` and `msg_type` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_message_receive(
    ch: *mut psyne_channel_t,
    msg: *mut *mut psyne_message_t,
    msg_type: *mut u32,
) -> psyne_error_t {
    run("psyne_message_receive", || {
        // SAFETY: forwarded caller contract; no token.
        unsafe { receive(ch, 0, std::ptr::null_mut(), msg, msg_type) }
    })
}

/// Like `psyne_message_receive`, waiting up to `timeout_ms` milliseconds
/// (`PSYNE_ERROR_TIMEOUT`; 0 = do not wait, `PSYNE_ERROR_NO_MESSAGE`;
/// `PSYNE_WAIT_FOREVER` = no limit).
///
/// # Safety
/// As for `psyne_message_receive`.
#[no_mangle]
pub unsafe extern "C" fn psyne_message_receive_timeout(
    ch: *mut psyne_channel_t,
    timeout_ms: u32,
    msg: *mut *mut psyne_message_t,
    msg_type: *mut u32,
) -> psyne_error_t {
    run("psyne_message_receive_timeout", || {
        // SAFETY: forwarded caller contract; no token.
        unsafe { receive(ch, timeout_ms, std::ptr::null_mut(), msg, msg_type) }
    })
}

/// Like `psyne_message_receive_timeout`; a `psyne_cancel_trigger` on `cancel`
/// (NULL: none) ends the wait with `PSYNE_ERROR_CANCELLED`. With
/// `timeout_ms` 0 the call does not wait and does not consult `cancel`.
///
/// # Safety
/// As for `psyne_message_receive`; `cancel` must be NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn psyne_message_receive_cancellable(
    ch: *mut psyne_channel_t,
    timeout_ms: u32,
    cancel: *mut psyne_cancel_t,
    msg: *mut *mut psyne_message_t,
    msg_type: *mut u32,
) -> psyne_error_t {
    run("psyne_message_receive_cancellable", || {
        // SAFETY: forwarded caller contract.
        unsafe { receive(ch, timeout_ms, cancel, msg, msg_type) }
    })
}

/// Frees a received message (its space in the ring becomes free). `msg` that
/// is a reservation is `PSYNE_ERROR_INVALID_ARGUMENT` (use
/// `psyne_message_send` or `psyne_message_cancel`), as is a receive callback's
/// message (the dispatcher releases it when the callback returns); neither is
/// consumed.
///
/// # Safety
/// `msg` must be NULL or a live message.
#[no_mangle]
pub unsafe extern "C" fn psyne_message_release(msg: *mut psyne_message_t) -> psyne_error_t {
    run("psyne_message_release", || {
        // SAFETY: caller contract.
        let m = unsafe { psyne_message_t::from_ptr(msg) }?;
        if m.release_viewed() {
            return Ok(()); // a side handle's: the hot path
        }
        match &m.kind {
            MessageKind::Received(_) => {}
            MessageKind::Reservation(_) | MessageKind::Reserved(_) => {
                return Err(Error::invalid(
                    "msg is a reservation: use psyne_message_send or psyne_message_cancel",
                ))
            }
            MessageKind::Borrowed { .. } => {
                return Err(Error::invalid(
                    "msg is a receive callback's message: it is released when the callback returns",
                ))
            }
            MessageKind::Viewed(_) => unreachable!("released above"),
            MessageKind::Vacant => unreachable!("a vacant slot's header is dead"),
        }
        // SAFETY: checked live above, and not a callback's message.
        drop(unsafe { psyne_message_t::consume(msg) });
        Ok(())
    })
}
