//! `psyne._psyne`: the compiled half of the Python package `psyne`.
//!
//! The Python package (`python/psyne/`) re-exports these classes, adds the
//! enums, the exception hierarchy and the asyncio methods, and documents the
//! API for users. This module keeps four promises:
//!
//! - **No wait holds the GIL.** A call first tries without waiting (with the
//!   GIL: the common case costs no GIL hand-off); when it must wait, it
//!   waits with the GIL released, in slices of [`SLICE`], and between slices
//!   takes the GIL back to run signal handlers, so Ctrl-C interrupts it.
//!   Copies of at least [`LARGE_COPY`] bytes also run without the GIL.
//! - **No view outlives its bytes.** A [`MessageView`] or [`Reservation`]
//!   owns the guard of its message *and* a reference to the channel the
//!   guard borrows; after release/send/cancel, or once the channel is closed,
//!   its methods raise instead of touching the ring.
//! - **A buffer still exported keeps its bytes.** While a `memoryview` or
//!   numpy array obtained from a view or reservation is alive, `release`,
//!   `send` and `cancel` raise `BufferError` (as `memoryview.release` does);
//!   closing the channel then keeps that one message's bytes valid until the
//!   last export is gone.
//! - **No Rust panic reaches Python as an unwind**: PyO3 turns one into a
//!   `pyo3_runtime.PanicException` at every entry point, and this module
//!   validates every argument (timeouts, sizes, enum values) before using it
//!   so that none of its own code panics on bad input.

use parking_lot::{Mutex, RwLock};
use psyne::{CancelToken, ChannelType, CompressionConfig, CompressionType, Mode};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use std::os::raw::c_int;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Longest stretch a wait spends without the GIL before it checks for
/// signals (Ctrl-C) and for the handle being closed.
const SLICE: Duration = Duration::from_millis(50);

/// Copies at least this large run with the GIL released.
const LARGE_COPY: usize = 64 * 1024;

// ---- errors -------------------------------------------------------------

/// The exception classes live in `psyne/_errors.py` (they inherit from both
/// `psyne.Error` and a builtin such as `ValueError`, which is plain Python).
fn error_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || Ok(py.import("psyne._errors")?.unbind()))
        .map(|m| m.bind(py))
}

/// An instance of `psyne.<class_name>` carrying `message`.
fn raise(py: Python<'_>, class_name: &str, message: String) -> PyErr {
    match error_module(py).and_then(|m| m.getattr(class_name)) {
        Ok(class) => match class.call1((message,)) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        },
        Err(e) => e,
    }
}

/// The Python exception for a core error: the class of its C code, with
/// the core's detail text.
fn py_err(py: Python<'_>, e: psyne::Error) -> PyErr {
    let class = match e.code() {
        -1 => "InvalidArgument",
        -2 => "OutOfMemory",
        -3 => "ChannelFull",
        -4 => "NoMessage",
        -5 => "ChannelStopped",
        -6 => "Unsupported",
        -7 => "IoError",
        -8 => "Timeout",
        -9 => "Cancelled",
        _ => "Error",
    };
    raise(py, class, e.to_string())
}

fn invalid(py: Python<'_>, message: impl Into<String>) -> PyErr {
    raise(
        py,
        "InvalidArgument",
        format!("invalid argument: {}", message.into()),
    )
}

/// Use of a handle after `close()`.
fn closed_error(py: Python<'_>) -> PyErr {
    raise(
        py,
        "ChannelStopped",
        "channel stopped: this channel handle was closed".into(),
    )
}

/// A waiting call whose handle was closed by another thread meanwhile.
fn closed_while_waiting(py: Python<'_>) -> PyErr {
    raise(
        py,
        "Cancelled",
        "cancelled: the channel handle was closed while this call waited".into(),
    )
}

// ---- timeouts -----------------------------------------------------------

/// What a `timeout=` argument asks for.
#[derive(Clone, Copy)]
enum Wait {
    /// `0`: do not wait.
    No,
    /// `None`: no limit.
    Forever,
    /// A positive number of seconds.
    For(Duration),
}

fn parse_timeout(py: Python<'_>, timeout: Option<f64>) -> PyResult<Wait> {
    match timeout {
        None => Ok(Wait::Forever),
        Some(0.0) => Ok(Wait::No),
        Some(t) => match Duration::try_from_secs_f64(t) {
            Ok(d) => Ok(Wait::For(d)),
            Err(_) => Err(invalid(
                py,
                format!("timeout={t}: expected None, 0 or a positive, finite number of seconds"),
            )),
        },
    }
}

/// Runs `attempt(slice)` until it succeeds, fails with anything but a
/// timeout, or `limit` (None: no limit) runs out. Each attempt runs with the GIL released and
/// waits at most [`SLICE`]; between attempts the GIL is taken back to run
/// signal handlers (a `KeyboardInterrupt` propagates) and to see whether
/// `closed` (the handle was closed) became true.
fn wait_in_slices<T: Send>(
    py: Python<'_>,
    limit: Option<Duration>,
    closed: &dyn Fn() -> bool,
    mut attempt: impl FnMut(Duration) -> psyne::Result<T> + Send,
) -> PyResult<T> {
    let deadline = limit.map(|l| Instant::now() + l);
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
        };
        match py.detach(|| attempt(slice)) {
            Err(psyne::Error::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(raise(
                        py,
                        "Timeout",
                        format!(
                            "timeout: waited {:.3} s",
                            limit.unwrap_or_default().as_secs_f64()
                        ),
                    ));
                }
                py.check_signals()?;
                if closed() {
                    return Err(closed_while_waiting(py));
                }
            }
            Err(psyne::Error::Cancelled) if closed() => return Err(closed_while_waiting(py)),
            Err(e) => return Err(py_err(py, e)),
            Ok(v) => return Ok(v),
        }
    }
}

/// Waits up to `slice` until `room` contiguous bytes are free in the send
/// ring (by reserving them and giving them back at once).
fn wait_for_room(
    ch: &psyne::Channel,
    room: usize,
    slice: Duration,
    token: &CancelToken,
) -> psyne::Result<()> {
    ch.reserve_until(room, Some(slice), Some(token)).map(drop)
}

/// After [`wait_for_room`], another sender may have taken the space first
/// (MPSC/MPMC): that is one more round of waiting, not a failure.
fn full_is_timeout(e: psyne::Error) -> psyne::Error {
    match e {
        psyne::Error::ChannelFull => psyne::Error::Timeout,
        e => e,
    }
}

// ---- data in ------------------------------------------------------------

/// A contiguous buffer borrowed from a Python object (bytes, bytearray,
/// memoryview, a C-contiguous numpy array, ...) for the duration of a call.
/// Holding the export keeps the memory valid and unresizable while the GIL
/// is released.
struct Borrowed {
    view: ffi::Py_buffer,
}

impl Borrowed {
    fn get(obj: &Bound<'_, PyAny>) -> PyResult<Borrowed> {
        Borrowed::get_with(obj, ffi::PyBUF_SIMPLE)
    }

    /// A writable export (bytearray, a writable numpy array, ...).
    fn get_writable(obj: &Bound<'_, PyAny>) -> PyResult<Borrowed> {
        Borrowed::get_with(obj, ffi::PyBUF_SIMPLE | ffi::PyBUF_WRITABLE)
    }

    fn get_with(obj: &Bound<'_, PyAny>, flags: c_int) -> PyResult<Borrowed> {
        // SAFETY: a zeroed Py_buffer is a valid out-parameter; PyObject_GetBuffer
        // fills it on success and leaves it untouched (nothing to release) on failure.
        let mut view: ffi::Py_buffer = unsafe { std::mem::zeroed() };
        // SAFETY: obj is a live object (we hold the GIL through `obj`'s py).
        // PyBUF_SIMPLE asks for one contiguous run of bytes: an exporter that
        // cannot provide it (a non-contiguous array) raises BufferError, and
        // so does a read-only one asked for PyBUF_WRITABLE.
        let rc = unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut view, flags) };
        if rc != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        Ok(Borrowed { view })
    }

    fn bytes(&self) -> &[u8] {
        if self.view.len <= 0 || self.view.buf.is_null() {
            return &[];
        }
        // SAFETY: a PyBUF_SIMPLE export is `len` contiguous bytes at `buf`,
        // valid until PyBuffer_Release (in Drop), which `&self` outlives.
        unsafe { std::slice::from_raw_parts(self.view.buf as *const u8, self.view.len as usize) }
    }
}

impl Borrowed {
    /// The bytes of an export made by [`Borrowed::get_writable`], writable.
    #[allow(clippy::mut_from_ref)]
    fn bytes_mut(&self) -> &mut [u8] {
        debug_assert!(self.view.readonly == 0);
        if self.view.len <= 0 || self.view.buf.is_null() {
            return &mut [];
        }
        // SAFETY: a writable PyBUF_SIMPLE export is `len` contiguous writable
        // bytes at `buf`, valid until PyBuffer_Release; callers take this
        // slice once per call and hold no other reference into it.
        unsafe { std::slice::from_raw_parts_mut(self.view.buf as *mut u8, self.view.len as usize) }
    }
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        // Releasing an export may run Python code (the exporter's release
        // hook), so it needs the GIL; every `Borrowed` is dropped on a
        // thread that holds it (they never cross `detach`, only their bytes do).
        // SAFETY: the view was filled by a successful PyObject_GetBuffer.
        unsafe { ffi::PyBuffer_Release(&mut self.view) };
    }
}

// SAFETY: the export is only read (through `bytes`) while it is held; the
// bytes it points to belong to the exporting object, which the export keeps
// alive; releasing it happens with the GIL held (see Drop).
unsafe impl Send for Borrowed {}
// SAFETY: as above: shared access only reads the bytes.
unsafe impl Sync for Borrowed {}

// ---- data out -----------------------------------------------------------

/// A new `bytes` object holding a copy of `src` (the copy runs without the
/// GIL when it is large). `bytes` objects are created uninitialised and
/// filled once: no zeroing pass over large messages.
fn bytes_from<'py>(py: Python<'py>, src: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    if src.len() < LARGE_COPY {
        return Ok(PyBytes::new(py, src));
    }
    // SAFETY: PyBytes_FromStringAndSize(NULL, n) returns a new reference to
    // an uninitialised bytes object of n bytes (or NULL with an exception set).
    let obj =
        unsafe { ffi::PyBytes_FromStringAndSize(std::ptr::null(), src.len() as ffi::Py_ssize_t) };
    // SAFETY: a new reference or NULL, as above.
    let obj = unsafe { Bound::from_owned_ptr_or_err(py, obj)? };
    // SAFETY: the object is ours alone until returned; its buffer has src.len() bytes.
    let dst = unsafe { ffi::PyBytes_AsString(obj.as_ptr()) } as usize;
    let len = src.len();
    py.detach(|| {
        // SAFETY: dst has len writable bytes (see above) that nobody else can
        // see yet; src is a distinct buffer of len bytes.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, len) }
    });
    // SAFETY: the object was created as bytes.
    Ok(unsafe { obj.cast_into_unchecked() })
}

// ---- leases: guards that own their channel ---------------------------------

/// A guard together with the channel it borrows. The guard's `'static` is a
/// fiction confined to this struct: it really borrows `*channel`, which the
/// `Arc` keeps alive at a fixed address, and it is declared first, so it is
/// dropped (or moved out and consumed) before the `Arc`.
struct Leased<G> {
    guard: G,
    channel: Arc<psyne::Channel>,
}

/// Why a lease no longer gives access to its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    Released,
    Sent,
    Cancelled,
    /// The channel handle was closed (the guard may still be held for an
    /// export, see [`Lease::exports`]).
    Closed,
}

impl Ended {
    fn describe(self) -> &'static str {
        match self {
            Ended::Released => "this message view was released",
            Ended::Sent => "this reservation was sent",
            Ended::Cancelled => "this reservation was cancelled",
            Ended::Closed => "the channel handle was closed",
        }
    }
}

/// What a view or reservation object holds, behind a lock.
struct Lease<G> {
    held: Option<Leased<G>>,
    /// Buffers exported through the buffer protocol and not yet released.
    exports: usize,
    ended: Option<Ended>,
}

impl<G: std::ops::Deref<Target = [u8]>> Lease<G> {
    fn new(guard: G, channel: Arc<psyne::Channel>) -> Self {
        Lease {
            held: Some(Leased { guard, channel }),
            exports: 0,
            ended: None,
        }
    }

    /// The guard, if the lease is still usable.
    fn live(&self) -> PyResult<&Leased<G>> {
        match (&self.ended, &self.held) {
            (None, Some(h)) => Ok(h),
            (Some(e), _) => Err(PyValueError::new_err(format!(
                "operation on an ended psyne lease: {}",
                e.describe()
            ))),
            (None, None) => Err(PyValueError::new_err("operation on an empty psyne lease")),
        }
    }

    /// Ends the lease for `why`: refuses while buffers are exported.
    fn end(&mut self, why: Ended) -> PyResult<Option<Leased<G>>> {
        if self.ended.is_some() {
            return Ok(None);
        }
        if self.exports > 0 {
            return Err(PyBufferError::new_err(format!(
                "{} exported buffer(s) (a memoryview or numpy array) still use these bytes; delete them first",
                self.exports
            )));
        }
        self.ended = Some(why);
        Ok(self.held.take())
    }

    /// The channel handle was closed: drop the guard now unless an export
    /// still reads its bytes (then the last export's release drops it).
    fn close(&mut self) {
        if self.ended.is_none() {
            self.ended = Some(Ended::Closed);
        }
        if self.exports == 0 {
            self.held = None;
        }
    }

    /// Fills a Py_buffer for `owner`, counting the export.
    ///
    /// # Safety
    /// `view` must be the Py_buffer of a `__getbuffer__` call on `owner`.
    unsafe fn export(
        &mut self,
        owner: *mut ffi::PyObject,
        view: *mut ffi::Py_buffer,
        flags: c_int,
        readonly: bool,
    ) -> PyResult<()> {
        let h = self.live()?;
        let bytes: &[u8] = &h.guard;
        // SAFETY: the bytes stay valid while the guard is held, and the guard
        // is held while `exports > 0` (see `end` and `close`). PyBuffer_FillInfo
        // sets view.obj to a new reference to `owner` and raises BufferError
        // when a writable buffer is asked of read-only bytes.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                owner,
                bytes.as_ptr() as *mut std::os::raw::c_void,
                bytes.len() as ffi::Py_ssize_t,
                readonly as c_int,
                flags,
            )
        };
        if rc != 0 {
            // SAFETY: we hold the GIL (we are in a slot called by Python).
            return Err(PyErr::fetch(unsafe { Python::assume_attached() }));
        }
        self.exports += 1;
        Ok(())
    }

    fn unexport(&mut self) {
        self.exports = self.exports.saturating_sub(1);
        if self.exports == 0 && self.ended == Some(Ended::Closed) {
            self.held = None;
        }
    }
}

/// What a channel's `close()` calls on every live lease.
trait Closable: Send + Sync {
    fn channel_closed(&self);
}

impl<G: std::ops::Deref<Target = [u8]> + Send> Closable for Mutex<Lease<G>> {
    fn channel_closed(&self) {
        self.lock().close();
    }
}

type ReadLease = Mutex<Lease<psyne::ReadGuard<'static>>>;
type WriteLease = Mutex<Lease<psyne::WriteGuard<'static>>>;

// ---- Channel ------------------------------------------------------------

/// The native channel handle; `psyne.Channel` subclasses it.
#[pyclass(module = "psyne._psyne", name = "Channel", subclass, frozen)]
struct PyChannel {
    /// `None` once closed. Non-blocking calls run under the read lock; a
    /// waiting call works on a clone of the `Arc`.
    handle: RwLock<Option<Arc<psyne::Channel>>>,
    /// Fired by `close()`: wakes this handle's waiting calls at once.
    closing: CancelToken,
    /// Views and reservations handed out and maybe still alive, which
    /// `close()` ends.
    leases: Mutex<Vec<Weak<dyn Closable>>>,
    uri: String,
    buffer_size: usize,
    max_message_size: usize,
    mode: Mode,
    channel_type: ChannelType,
}

/// Reads a compression config from any object with the attributes of
/// `psyne.CompressionConfig` (`type`, `level`, `min_size_threshold`,
/// `enable_checksum`).
fn compression_from(py: Python<'_>, cfg: &Bound<'_, PyAny>) -> PyResult<CompressionConfig> {
    let get = |name: &str| {
        cfg.getattr(name)
            .map_err(|_| invalid(py, format!("compression config has no attribute {name:?}")))
    };
    let kind: i64 = get("type")?
        .extract()
        .map_err(|_| invalid(py, "compression type must be a psyne.Compression value"))?;
    let kind = CompressionType::from_raw(kind).map_err(|e| py_err(py, e))?;
    let level: i64 = get("level")?
        .extract()
        .map_err(|_| invalid(py, "compression level must be an integer"))?;
    let level = i32::try_from(level)
        .map_err(|_| invalid(py, format!("compression level {level} is out of range")))?;
    let min: i64 = get("min_size_threshold")?
        .extract()
        .map_err(|_| invalid(py, "min_size_threshold must be an integer"))?;
    let min_size_threshold = usize::try_from(min).map_err(|_| {
        invalid(
            py,
            format!("min_size_threshold={min}: must not be negative"),
        )
    })?;
    let enable_checksum: bool = get("enable_checksum")?
        .extract()
        .map_err(|_| invalid(py, "enable_checksum must be a bool"))?;
    Ok(CompressionConfig {
        kind,
        level,
        min_size_threshold,
        enable_checksum,
    })
}

fn msg_type_of(py: Python<'_>, msg_type: i64) -> PyResult<u32> {
    u32::try_from(msg_type).map_err(|_| {
        invalid(
            py,
            format!("msg_type={msg_type}: must be from 0 to 4294967295"),
        )
    })
}

impl PyChannel {
    /// Runs `f` on the open channel (under the read lock, GIL held).
    #[inline]
    fn with<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Arc<psyne::Channel>) -> PyResult<T>,
    ) -> PyResult<T> {
        match &*self.handle.read() {
            Some(ch) => f(ch),
            None => Err(closed_error(py)),
        }
    }

    fn is_closed(&self) -> bool {
        self.handle.read().is_none()
    }

    fn open_arc(&self, py: Python<'_>) -> PyResult<Arc<psyne::Channel>> {
        self.with(py, |ch| Ok(ch.clone()))
    }

    /// Waits as `wait` says (see [`wait_in_slices`]); the handle's closing
    /// ends the wait.
    fn wait<T: Send>(
        &self,
        py: Python<'_>,
        wait: Wait,
        attempt: impl FnMut(Duration) -> psyne::Result<T> + Send,
    ) -> PyResult<T> {
        let limit = match wait {
            Wait::For(d) => Some(d),
            Wait::No => Some(Duration::ZERO),
            Wait::Forever => None,
        };
        wait_in_slices(py, limit, &|| self.is_closed(), attempt)
    }

    /// How much free space a sender that found the ring full waits for:
    /// a quarter of the ring (or its own message, if larger). Resuming as
    /// soon as one message fits would make a fast sender and a slower
    /// receiver trade a wake-up per message.
    fn resume_room(&self, len: usize) -> usize {
        (self.buffer_size / 4).max(len).min(self.max_message_size)
    }

    fn track(&self, lease: Weak<dyn Closable>) {
        let mut leases = self.leases.lock();
        if leases.len() >= 64 && leases.len().is_power_of_two() {
            leases.retain(|w| w.strong_count() > 0);
        }
        leases.push(lease);
    }

    /// Sends with the semantics of `send(data, msg_type, timeout)`.
    fn send_impl(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        msg_type: u32,
        wait: Wait,
        cancel: Option<&CancelToken>,
    ) -> PyResult<()> {
        let buf = Borrowed::get(data)?;
        let bytes = buf.bytes();
        let ch = self.open_arc(py)?;
        // First attempt without waiting; large copies leave the GIL.
        let first = if bytes.len() >= LARGE_COPY {
            py.detach(|| ch.try_send(bytes, msg_type))
        } else {
            ch.try_send(bytes, msg_type)
        };
        match (first, wait) {
            (Ok(()), _) => Ok(()),
            (Err(psyne::Error::ChannelFull), Wait::Forever | Wait::For(_)) => {
                let token = cancel.unwrap_or(&self.closing);
                let room = self.resume_room(bytes.len());
                self.wait(py, wait, |slice| {
                    wait_for_room(&ch, room, slice, token)?;
                    ch.try_send(bytes, msg_type).map_err(full_is_timeout)
                })
            }
            (Err(e), _) => Err(py_err(py, e)),
        }
    }

    /// Takes the next message as a guard on `ch`, waiting as `wait` says.
    fn recv_guard<'c>(
        &self,
        py: Python<'_>,
        ch: &'c psyne::Channel,
        wait: Wait,
        cancel: Option<&CancelToken>,
    ) -> PyResult<psyne::ReadGuard<'c>> {
        match (ch.try_recv(), wait) {
            (Ok(g), _) => Ok(g),
            (Err(psyne::Error::NoMessage), Wait::Forever | Wait::For(_)) => {
                let token = cancel.unwrap_or(&self.closing);
                self.wait(py, wait, |slice| ch.recv_until(Some(slice), Some(token)))
            }
            (Err(e), _) => Err(py_err(py, e)),
        }
    }

    /// `recv`: the next message copied into `(bytes, msg_type)`.
    fn recv_impl<'py>(
        &self,
        py: Python<'py>,
        wait: Wait,
        cancel: Option<&CancelToken>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let ch = self.open_arc(py)?;
        let guard = self.recv_guard(py, &ch, wait, cancel)?;
        let data = bytes_from(py, &guard)?;
        let t = guard.msg_type();
        drop(guard);
        PyTuple::new(py, [data.into_any(), t.into_pyobject(py)?.into_any()])
    }
}

#[pymethods]
impl PyChannel {
    #[new]
    #[pyo3(signature = (uri, buffer_size = 1 << 20, mode = 0, channel_type = 1, compression = None))]
    fn new(
        py: Python<'_>,
        uri: &str,
        buffer_size: i64,
        mode: i64,
        channel_type: i64,
        compression: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let size = usize::try_from(buffer_size).map_err(|_| {
            invalid(
                py,
                format!("buffer_size={buffer_size}: must not be negative"),
            )
        })?;
        let mode = Mode::from_raw(mode).map_err(|e| py_err(py, e))?;
        let channel_type = ChannelType::from_raw(channel_type).map_err(|e| py_err(py, e))?;
        let mut builder = psyne::Channel::builder(uri)
            .buffer_size(size)
            .mode(mode)
            .channel_type(channel_type);
        if let Some(cfg) = compression.filter(|c| !c.is_none()) {
            builder = builder.compression(compression_from(py, cfg)?);
        }
        // Creating an ipc ring allocates (and may zero) its whole file, and a
        // socket end binds: no GIL needed for either.
        let ch = py.detach(|| builder.build()).map_err(|e| py_err(py, e))?;
        Ok(PyChannel {
            uri: ch.uri().to_owned(),
            buffer_size: ch.buffer_size(),
            max_message_size: ch.max_message_size(),
            mode: ch.mode(),
            channel_type: ch.channel_type(),
            handle: RwLock::new(Some(Arc::new(ch))),
            closing: CancelToken::new(),
            leases: Mutex::new(Vec::new()),
        })
    }

    /// Closes this handle (idempotent): wakes this handle's waiting calls
    /// (they raise Cancelled), ends its views and reservations, and frees the
    /// channel's resources once nothing uses them. Other handles on the same
    /// channel are unaffected (use stop() to stop the channel itself).
    fn close(&self, py: Python<'_>) {
        self.closing.cancel();
        let ch = self.handle.write().take();
        let leases = std::mem::take(&mut *self.leases.lock());
        for lease in leases.iter().filter_map(Weak::upgrade) {
            lease.channel_closed();
        }
        // The last reference may close sockets and unmap a ring: no GIL needed.
        py.detach(|| drop(ch));
    }

    /// Whether close() was called.
    #[getter]
    fn closed(&self) -> bool {
        self.is_closed()
    }

    /// Returns the channel (a context manager that closes it on exit).
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Closes the channel.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    /// Sends a copy of `data` (any contiguous buffer) as one message.
    #[pyo3(signature = (data, msg_type = 0, timeout = None))]
    fn send(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        msg_type: i64,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let wait = parse_timeout(py, timeout)?;
        self.send_impl(py, data, msg_type_of(py, msg_type)?, wait, None)
    }

    /// Sends without waiting: ChannelFull when there is no room.
    #[pyo3(signature = (data, msg_type = 0))]
    fn try_send(&self, py: Python<'_>, data: &Bound<'_, PyAny>, msg_type: i64) -> PyResult<()> {
        self.send_impl(py, data, msg_type_of(py, msg_type)?, Wait::No, None)
    }

    /// Receives the next message as `(bytes, msg_type)`.
    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyTuple>> {
        let wait = parse_timeout(py, timeout)?;
        self.recv_impl(py, wait, None)
    }

    /// Receives without waiting: NoMessage when nothing is queued.
    fn try_recv<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.recv_impl(py, Wait::No, None)
    }

    /// Copies the next message into `buffer` (any writable contiguous buffer,
    /// e.g. a preallocated numpy array): `(nbytes, msg_type)`. A message
    /// larger than the buffer stays queued and raises InvalidArgument saying
    /// the size it needs.
    #[pyo3(signature = (buffer, timeout = None))]
    fn recv_into(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<(usize, u32)> {
        let wait = parse_timeout(py, timeout)?;
        let buf = Borrowed::get_writable(buffer)?;
        let dst = buf.bytes_mut();
        let ch = self.open_arc(py)?;
        let first = if dst.len() >= LARGE_COPY {
            py.detach(|| ch.try_recv_into(dst))
        } else {
            ch.try_recv_into(dst)
        };
        match (first, wait) {
            (Ok(got), _) => Ok(got),
            (Err(psyne::Error::NoMessage), Wait::Forever | Wait::For(_)) => {
                let token = &self.closing;
                self.wait(py, wait, |slice| {
                    ch.recv_into_until(dst, Some(slice), Some(token))
                })
            }
            (Err(e), _) => Err(py_err(py, e)),
        }
    }

    /// Receives the next message as a zero-copy MessageView of the ring.
    #[pyo3(signature = (timeout = None))]
    fn recv_view(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<MessageView> {
        let wait = parse_timeout(py, timeout)?;
        let ch = self.open_arc(py)?;
        let guard = self.recv_guard(py, &ch, wait, None)?;
        // SAFETY: see `Leased`: the guard borrows `*ch`, whose Arc the lease
        // keeps (and drops after the guard).
        let guard: psyne::ReadGuard<'static> = unsafe { std::mem::transmute(guard) };
        let msg_type = guard.msg_type();
        let len = guard.len();
        let lease: Arc<ReadLease> = Arc::new(Mutex::new(Lease::new(guard, ch)));
        let weak: Weak<ReadLease> = Arc::downgrade(&lease);
        self.track(weak);
        Ok(MessageView {
            lease,
            msg_type,
            len,
        })
    }

    /// Reserves `size` writable bytes inside the ring.
    #[pyo3(signature = (size, timeout = None))]
    fn reserve(&self, py: Python<'_>, size: i64, timeout: Option<f64>) -> PyResult<Reservation> {
        let wait = parse_timeout(py, timeout)?;
        let size = usize::try_from(size)
            .map_err(|_| invalid(py, format!("size={size}: must not be negative")))?;
        let ch = self.open_arc(py)?;
        let guard = match (ch.try_reserve(size), wait) {
            (Ok(g), _) => g,
            (Err(psyne::Error::ChannelFull), Wait::Forever | Wait::For(_)) => {
                let (token, chr) = (&self.closing, &*ch);
                let room = self.resume_room(size);
                self.wait(py, wait, |slice| {
                    wait_for_room(chr, room, slice, token)?;
                    chr.try_reserve(size).map_err(full_is_timeout)
                })?
            }
            (Err(e), _) => return Err(py_err(py, e)),
        };
        // SAFETY: see `Leased`, as in recv_view.
        let guard: psyne::WriteGuard<'static> = unsafe { std::mem::transmute(guard) };
        let lease: Arc<WriteLease> = Arc::new(Mutex::new(Lease::new(guard, ch)));
        let weak: Weak<WriteLease> = Arc::downgrade(&lease);
        self.track(weak);
        Ok(Reservation { lease, len: size })
    }

    /// Stops the channel for every handle and process using it.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |ch| {
            ch.stop();
            Ok(())
        })
    }

    /// Whether the channel was stopped (by any handle).
    #[getter]
    fn is_stopped(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |ch| Ok(ch.is_stopped()))
    }

    /// The URI this handle was opened with.
    #[getter]
    fn uri(&self) -> &str {
        &self.uri
    }

    /// The ring size in bytes.
    #[getter]
    fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// The largest message the channel accepts.
    #[getter]
    fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The mode as its C value.
    #[getter]
    fn _mode(&self) -> i64 {
        self.mode as i64
    }

    /// The channel type as its C value.
    #[getter]
    fn _channel_type(&self) -> i64 {
        self.channel_type as i64
    }

    /// A socket end's address (`HOST:PORT`, or the socket path); None on
    /// memory:// and ipc://.
    #[getter]
    fn local_addr(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |ch| Ok(ch.local_addr()))
    }

    /// This handle's counters.
    fn metrics(&self, py: Python<'_>) -> PyResult<Metrics> {
        self.with(py, |ch| Ok(Metrics(ch.metrics())))
    }

    /// Sets the counters to zero.
    fn reset_metrics(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |ch| {
            ch.reset_metrics();
            Ok(())
        })
    }

    /// Iterating yields `(bytes, msg_type)` until the channel is stopped and drained.
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// The next message, waiting for it; StopIteration once stopped and drained.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        match self.recv_impl(py, Wait::Forever, None) {
            Ok(t) => Ok(Some(t)),
            Err(e) if is_stopped_error(py, &e)? && !self.is_closed() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Blocking receive for recv_async's worker thread: `token` cancels it.
    #[pyo3(signature = (timeout, token))]
    fn _recv_wait<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
        token: &WaitToken,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let wait = parse_timeout(py, timeout)?;
        self.recv_impl(py, wait, Some(&token.0))
    }

    /// Blocking send for send_async's worker thread: `token` cancels it.
    #[pyo3(signature = (data, msg_type, timeout, token))]
    fn _send_wait(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        msg_type: i64,
        timeout: Option<f64>,
        token: &WaitToken,
    ) -> PyResult<()> {
        let wait = parse_timeout(py, timeout)?;
        self.send_impl(py, data, msg_type_of(py, msg_type)?, wait, Some(&token.0))
    }

    fn __repr__(&self) -> String {
        format!(
            "<psyne.Channel uri={:?} buffer_size={} mode={} channel_type={}{}>",
            self.uri,
            self.buffer_size,
            format!("{:?}", self.mode).to_uppercase(),
            format!("{:?}", self.channel_type).to_uppercase(),
            if self.is_closed() { " closed" } else { "" }
        )
    }
}

impl Drop for PyChannel {
    fn drop(&mut self) {
        // Waiting calls hold the object alive, so none is left; end the leases.
        for lease in self.leases.get_mut().drain(..).filter_map(|w| w.upgrade()) {
            lease.channel_closed();
        }
    }
}

fn is_stopped_error(py: Python<'_>, e: &PyErr) -> PyResult<bool> {
    let class = error_module(py)?.getattr("ChannelStopped")?;
    Ok(e.is_instance(py, &class))
}

/// A cancellation handle for one asyncio wait (recv_async/send_async): the
/// coroutine fires it when it is cancelled, which wakes the worker thread.
#[pyclass(module = "psyne", frozen)]
struct WaitToken(CancelToken);

#[pymethods]
impl WaitToken {
    /// A token that is not cancelled.
    #[new]
    fn new() -> Self {
        WaitToken(CancelToken::new())
    }

    /// Wakes the waiting call, which raises Cancelled.
    fn cancel(&self) {
        self.0.cancel();
    }
}

// ---- MessageView ------------------------------------------------------------

/// A received message as a read-only view of the ring's bytes (zero-copy).
#[pyclass(module = "psyne", frozen)]
struct MessageView {
    lease: Arc<ReadLease>,
    msg_type: u32,
    len: usize,
}

#[pymethods]
impl MessageView {
    /// The message type.
    #[getter]
    fn msg_type(&self) -> PyResult<u32> {
        self.lease.lock().live()?;
        Ok(self.msg_type)
    }

    /// Whether the view was released (or its channel closed).
    #[getter]
    fn released(&self) -> bool {
        self.lease.lock().ended.is_some()
    }

    /// The number of bytes.
    fn __len__(&self) -> PyResult<usize> {
        self.lease.lock().live()?;
        Ok(self.len)
    }

    /// A copy of the bytes.
    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        // The copy may leave the GIL, so it must not hold the lease's lock
        // (a thread waiting for that lock with the GIL would deadlock it):
        // counting as an export pins the bytes instead, as a memoryview would.
        let (ptr, len) = {
            let mut lease = self.lease.lock();
            let bytes: &[u8] = &lease.live()?.guard;
            let pinned = (bytes.as_ptr() as usize, bytes.len());
            lease.exports += 1;
            pinned
        };
        // SAFETY: the bytes stay valid while exports > 0 (see `Lease`).
        let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
        let copy = bytes_from(py, bytes);
        self.lease.lock().unexport();
        copy
    }

    /// Frees the message's space in the ring (idempotent). Raises
    /// BufferError while a memoryview or numpy array made from the view is
    /// alive.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let held = self.lease.lock().end(Ended::Released)?;
        py.detach(|| drop(held));
        Ok(())
    }

    /// Returns the view (a context manager that releases it on exit).
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Releases the view.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.release(py)?;
        Ok(false)
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let owner = slf.as_ptr();
        let mut lease = slf.get().lease.lock();
        // SAFETY: `view` is this __getbuffer__ call's buffer, `owner` its object.
        unsafe { lease.export(owner, view, flags, true) }
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.lease.lock().unexport();
    }

    fn __repr__(&self) -> String {
        match self.lease.lock().ended {
            None => format!(
                "<psyne.MessageView len={} msg_type={}>",
                self.len, self.msg_type
            ),
            Some(_) => "<psyne.MessageView released>".into(),
        }
    }
}

// ---- Reservation ------------------------------------------------------------

/// `size` writable bytes inside the ring, published by send().
#[pyclass(module = "psyne", frozen)]
struct Reservation {
    lease: Arc<WriteLease>,
    len: usize,
}

#[pymethods]
impl Reservation {
    /// Publishes the bytes as one message of type `msg_type`. Raises
    /// BufferError while a memoryview or numpy array over the reservation
    /// is alive (it could otherwise write into a message already sent).
    #[pyo3(signature = (msg_type = 0))]
    fn send(&self, py: Python<'_>, msg_type: i64) -> PyResult<()> {
        let t = msg_type_of(py, msg_type)?;
        let mut lease = self.lease.lock();
        lease.live()?;
        let held = lease.end(Ended::Sent)?;
        drop(lease);
        let Some(Leased { guard, channel }) = held else {
            return Err(PyValueError::new_err("operation on an ended psyne lease"));
        };
        let sent = guard.send(t);
        drop(channel);
        if sent.is_err() {
            // A refused type cancels the reservation (the guard is consumed).
            self.lease.lock().ended = Some(Ended::Cancelled);
        }
        sent.map_err(|e| py_err(py, e))
    }

    /// Gives the space back without sending (idempotent; a no-op after send).
    fn cancel(&self, py: Python<'_>) -> PyResult<()> {
        let held = self.lease.lock().end(Ended::Cancelled)?;
        py.detach(|| drop(held));
        Ok(())
    }

    /// Whether the reservation was sent or cancelled (or its channel closed).
    #[getter]
    fn finished(&self) -> bool {
        self.lease.lock().ended.is_some()
    }

    /// The number of bytes.
    fn __len__(&self) -> PyResult<usize> {
        self.lease.lock().live()?;
        Ok(self.len)
    }

    /// Returns the reservation (a context manager that cancels it on exit unless sent).
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Cancels unless sent.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.cancel(py)?;
        Ok(false)
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let owner = slf.as_ptr();
        let mut lease = slf.get().lease.lock();
        // SAFETY: `view` is this __getbuffer__ call's buffer, `owner` its object.
        unsafe { lease.export(owner, view, flags, false) }
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.lease.lock().unexport();
    }

    fn __repr__(&self) -> String {
        match self.lease.lock().ended {
            None => format!("<psyne.Reservation len={}>", self.len),
            Some(e) => format!("<psyne.Reservation {}>", e.describe()),
        }
    }
}

// ---- Metrics --------------------------------------------------------------

/// A channel end's counters at one moment.
#[pyclass(module = "psyne", frozen)]
struct Metrics(psyne::Metrics);

macro_rules! metric_getters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        #[pymethods]
        impl Metrics {
            $( $(#[$doc])* #[getter] fn $name(&self) -> u64 { self.0.$name } )*

            /// Every counter by name, in the C struct's order.
            fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                $( d.set_item(stringify!($name), self.0.$name)?; )*
                Ok(d)
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
                other.cast::<Metrics>().is_ok_and(|o| o.get().0 == self.0)
            }

            fn __repr__(&self) -> String {
                let mut s = String::from("psyne.Metrics(");
                $( s.push_str(&format!("{}={}, ", stringify!($name), self.0.$name)); )*
                s.truncate(s.len() - 2);
                s.push(')');
                s
            }
        }
    };
}

metric_getters!(
    /// Messages published.
    messages_sent,
    /// Payload bytes published.
    bytes_sent,
    /// Messages taken by receivers.
    messages_received,
    /// Payload bytes taken by receivers.
    bytes_received,
    /// Send or reserve attempts that found the ring full.
    send_blocks,
    /// Receive attempts that found the ring empty.
    receive_blocks,
    /// Bytes written to the wire (payload bytes on memory/ipc).
    wire_bytes_sent,
    /// Bytes read from the wire (payload bytes on memory/ipc).
    wire_bytes_received,
    /// Messages sent compressed.
    messages_compressed,
    /// Received messages whose checksum did not match (never delivered).
    checksum_failures,
    /// Frames and handshakes refused.
    frames_refused,
    /// Connections established.
    connects,
    /// Connections re-established after a loss.
    reconnects,
    /// Peers connected now.
    peers,
    /// Bytes queued now.
    queued_bytes,
    /// The deepest queue since the last reset.
    high_water_bytes,
);

// ---- module -------------------------------------------------------------------

/// The compiled core of the `psyne` package (use `psyne`, not this module).
#[pymodule]
fn _psyne(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyChannel>()?;
    m.add_class::<MessageView>()?;
    m.add_class::<Reservation>()?;
    m.add_class::<Metrics>()?;
    m.add_class::<WaitToken>()?;
    m.add("VERSION", psyne::VERSION)?;
    m.add("SLICE_SECONDS", SLICE.as_secs_f64())?;
    Ok(())
}
