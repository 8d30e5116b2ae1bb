//! Channel handles: create/destroy, control, metrics, receive callback.

use super::handle::{self, Handle, Header, InCall};
use super::message::{psyne_message_t, MessageKind};
use super::{
    not_null, psyne_compression_config_t, psyne_error_t, psyne_extended_metrics_t, psyne_metrics_t,
    run,
};
use crate::config::{ChannelType, CompressionConfig, CompressionType, Mode};
use crate::error::{Error, Result};
use crate::Channel;
use std::ffi::{c_char, c_void, CStr};

/// A channel handle (opaque). Created by `psyne_channel_create` /
/// `psyne_channel_create_compressed`, freed by `psyne_channel_destroy`.
pub struct psyne_channel_t {
    header: Header,
    pub(super) channel: Channel,
}

impl Handle for psyne_channel_t {
    const MAGIC: u64 = 0x7073_796e_6543_484e; // "psyneCHN"
    const WHAT: &'static str = "psyne_channel_t";
    const PROCESS_BOUND: bool = true;
    const SHARED: bool = true;

    fn header(p: *const Self) -> *const Header {
        // SAFETY: computes a field address without reading through `p`.
        unsafe { std::ptr::addr_of!((*p).header) }
    }
}

impl psyne_channel_t {
    /// Checks a channel argument (not NULL, not detectably destroyed, opened
    /// in this process) and holds it for the rest of the call:
    /// `psyne_channel_destroy` waits for the returned guard.
    ///
    /// # Safety
    /// `p` is NULL or a pointer returned by `psyne_channel_create*`; if it was
    /// destroyed the read of the magic word is a use after free that is only
    /// caught where the memory was not reused.
    #[inline(always)]
    pub(super) unsafe fn from_ptr<'a>(
        p: *const psyne_channel_t,
        name: &str,
    ) -> Result<InCall<'a, Self>> {
        // SAFETY: the caller's contract.
        unsafe { handle::enter(p, name) }
    }
}

/// Reads a C string argument as UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
pub(super) unsafe fn str_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    not_null(p, name)?;
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Error::invalid(format!("{name} is not valid UTF-8")))
}

/// Writes a result through an out-pointer argument.
///
/// # Safety
/// `out` is non-NULL (checked by the caller) and writable (the C caller's
/// contract).
unsafe fn write_out<T>(out: *mut T, value: T) {
    // SAFETY: the function's contract.
    unsafe { out.write(value) };
}

/// Reads a compression config field by field, without ever forming a Rust
/// value from bytes that might be invalid for it (`bool`).
///
/// # Safety
/// `cfg` is non-NULL and points to a readable `psyne_compression_config_t`.
unsafe fn read_compression(cfg: *const psyne_compression_config_t) -> Result<CompressionConfig> {
    // SAFETY: (all four reads) `cfg` points to a readable struct; each field is
    // read through its own address as a plain integer type; `bool` is read as
    // the byte it occupies.
    let (kind, level, min_size, checksum) = unsafe {
        (
            std::ptr::addr_of!((*cfg).r#type).read(),
            std::ptr::addr_of!((*cfg).level).read(),
            std::ptr::addr_of!((*cfg).min_size_threshold).read(),
            std::ptr::addr_of!((*cfg).enable_checksum)
                .cast::<u8>()
                .read(),
        )
    };
    Ok(CompressionConfig {
        kind: CompressionType::from_raw(i64::from(kind))?,
        level,
        min_size_threshold: min_size,
        enable_checksum: checksum != 0,
    })
}

/// Shared body of the two create functions.
///
/// # Safety
/// As for `psyne_channel_create_compressed`.
unsafe fn create(
    uri: *const c_char,
    buffer_size: usize,
    mode: i32,
    channel_type: i32,
    cfg: *const psyne_compression_config_t,
    out: *mut *mut psyne_channel_t,
) -> Result<()> {
    not_null(out, "out")?;
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { write_out(out, std::ptr::null_mut()) };
    // SAFETY: the caller passes NULL or a NUL-terminated string.
    let uri = unsafe { str_arg(uri, "uri") }?;
    let mode = Mode::from_raw(i64::from(mode))?;
    let channel_type = ChannelType::from_raw(i64::from(channel_type))?;
    let mut builder = Channel::builder(uri)
        .buffer_size(buffer_size)
        .mode(mode)
        .channel_type(channel_type);
    if !cfg.is_null() {
        // SAFETY: non-NULL; the caller passes a readable config.
        builder = builder.compression(unsafe { read_compression(cfg) }?);
    }
    let channel = builder.build()?;
    let handle = Box::new(psyne_channel_t {
        header: Header::new::<psyne_channel_t>(),
        channel,
    });
    // SAFETY: as above.
    unsafe { write_out(out, Box::into_raw(handle)) };
    Ok(())
}

/// Opens a channel on `uri` with a ring of `buffer_size` bytes (rounded up to
/// a power of two, at least 64).
///
/// `buffer_size` 0 on `memory://` (and `ipc://`) attaches to an existing channel
/// of that name and adopts its size, mode and type (the error names the
/// channel when none exists). `mode` is a `PSYNE_MODE_*` value and
/// `channel_type` a `PSYNE_TYPE_*` value; anything else is
/// `PSYNE_ERROR_INVALID_ARGUMENT`, as are a malformed URI, an unknown scheme or
/// option. Transports not built yet return `PSYNE_ERROR_UNSUPPORTED`.
/// On success `*out` receives the handle; on failure it is set to NULL.
///
/// # Safety
/// `uri` must be NULL or a NUL-terminated string; `out` must be NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_create(
    uri: *const c_char,
    buffer_size: usize,
    mode: super::psyne_channel_mode_t,
    channel_type: super::psyne_channel_type_t,
    out: *mut *mut psyne_channel_t,
) -> psyne_error_t {
    run("psyne_channel_create", || {
        // SAFETY: forwarded caller contract.
        unsafe { create(uri, buffer_size, mode, channel_type, std::ptr::null(), out) }
    })
}

/// Like `psyne_channel_create`, with compression and checksum settings for
/// what this handle sends, on every transport. `cfg` may be NULL (none).
/// Each message is compressed only when it is at least
/// `min_size_threshold` bytes and gets smaller; `level` is Zstd's (-7..=22,
/// 0 = zstd's default); `enable_checksum` puts a CRC32C on every message.
/// Receivers need no settings: any handle decodes any message. An
/// out-of-range `cfg->type` or `level` is `PSYNE_ERROR_INVALID_ARGUMENT`,
/// as is a compression setting given both in `cfg` and in the URI query.
///
/// # Safety
/// As for `psyne_channel_create`; `cfg` must be NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_create_compressed(
    uri: *const c_char,
    buffer_size: usize,
    mode: super::psyne_channel_mode_t,
    channel_type: super::psyne_channel_type_t,
    cfg: *const psyne_compression_config_t,
    out: *mut *mut psyne_channel_t,
) -> psyne_error_t {
    run("psyne_channel_create_compressed", || {
        // SAFETY: forwarded caller contract.
        unsafe { create(uri, buffer_size, mode, channel_type, cfg, out) }
    })
}

/// Destroys a channel handle. NULL is a no-op (`PSYNE_OK`).
///
/// The channel itself lives on while other handles (or not yet
/// sent/released messages) use it; this handle's receive callback is turned
/// off first (waiting for a running call, unless called from inside it).
/// Calls that other threads are making on `ch` right now finish first:
/// destroy waits for them to return, then frees the handle, so
/// `psyne_channel_stop` followed at once by destroy is safe while other
/// threads are still returning from their calls. Destroying does not stop
/// the channel and does not end waits: a call blocked on `ch` keeps
/// destroy waiting until its timeout, its `psyne_cancel_t`, or a
/// `psyne_channel_stop` ends it. Calls made after destroy returned are uses
/// after free, detected where cheap (`PSYNE_ERROR_INVALID_ARGUMENT`).
///
/// # Safety
/// `ch` must be NULL or a handle from `psyne_channel_create*`, not passed to
/// psyne after this call returns.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_destroy(ch: *mut psyne_channel_t) -> psyne_error_t {
    run("psyne_channel_destroy", || {
        // A handle inherited through fork is freed too: dropping it in another
        // process is inert (see crate::fork).
        // SAFETY: caller contract.
        drop(unsafe { handle::free(ch, "ch") }?);
        Ok(())
    })
}

/// Stops the channel (for every handle on it): wakes all waiting calls;
/// sends then fail with `PSYNE_ERROR_CHANNEL_STOPPED`; receivers first drain
/// what is queued, then get `PSYNE_ERROR_CHANNEL_STOPPED`.
///
/// # Safety
/// `ch` must be NULL or a live channel handle.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_stop(ch: *mut psyne_channel_t) -> psyne_error_t {
    run("psyne_channel_stop", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        h.channel.stop();
        Ok(())
    })
}

/// Writes whether the channel was stopped to `*stopped`.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `stopped` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_is_stopped(
    ch: *mut psyne_channel_t,
    stopped: *mut bool,
) -> psyne_error_t {
    run("psyne_channel_is_stopped", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        not_null(stopped, "stopped")?;
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { write_out(stopped, h.channel.is_stopped()) };
        Ok(())
    })
}

/// Copies the URI the handle was opened with into `buf` as a NUL-terminated
/// string. If `cap` is smaller than the URI plus its NUL, returns
/// `PSYNE_ERROR_INVALID_ARGUMENT` (the detail message names the size needed)
/// and writes nothing.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `buf` NULL or writable for
/// `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_get_uri(
    ch: *mut psyne_channel_t,
    buf: *mut c_char,
    cap: usize,
) -> psyne_error_t {
    run("psyne_channel_get_uri", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        // SAFETY: caller contract on `buf` / `cap`.
        unsafe { copy_c_string(h.channel.uri(), "URI", buf, cap) }
    })
}

/// Copies `s` and a terminating NUL into `buf`, or says how much room it needs.
///
/// # Safety
/// `buf` NULL or writable for `cap` bytes.
unsafe fn copy_c_string(s: &str, what: &str, buf: *mut c_char, cap: usize) -> crate::Result<()> {
    not_null(buf, "buf")?;
    let bytes = s.as_bytes();
    let needed = bytes.len() + 1;
    if cap < needed {
        return Err(Error::invalid(format!(
            "buffer of {cap} bytes is too small for the {what}: {needed} bytes needed (including the terminating NUL)"
        )));
    }
    // SAFETY: `buf` is writable for `cap >= needed` bytes and cannot overlap
    // the Rust-owned string.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
        buf.add(bytes.len()).write(0);
    }
    Ok(())
}

/// Writes the channel's counters to `*out`.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_get_metrics(
    ch: *mut psyne_channel_t,
    out: *mut psyne_metrics_t,
) -> psyne_error_t {
    run("psyne_channel_get_metrics", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        not_null(out, "out")?;
        let m = h.channel.metrics();
        let c = psyne_metrics_t {
            messages_sent: m.messages_sent,
            bytes_sent: m.bytes_sent,
            messages_received: m.messages_received,
            bytes_received: m.bytes_received,
            send_blocks: m.send_blocks,
            receive_blocks: m.receive_blocks,
        };
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { write_out(out, c) };
        Ok(())
    })
}

/// Turns counting on or off for the channel (on by default).
///
/// # Safety
/// `ch` must be NULL or a live channel handle.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_enable_metrics(
    ch: *mut psyne_channel_t,
    enable: bool,
) -> psyne_error_t {
    run("psyne_channel_enable_metrics", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        h.channel.set_metrics_enabled(enable);
        Ok(())
    })
}

/// Sets every counter of the channel to zero.
///
/// # Safety
/// `ch` must be NULL or a live channel handle.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_reset_metrics(ch: *mut psyne_channel_t) -> psyne_error_t {
    run("psyne_channel_reset_metrics", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        h.channel.reset_metrics();
        Ok(())
    })
}

/// Writes the ring size in bytes (after rounding) to `*size`.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `size` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_get_buffer_size(
    ch: *mut psyne_channel_t,
    size: *mut usize,
) -> psyne_error_t {
    run("psyne_channel_get_buffer_size", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        not_null(size, "size")?;
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { write_out(size, h.channel.buffer_size()) };
        Ok(())
    })
}

/// Writes the largest message the channel accepts to `*size`: half the ring
/// minus 16 bytes (so that an empty ring always has room for it). Larger
/// sends and reservations are `PSYNE_ERROR_INVALID_ARGUMENT`.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `size` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_get_max_message_size(
    ch: *mut psyne_channel_t,
    size: *mut usize,
) -> psyne_error_t {
    run("psyne_channel_get_max_message_size", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        not_null(size, "size")?;
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { write_out(size, h.channel.max_message_size()) };
        Ok(())
    })
}

/// A receive callback: called on the channel's dispatcher thread for every
/// message received through the handle. `msg` is valid only during the call:
/// `psyne_message_get_data` works on it (its bytes are read-only);
/// `psyne_message_release`, `_send` and `_cancel` on it return
/// `PSYNE_ERROR_INVALID_ARGUMENT` (the message is released when the callback
/// returns). `user` is the pointer given to
/// `psyne_channel_set_receive_callback`.
pub type psyne_receive_callback_t =
    Option<unsafe extern "C" fn(msg: *mut psyne_message_t, msg_type: u32, user: *mut c_void)>;

/// The user pointer travels to the dispatcher thread; the C caller promised
/// (see `psyne_channel_set_receive_callback`) that this is fine.
struct UserPtr(*mut c_void);
// SAFETY: the documented contract of psyne_channel_set_receive_callback makes
// the caller responsible for `user` being usable from the dispatcher thread.
unsafe impl Send for UserPtr {}
impl UserPtr {
    fn get(&self) -> *mut c_void {
        self.0
    }
}

/// Sets (or, with `cb` NULL, turns off) the receive callback of this handle.
///
/// While set, a dispatcher thread receives every message and calls
/// `cb(msg, type, user)` with it; it is a receiver like any other (on SPSC and
/// MPSC channels it holds the receiving side, so other receives through any
/// handle are refused, and setting the callback fails with
/// `PSYNE_ERROR_INVALID_ARGUMENT` while another receive is in progress or a
/// received message is held). Setting a new callback replaces the old one.
/// Turning it off waits for a running call to finish (unless called from
/// inside the callback). The callback runs on the dispatcher thread, not the
/// caller's: `user` must be usable from there, and must stay valid until the
/// callback is turned off or the handle destroyed.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `cb` must be NULL or a function
/// that is safe to call from another thread with `user`.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_set_receive_callback(
    ch: *mut psyne_channel_t,
    cb: psyne_receive_callback_t,
    user: *mut c_void,
) -> psyne_error_t {
    run("psyne_channel_set_receive_callback", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        let Some(f) = cb else {
            return h.channel.set_receive_callback(None);
        };
        let user = UserPtr(user);
        let callback = move |data: &[u8], msg_type: u32| {
            let mut msg = psyne_message_t::new(MessageKind::Borrowed {
                data: data.as_ptr(),
                len: data.len(),
            });
            // SAFETY: `f` is a C function that the caller promised is callable
            // from this thread with `user`; `msg` lives on this stack frame for
            // the whole call and `data` outlives it.
            unsafe { f(&mut msg, msg_type, user.get()) };
            msg.kill();
        };
        h.channel.set_receive_callback(Some(Box::new(callback)))
    })
}

/// Writes all of the channel's counters to `*out`: the six of
/// `psyne_channel_get_metrics`, then wire bytes, compression, checksum
/// failures, refused frames, connections, peers, depth and high-water mark.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_get_extended_metrics(
    ch: *mut psyne_channel_t,
    out: *mut psyne_extended_metrics_t,
) -> psyne_error_t {
    run("psyne_channel_get_extended_metrics", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        not_null(out, "out")?;
        let m = h.channel.metrics();
        let c = psyne_extended_metrics_t {
            messages_sent: m.messages_sent,
            bytes_sent: m.bytes_sent,
            messages_received: m.messages_received,
            bytes_received: m.bytes_received,
            send_blocks: m.send_blocks,
            receive_blocks: m.receive_blocks,
            wire_bytes_sent: m.wire_bytes_sent,
            wire_bytes_received: m.wire_bytes_received,
            messages_compressed: m.messages_compressed,
            checksum_failures: m.checksum_failures,
            frames_refused: m.frames_refused,
            connects: m.connects,
            reconnects: m.reconnects,
            peers: m.peers,
            queued_bytes: m.queued_bytes,
            high_water_bytes: m.high_water_bytes,
        };
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { write_out(out, c) };
        Ok(())
    })
}

/// Writes the channel's mode (a `PSYNE_MODE_*` value) to `*mode`: the mode it
/// was created with, also when this handle attached with buffer size 0.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `mode` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_get_mode(
    ch: *mut psyne_channel_t,
    mode: *mut super::psyne_channel_mode_t,
) -> psyne_error_t {
    run("psyne_channel_get_mode", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        not_null(mode, "mode")?;
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { write_out(mode, h.channel.mode() as super::psyne_channel_mode_t) };
        Ok(())
    })
}

/// Writes a socket end's address, NUL-terminated, to `buf`: `HOST:PORT` of
/// a tcp listener (with the port the system chose for port 0), the path of
/// a unix listener, the address a connector connects to.
/// `PSYNE_ERROR_UNSUPPORTED` on memory:// and ipc:// channels;
/// `PSYNE_ERROR_INVALID_ARGUMENT` (saying the size needed) when `cap` is
/// too small.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `buf` NULL or writable for
/// `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_get_local_address(
    ch: *mut psyne_channel_t,
    buf: *mut c_char,
    cap: usize,
) -> psyne_error_t {
    run("psyne_channel_get_local_address", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        let addr = h.channel.local_addr().ok_or_else(|| {
            Error::Unsupported("memory:// and ipc:// channels have no socket address".into())
        })?;
        // SAFETY: caller contract on `buf` / `cap`.
        unsafe { copy_c_string(&addr, "address", buf, cap) }
    })
}

/// Writes the channel's type (`PSYNE_TYPE_SINGLE` or `PSYNE_TYPE_MULTI`) to
/// `*channel_type`, also when this handle attached with buffer size 0.
///
/// # Safety
/// `ch` must be NULL or a live channel handle; `channel_type` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn psyne_channel_get_type(
    ch: *mut psyne_channel_t,
    channel_type: *mut super::psyne_channel_type_t,
) -> psyne_error_t {
    run("psyne_channel_get_type", || {
        // SAFETY: caller contract.
        let h = unsafe { psyne_channel_t::from_ptr(ch, "ch") }?;
        not_null(channel_type, "channel_type")?;
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe {
            write_out(
                channel_type,
                h.channel.channel_type() as super::psyne_channel_type_t,
            )
        };
        Ok(())
    })
}
