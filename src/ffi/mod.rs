//! The C ABI of libpsyne (`docs/C_API.md`; the header `include/psyne.h` is
//! generated from this module by cbindgen — see `tests/header.rs`).
//!
//! Style (after rustls-ffi):
//!
//! * every function returns a [`psyne_error_t`] (or a pointer to a static or
//!   thread-local string) and runs its body inside `catch_unwind`, so no Rust
//!   panic crosses the boundary (a caught panic is `PSYNE_ERROR_UNKNOWN`);
//! * every pointer argument is checked: NULL is `PSYNE_ERROR_INVALID_ARGUMENT`
//!   with a detail message (`psyne_last_error_message`);
//! * enum-like arguments are plain `int32_t`s, range-checked with the core's
//!   `from_raw` (a Rust `enum` holding an invalid value would be undefined
//!   behaviour);
//! * handles are boxes of one kind (`handle.rs`): a magic word checked on
//!   entry and cleared when the handle is freed, so that use of a destroyed
//!   handle is detected where cheap (it stays undefined behaviour in
//!   general); calls in flight on a channel or token hold it, so freeing it
//!   waits for them.

#![allow(non_camel_case_types)]

mod cancel;
mod channel;
mod data;
mod handle;
mod message;
mod side;

pub use cancel::*;
pub use channel::*;
pub use data::*;
pub use message::*;
pub use side::*;

use crate::error::{Error, Result};
use crate::ring::wait::{CancelToken, WaitLimit};
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Result code of every libpsyne call that can fail.
///
/// The names and values are fixed (they match the established psyne C API).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum psyne_error_t {
    /// Success.
    PSYNE_OK = 0,
    /// A NULL pointer, a bad URI/option/enum value, a message larger than the
    /// channel's maximum, a receive buffer that is too small (the needed size
    /// is written to `*received`), a handle used in the wrong state (e.g.
    /// releasing a reservation), or use beyond the channel's mode (a second
    /// concurrent sender on an SPSC channel).
    PSYNE_ERROR_INVALID_ARGUMENT = -1,
    /// The ring could not be allocated.
    PSYNE_ERROR_OUT_OF_MEMORY = -2,
    /// A non-blocking send or reservation found no room.
    PSYNE_ERROR_CHANNEL_FULL = -3,
    /// A non-blocking receive found nothing queued.
    PSYNE_ERROR_NO_MESSAGE = -4,
    /// The channel was stopped (receivers first drain what is queued).
    PSYNE_ERROR_CHANNEL_STOPPED = -5,
    /// The feature is not built yet (a transport that has not landed), or
    /// not available on this transport.
    PSYNE_ERROR_UNSUPPORTED = -6,
    /// An operating-system error.
    PSYNE_ERROR_IO = -7,
    /// A waiting call ran out of time.
    PSYNE_ERROR_TIMEOUT = -8,
    /// A waiting call was cancelled through a `psyne_cancel_t`.
    PSYNE_ERROR_CANCELLED = -9,
    /// Internal error (a caught panic); the detail message says more.
    PSYNE_ERROR_UNKNOWN = -99,
}

/// Concurrency mode of a channel, passed as an integer and range-checked:
/// one of `PSYNE_MODE_SPSC`, `PSYNE_MODE_SPMC`, `PSYNE_MODE_MPSC`, `PSYNE_MODE_MPMC`.
pub type psyne_channel_mode_t = i32;
/// Single producer, single consumer.
pub const PSYNE_MODE_SPSC: psyne_channel_mode_t = 0;
/// Single producer, multiple consumers.
pub const PSYNE_MODE_SPMC: psyne_channel_mode_t = 1;
/// Multiple producers, single consumer.
pub const PSYNE_MODE_MPSC: psyne_channel_mode_t = 2;
/// Multiple producers, multiple consumers.
pub const PSYNE_MODE_MPMC: psyne_channel_mode_t = 3;

/// Channel type, passed as an integer and range-checked: `PSYNE_TYPE_SINGLE`
/// (messages carry no type: receivers see 0, sending a non-zero type is
/// `PSYNE_ERROR_INVALID_ARGUMENT`) or `PSYNE_TYPE_MULTI` (every message carries
/// a `uint32_t` type).
pub type psyne_channel_type_t = i32;
/// Messages carry no type (always 0).
pub const PSYNE_TYPE_SINGLE: psyne_channel_type_t = 0;
/// Every message carries a `uint32_t` type.
pub const PSYNE_TYPE_MULTI: psyne_channel_type_t = 1;

/// Compression algorithm, passed as an integer and range-checked. Only
/// `PSYNE_COMPRESSION_NONE` is built so far; the others are
/// `PSYNE_ERROR_UNSUPPORTED`.
pub type psyne_compression_type_t = i32;
/// No compression.
pub const PSYNE_COMPRESSION_NONE: psyne_compression_type_t = 0;
/// LZ4.
pub const PSYNE_COMPRESSION_LZ4: psyne_compression_type_t = 1;
/// Zstandard.
pub const PSYNE_COMPRESSION_ZSTD: psyne_compression_type_t = 2;
/// Snappy.
pub const PSYNE_COMPRESSION_SNAPPY: psyne_compression_type_t = 3;

/// A `timeout_ms` value meaning "wait without limit" (`UINT32_MAX`).
pub const PSYNE_WAIT_FOREVER: u32 = u32::MAX;

/// Per-channel counters (see `psyne_channel_get_metrics`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct psyne_metrics_t {
    /// Messages published.
    pub messages_sent: u64,
    /// Payload bytes published.
    pub bytes_sent: u64,
    /// Messages taken by receivers.
    pub messages_received: u64,
    /// Payload bytes taken by receivers.
    pub bytes_received: u64,
    /// Send or reserve calls that found the ring full.
    pub send_blocks: u64,
    /// Receive calls that found the ring empty.
    pub receive_blocks: u64,
}

/// All of a channel's counters (see `psyne_channel_get_extended_metrics`):
/// the six of `psyne_metrics_t` first, in the same order. Fields may be
/// appended in later versions, never inserted.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct psyne_extended_metrics_t {
    /// Messages published.
    pub messages_sent: u64,
    /// Payload bytes published.
    pub bytes_sent: u64,
    /// Messages taken by receivers.
    pub messages_received: u64,
    /// Payload bytes taken by receivers.
    pub bytes_received: u64,
    /// Send or reserve calls that found the ring full.
    pub send_blocks: u64,
    /// Receive calls that found the ring empty.
    pub receive_blocks: u64,
    /// Bytes written to the wire after compression, framing included (on
    /// memory/ipc: what messages took in the ring, the payload bytes unless
    /// compressed or checksummed).
    pub wire_bytes_sent: u64,
    /// Bytes read from the wire before decompression, framing included (on
    /// memory/ipc: what received messages took in the ring).
    pub wire_bytes_received: u64,
    /// Messages sent compressed (not those below the threshold or that did
    /// not get smaller).
    pub messages_compressed: u64,
    /// Received messages whose checksum did not match: never delivered
    /// (dropped on memory/ipc; the connection reset on sockets).
    pub checksum_failures: u64,
    /// Frames and handshakes refused (malformed, oversized, bad HELLO),
    /// messages too large for the peer, and (memory/ipc) encoded messages
    /// that did not decode.
    pub frames_refused: u64,
    /// Connections established.
    pub connects: u64,
    /// Connections a connector re-established.
    pub reconnects: u64,
    /// Peers connected now.
    pub peers: u64,
    /// Bytes queued now.
    pub queued_bytes: u64,
    /// Deepest queue seen since the last reset.
    pub high_water_bytes: u64,
}

/// Compression and integrity settings for `psyne_channel_create_compressed`.
///
/// Every field is read as plain bytes, so an out-of-range `type` is reported as
/// `PSYNE_ERROR_INVALID_ARGUMENT`, never undefined behaviour.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct psyne_compression_config_t {
    /// One of the `PSYNE_COMPRESSION_*` values.
    pub r#type: psyne_compression_type_t,
    /// Zstd level, -7..=22 (0 = zstd's default, 3); ignored by LZ4 and
    /// Snappy. Out of range: `PSYNE_ERROR_INVALID_ARGUMENT`.
    pub level: std::ffi::c_int,
    /// Messages smaller than this many bytes are sent uncompressed (as are
    /// those that do not get smaller).
    pub min_size_threshold: usize,
    /// Put a CRC32C of every message sent on it; receivers verify it (they
    /// always verify checksums, whatever their own settings).
    pub enable_checksum: bool,
}

// ---- errors ------------------------------------------------------------------

thread_local! {
    /// The text of the thread's last failure.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// The thread's last failure if it has no detail text (a failing
    /// poll: `NO_MESSAGE`, `CHANNEL_FULL`; a timeout, a cancel, a stop):
    /// the function's name and the code's, made into [`LAST_ERROR`]'s text
    /// only when `psyne_last_error_message` asks. A busy-polling caller
    /// fails millions of times a second; this cell has a constant initial
    /// value, so recording a failure is one store (no lazy initialisation,
    /// no destructor to register, no borrow flag, no formatting).
    static PENDING: Cell<Option<(&'static str, &'static str)>> = const { Cell::new(None) };
}

fn code_of(e: &Error) -> psyne_error_t {
    use psyne_error_t::*;
    match e.code() {
        -1 => PSYNE_ERROR_INVALID_ARGUMENT,
        -2 => PSYNE_ERROR_OUT_OF_MEMORY,
        -3 => PSYNE_ERROR_CHANNEL_FULL,
        -4 => PSYNE_ERROR_NO_MESSAGE,
        -5 => PSYNE_ERROR_CHANNEL_STOPPED,
        -6 => PSYNE_ERROR_UNSUPPORTED,
        -7 => PSYNE_ERROR_IO,
        -8 => PSYNE_ERROR_TIMEOUT,
        -9 => PSYNE_ERROR_CANCELLED,
        _ => PSYNE_ERROR_UNKNOWN,
    }
}

/// Stores the thread's detail message (interior NULs become spaces).
fn set_last_error(msg: String) {
    let mut bytes = msg.into_bytes();
    for b in bytes.iter_mut() {
        if *b == 0 {
            *b = b' ';
        }
    }
    let c = CString::new(bytes).unwrap_or_default();
    // During thread teardown the slot may be gone; then there is nobody to read it.
    let _ = PENDING.try_with(|p| p.set(None));
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut s) = slot.try_borrow_mut() {
            *s = c;
        }
    });
}

/// Records a failure without detail text, `"{func}: {what}"`, without
/// formatting it (see [`PENDING`]).
#[inline(always)]
fn set_last_error_code(func: &'static str, what: &'static str) {
    let _ = PENDING.try_with(|p| p.set(Some((func, what))));
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

thread_local! {
    /// Nesting depth of [`run`] on this thread: panics inside are caught and
    /// reported through the result code, so the panic hook keeps quiet.
    static CATCHING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Installs (once) a panic hook that prints nothing for panics [`run`]
/// catches — a library must not write to the host program's stderr — and
/// hands every other panic to the hook that was there before.
fn quiet_caught_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.try_with(|c| c.get()).unwrap_or(0) == 0 {
                previous(info);
            }
        }));
    });
}

/// Runs the body of an extern function: catches panics, turns errors into
/// codes and records the detail message.
///
/// Inlined into each extern function, with the failure paths out of line:
/// entering the library is paid on every call, and a zero-copy message
/// makes four.
#[inline(always)]
fn run(func: &'static str, body: impl FnOnce() -> Result<()>) -> psyne_error_t {
    quiet_caught_panics();
    // One look-up of the thread-local for both updates (in the shared
    // library each is a call into the dynamic loader). The `Cell` has no
    // destructor, so it lives as long as the thread and the pointer stays
    // valid for this call.
    let depth = CATCHING.try_with(|c| c as *const std::cell::Cell<u32>).ok();
    if let Some(c) = depth {
        // SAFETY: see above; this thread's own cell.
        let c = unsafe { &*c };
        c.set(c.get() + 1);
    }
    let code = run_caught(func, body);
    if let Some(c) = depth {
        // SAFETY: as above.
        let c = unsafe { &*c };
        c.set(c.get() - 1);
    }
    code
}

#[inline(always)]
fn run_caught(func: &'static str, body: impl FnOnce() -> Result<()>) -> psyne_error_t {
    // Recording the detail happens inside catch_unwind too (formatting runs
    // Display code).
    let guarded = catch_unwind(AssertUnwindSafe(|| match body() {
        Ok(()) => psyne_error_t::PSYNE_OK,
        // A receive that finds nothing, inline: a busy poller's loop rate
        // is how soon it notices a message.
        Err(Error::NoMessage) => {
            set_last_error_code(func, "no message");
            psyne_error_t::PSYNE_ERROR_NO_MESSAGE
        }
        Err(e) => failed(func, e),
    }));
    match guarded {
        Ok(code) => code,
        Err(payload) => panicked(func, payload),
    }
}

/// Records a caught panic (out of line, like [`failed`]).
#[cold]
#[inline(never)]
fn panicked(func: &'static str, payload: Box<dyn std::any::Any + Send>) -> psyne_error_t {
    set_last_error(format!(
        "{func}: internal error: caught a panic: {}",
        panic_text(payload.as_ref())
    ));
    // Dropping a payload can itself panic; keep that inside too.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    psyne_error_t::PSYNE_ERROR_UNKNOWN
}

/// Records a failure's detail and returns its code (out of line: the
/// calls that succeed do not carry it).
#[cold]
#[inline(never)]
fn failed(func: &'static str, e: Error) -> psyne_error_t {
    match e.plain_name() {
        Some(what) => set_last_error_code(func, what),
        None => set_last_error(format!("{func}: {e}")),
    }
    code_of(&e)
}

/// NULL check of a pointer argument. The error is built out of line, so
/// that the calls that pass it carry nothing of it (not even the name).
#[inline(always)]
fn not_null<T>(p: *const T, name: &str) -> Result<()> {
    if p.is_null() {
        Err(null_argument(name))
    } else {
        Ok(())
    }
}

#[cold]
#[inline(never)]
fn null_argument(name: &str) -> Error {
    Error::invalid(format!("{name} is NULL"))
}

/// The wait limit for a `timeout_ms` argument: 0 = do not wait (`None`, the
/// token is not consulted), `PSYNE_WAIT_FOREVER` = no deadline.
#[inline(always)]
fn wait_limit(
    timeout_ms: u32,
    cancel: Option<&CancelToken>,
    spin: Duration,
) -> Option<WaitLimit<'_>> {
    if timeout_ms == 0 {
        return None;
    }
    let timeout = if timeout_ms == PSYNE_WAIT_FOREVER {
        None
    } else {
        Some(Duration::from_millis(u64::from(timeout_ms)))
    };
    Some(WaitLimit {
        timeout,
        cancel,
        spin,
    })
}

/// Rejects lengths no C object can have (`slice::from_raw_parts` needs <= isize::MAX).
#[inline(always)]
fn check_len(len: usize, name: &str) -> Result<()> {
    if len > isize::MAX as usize {
        Err(impossible_length(len, name))
    } else {
        Ok(())
    }
}

#[cold]
#[inline(never)]
fn impossible_length(len: usize, name: &str) -> Error {
    Error::invalid(format!(
        "{name} of {len} bytes is larger than any object can be"
    ))
}

/// Static NUL-terminated string as a C pointer.
macro_rules! cstr {
    ($s:expr) => {
        concat!($s, "\0").as_ptr().cast::<std::ffi::c_char>()
    };
}

/// Runs the body of a function that returns a static string, inside
/// `catch_unwind` like every other body (a panic yields "").
fn static_str(body: impl FnOnce() -> *const c_char) -> *const c_char {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(cstr!(""))
}

// ---- library -------------------------------------------------------------------

/// Initialises the library. Optional: every function works without it. Cheap
/// and idempotent; always returns `PSYNE_OK`.
#[no_mangle]
pub extern "C" fn psyne_init() -> psyne_error_t {
    run("psyne_init", || Ok(()))
}

/// Counterpart of `psyne_init`. Optional, cheap and idempotent; it does not
/// destroy channels (use `psyne_channel_destroy` for each).
#[no_mangle]
pub extern "C" fn psyne_cleanup() {
    let _ = run("psyne_cleanup", || Ok(()));
}

/// The library version as a static NUL-terminated string (e.g. `"0.1.0"`).
#[no_mangle]
pub extern "C" fn psyne_version() -> *const c_char {
    static_str(|| cstr!(env!("CARGO_PKG_VERSION")))
}

/// A static NUL-terminated name for a result code (e.g. "channel full");
/// "unknown error code" for a value that is not a `psyne_error_t`.
#[no_mangle]
pub extern "C" fn psyne_error_string(err: i32) -> *const c_char {
    /// The names of `crate::error::CODES`, NUL-terminated, built once.
    static NAMES: std::sync::OnceLock<Vec<(i32, CString)>> = std::sync::OnceLock::new();
    static_str(|| {
        NAMES
            .get_or_init(|| {
                crate::error::CODES
                    .iter()
                    .map(|&(c, n)| (c, CString::new(n).unwrap_or_default()))
                    .collect()
            })
            .iter()
            .find(|(c, _)| *c == err)
            .map_or(cstr!("unknown error code"), |(_, n)| n.as_ptr())
    })
}

/// The detail text of the last failing call on this thread ("" when none).
///
/// Never NULL. The string is NUL-terminated and stays valid until the next
/// psyne call on this thread (copy it if you need it longer). Successful calls
/// leave it unchanged.
#[no_mangle]
pub extern "C" fn psyne_last_error_message() -> *const c_char {
    let r = catch_unwind(|| {
        let pending = PENDING.try_with(Cell::take).ok().flatten();
        LAST_ERROR
            .try_with(|slot| {
                let mut s = slot.try_borrow_mut().ok()?;
                if let Some((func, what)) = pending {
                    *s = CString::new(format!("{func}: {what}")).unwrap_or_default();
                }
                Some(s.as_ptr())
            })
            .ok()
            .flatten()
    });
    match r {
        Ok(Some(p)) => p,
        _ => cstr!(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: psyne_last_error_message never returns NULL and the string
        // stays valid until the next psyne call on this thread.
        unsafe { CStr::from_ptr(psyne_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_unknown_with_its_message() {
        let rc = run("psyne_test", || panic!("boom {}", 42));
        assert_eq!(rc, psyne_error_t::PSYNE_ERROR_UNKNOWN);
        assert!(last().contains("psyne_test"), "{}", last());
        assert!(last().contains("boom 42"), "{}", last());
        let rc = run("psyne_test", || std::panic::panic_any(7u8));
        assert_eq!(rc, psyne_error_t::PSYNE_ERROR_UNKNOWN);
    }

    #[test]
    fn every_error_maps_to_its_code() {
        let all = [
            Error::InvalidArgument("x".into()),
            Error::BufferTooSmall {
                capacity: 1,
                needed: 2,
            },
            Error::OutOfMemory("x".into()),
            Error::ChannelFull,
            Error::NoMessage,
            Error::ChannelStopped,
            Error::Unsupported("x".into()),
            Error::Io("x".into()),
            Error::Timeout,
            Error::Cancelled,
            Error::Unknown("x".into()),
        ];
        for e in all {
            assert_eq!(code_of(&e) as i32, e.code(), "{e}");
            let rc = run("psyne_test", || Err(e.clone()));
            assert_eq!(rc as i32, e.code());
            assert_eq!(last(), format!("psyne_test: {e}"));
            // SAFETY: psyne_error_string returns static NUL-terminated strings.
            let name = unsafe { CStr::from_ptr(psyne_error_string(e.code())) };
            assert_ne!(name.to_bytes(), b"unknown error code");
        }
    }

    #[test]
    fn the_code_table_is_the_c_enum() {
        use psyne_error_t::*;
        let c_enum = [
            PSYNE_OK,
            PSYNE_ERROR_INVALID_ARGUMENT,
            PSYNE_ERROR_OUT_OF_MEMORY,
            PSYNE_ERROR_CHANNEL_FULL,
            PSYNE_ERROR_NO_MESSAGE,
            PSYNE_ERROR_CHANNEL_STOPPED,
            PSYNE_ERROR_UNSUPPORTED,
            PSYNE_ERROR_IO,
            PSYNE_ERROR_TIMEOUT,
            PSYNE_ERROR_CANCELLED,
            PSYNE_ERROR_UNKNOWN,
        ];
        for ((code, name), e) in crate::error::CODES.iter().zip(c_enum) {
            assert_eq!(*code, e as i32);
            // SAFETY: psyne_error_string returns static NUL-terminated strings.
            let s = unsafe { CStr::from_ptr(psyne_error_string(*code)) };
            assert_eq!(s.to_str().unwrap(), *name);
        }
        // SAFETY: as above.
        let s = unsafe { CStr::from_ptr(psyne_error_string(-42)) };
        assert_eq!(s.to_str().unwrap(), "unknown error code");
    }

    #[test]
    fn success_keeps_the_last_message_and_nul_bytes_are_replaced() {
        set_last_error("a\0b".into());
        assert_eq!(last(), "a b");
        assert_eq!(run("psyne_test", || Ok(())), psyne_error_t::PSYNE_OK);
        assert_eq!(last(), "a b");
    }

    #[test]
    fn wait_limits() {
        assert!(wait_limit(0, None, Duration::ZERO).is_none());
        let t = CancelToken::new();
        assert!(wait_limit(0, Some(&t), Duration::ZERO).is_none());
        let forever = wait_limit(PSYNE_WAIT_FOREVER, Some(&t), Duration::ZERO).unwrap();
        assert!(forever.timeout.is_none() && forever.cancel.is_some());
        let some = wait_limit(1000, None, Duration::ZERO).unwrap();
        assert_eq!(some.timeout, Some(Duration::from_millis(1000)));
    }

    #[test]
    fn version_matches_the_crate() {
        // SAFETY: a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(psyne_version()) };
        assert_eq!(v.to_str().unwrap(), crate::VERSION);
    }
}
