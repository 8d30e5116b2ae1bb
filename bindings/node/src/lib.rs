//! The native half of the Node.js package `psyne`: napi-rs functions over
//! the Rust API of the `psyne` crate. A channel, a view and a reservation are
//! napi `External`s that JavaScript passes back in; `index.js` wraps them
//! into the public API (`Channel`, `PsyneError`, `View`, `Reservation`), and
//! nothing here is meant to be called directly.
//!
//! Waiting never happens on the JavaScript thread. A call that cannot finish
//! at once (a receive on an empty ring, a send on a full one) is handed to one
//! of the channel's two waiter threads (one per direction, started on first
//! use), which waits inside the core and settles the call's promise through a
//! Node-API threadsafe function: no libuv pool thread is held by a long wait,
//! and no timer polls. Each wait carries its own [`CancelToken`], triggered by
//! an `AbortSignal` or by `close()`.
//!
//! No Rust panic crosses into Node: every exported function is built with
//! `catch_unwind`, and waiter jobs, promise resolvers, buffer finalizers and
//! the channel's `Drop` catch their own.

use napi::bindgen_prelude::*;
use napi::{Env, JsBuffer, JsDeferred, JsFunction, JsObject, JsUnknown, NapiRaw, Ref};
use napi_derive::napi;
use psyne::{
    CancelToken, Channel, ChannelType, CompressionConfig, CompressionType, Mode, ReadGuard,
    WriteGuard,
};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---- errors ---------------------------------------------------------------

/// The C result codes and the `code` strings of `PsyneError` (the C names
/// without `PSYNE_ERROR_`).
const CODE_NAMES: [(i32, &str); 10] = [
    (-1, "INVALID_ARGUMENT"),
    (-2, "OUT_OF_MEMORY"),
    (-3, "CHANNEL_FULL"),
    (-4, "NO_MESSAGE"),
    (-5, "CHANNEL_STOPPED"),
    (-6, "UNSUPPORTED"),
    (-7, "IO"),
    (-8, "TIMEOUT"),
    (-9, "CANCELLED"),
    (-99, "UNKNOWN"),
];

fn code_name(code: i32) -> &'static str {
    CODE_NAMES
        .iter()
        .find(|&&(c, _)| c == code)
        .map_or("UNKNOWN", |&(_, n)| n)
}

/// A failure as the JavaScript side reports it: a C code and a message.
#[derive(Debug, Clone)]
struct Failure {
    code: i32,
    message: String,
}

impl From<psyne::Error> for Failure {
    fn from(e: psyne::Error) -> Failure {
        Failure {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Failure {
        Failure {
            code: -1,
            message: format!("invalid argument: {}", message.into()),
        }
    }
    fn closed() -> Failure {
        Failure {
            code: -5,
            message: "channel stopped: channel is closed".into(),
        }
    }
    fn panicked(what: &str) -> Failure {
        Failure {
            code: -99,
            message: format!("unknown error: internal panic in psyne's Node binding ({what})"),
        }
    }
}

thread_local! {
    /// The `PsyneError` constructor of this thread's Node environment, set by
    /// `init` (index.js) before any channel is opened.
    static ERROR_CLASS: RefCell<Option<Ref<()>>> = const { RefCell::new(None) };
}

/// Registers the `PsyneError` class (`new PsyneError(code, message)`).
#[napi(catch_unwind)]
pub fn init(env: Env, error_class: JsFunction) -> Result<()> {
    let r = env.create_reference(error_class)?;
    ERROR_CLASS.with(|c| {
        if let Some(mut old) = c.borrow_mut().replace(r) {
            let _ = old.unref(env);
        }
    });
    Ok(())
}

/// A `PsyneError` instance for `f`.
fn error_object(env: &Env, f: &Failure) -> Result<JsObject> {
    ERROR_CLASS.with(|c| {
        let class = c.borrow();
        let class = class
            .as_ref()
            .ok_or_else(|| Error::from_reason("psyne native module used before init()"))?;
        let ctor: JsFunction = env.get_reference_value(class)?;
        ctor.new_instance(&[
            env.create_string(code_name(f.code))?,
            env.create_string(&f.message)?,
        ])
    })
}

/// Throws `f` as a `PsyneError`; the returned error tells napi-rs that an
/// exception is already pending.
fn throw(env: &Env, f: Failure) -> Error {
    match error_object(env, &f).and_then(|e| env.throw(e)) {
        Ok(()) => Error::from_status(Status::PendingException),
        Err(e) => e,
    }
}

// ---- guards that own their channel ---------------------------------------------

/// A received view with the channel handle that keeps its ring alive.
struct OwnedView {
    // Declared before `_channel`: released before the handle is dropped.
    guard: ReadGuard<'static>,
    _channel: Channel,
}

impl OwnedView {
    fn new(channel: &Channel, guard: ReadGuard<'_>) -> OwnedView {
        // SAFETY: the guard points at ring state that lives behind an `Arc`
        // shared by every clone of `channel`; the clone stored beside it keeps
        // that state at its address until after the guard is dropped (field
        // order). The `'static` never escapes: the field is private and its
        // bytes are lent out only through `bytes`, for as long as `self` is
        // borrowed (JavaScript gets them as an external buffer that is
        // detached before the guard is dropped; see `Shelf`).
        let guard = unsafe { std::mem::transmute::<ReadGuard<'_>, ReadGuard<'static>>(guard) };
        OwnedView {
            guard,
            _channel: channel.clone(),
        }
    }
}

/// A reservation with the channel handle that keeps its ring alive.
struct OwnedReservation {
    // Declared before `_channel`: sent or cancelled before the handle is dropped.
    guard: WriteGuard<'static>,
    _channel: Channel,
}

impl OwnedReservation {
    fn new(channel: &Channel, guard: WriteGuard<'_>) -> OwnedReservation {
        // SAFETY: as for `OwnedView::new`.
        let guard = unsafe { std::mem::transmute::<WriteGuard<'_>, WriteGuard<'static>>(guard) };
        OwnedReservation {
            guard,
            _channel: channel.clone(),
        }
    }
}

/// Where a view or reservation waits for `release`/`send`/`cancel` or for
/// the garbage collector: shared by the JavaScript handle object and the
/// finalizer of the Buffer over its bytes, whichever acts first takes it.
type Shelf<G> = Rc<RefCell<Option<G>>>;

/// A Buffer over `len` bytes at `ptr` that owns a share of `shelf`: when the
/// Buffer is collected, whatever is still on the shelf is dropped (a view
/// released, a reservation cancelled). Empty guards get an ordinary empty
/// Buffer (an external one must not be empty).
///
/// # Safety
/// `ptr..ptr+len` must stay valid for as long as the guard on `shelf` lives;
/// whoever takes the guard off the shelf must first detach the Buffer's
/// ArrayBuffer ([`detach`]).
unsafe fn ring_buffer<G: 'static>(
    env: &Env,
    ptr: *mut u8,
    len: usize,
    shelf: &Shelf<G>,
) -> Result<JsBuffer> {
    if len == 0 {
        return Ok(env.create_buffer(0)?.into_raw());
    }
    let hint = shelf.clone();
    // SAFETY: caller contract; the finalizer only drops the guard.
    let buf = unsafe {
        env.create_buffer_with_borrowed_data(ptr, len, hint, |hint: Shelf<G>, _env| {
            let _ = catch_unwind(AssertUnwindSafe(|| drop(hint.borrow_mut().take())));
        })
    }?;
    Ok(buf.into_raw())
}

/// Detaches `buf`'s ArrayBuffer if it is the external Buffer over `ptr`: its
/// length becomes 0 and no JavaScript code can reach those bytes again.
fn detach(env: &Env, buf: &JsBuffer, ptr: *const u8) -> Result<()> {
    let mut kind = 0;
    let mut len = 0usize;
    let mut data = std::ptr::null_mut();
    let mut array_buffer = std::ptr::null_mut();
    let mut offset = 0usize;
    // SAFETY: `buf` is a live Buffer (a Uint8Array) of this environment; the
    // out-pointers are valid locals.
    let status = unsafe {
        napi::sys::napi_get_typedarray_info(
            env.raw(),
            buf.raw(),
            &mut kind,
            &mut len,
            &mut data,
            &mut array_buffer,
            &mut offset,
        )
    };
    if status != napi::sys::Status::napi_ok {
        return Err(Error::from_reason("not a Buffer"));
    }
    if len == 0 || data as *const u8 != ptr {
        // An empty Buffer (never over the ring), or already detached.
        return Ok(());
    }
    // SAFETY: `array_buffer` is the Buffer's ArrayBuffer, created external
    // (and so detachable) by `ring_buffer`.
    let status = unsafe { napi::sys::napi_detach_arraybuffer(env.raw(), array_buffer) };
    if status != napi::sys::Status::napi_ok {
        return Err(Error::from_reason(
            "could not detach the ArrayBuffer over ring memory",
        ));
    }
    Ok(())
}

/// A received zero-copy view, held by JavaScript as an `External` (index.js:
/// `View`; Externals rather than napi-rs classes for the reason given at
/// [`NativeChannel`]).
pub struct NativeView {
    shelf: Shelf<OwnedView>,
    ptr: usize,
}

/// Detaches `data` (the Buffer handed out with the view) and frees the
/// message's space. Idempotent.
#[napi(catch_unwind)]
pub fn view_release(env: Env, view: External<NativeView>, data: JsBuffer) -> Result<()> {
    if view.shelf.borrow().is_none() {
        return Ok(());
    }
    detach(&env, &data, view.ptr as *const u8)?;
    drop(view.shelf.borrow_mut().take());
    Ok(())
}

/// Whether the view was released (or its Buffer collected).
#[napi(catch_unwind)]
pub fn view_released(view: External<NativeView>) -> bool {
    view.shelf.borrow().is_none()
}

/// A reservation, held by JavaScript as an `External` (index.js:
/// `Reservation`).
pub struct NativeReservation {
    shelf: Shelf<OwnedReservation>,
    ptr: usize,
}

impl NativeReservation {
    fn take(&self, env: &Env, data: &JsBuffer) -> Result<Option<OwnedReservation>> {
        if self.shelf.borrow().is_none() {
            return Ok(None);
        }
        detach(env, data, self.ptr as *const u8)?;
        Ok(self.shelf.borrow_mut().take())
    }
}

/// Detaches `data` and publishes the bytes with type `msg_type`.
#[napi(catch_unwind)]
pub fn reservation_send(
    env: Env,
    res: External<NativeReservation>,
    data: JsBuffer,
    msg_type: u32,
) -> Result<()> {
    let Some(owned) = res.take(&env, &data)? else {
        return Err(throw(
            &env,
            Failure::invalid("the reservation was already sent or cancelled"),
        ));
    };
    owned
        .guard
        .send(msg_type)
        .map_err(|e| throw(&env, e.into()))
}

/// Detaches `data` and gives the space back. Idempotent.
#[napi(catch_unwind)]
pub fn reservation_cancel(
    env: Env,
    res: External<NativeReservation>,
    data: JsBuffer,
) -> Result<()> {
    drop(res.take(&env, &data)?);
    Ok(())
}

/// Whether the reservation was sent or cancelled (or its Buffer collected).
#[napi(catch_unwind)]
pub fn reservation_done(res: External<NativeReservation>) -> bool {
    res.shelf.borrow().is_none()
}

/// `{ data, type, view }` for a received view.
fn view_object(env: &Env, owned: OwnedView) -> Result<JsObject> {
    let ptr = owned.guard.as_ptr() as *mut u8;
    let len = owned.guard.len();
    let msg_type = owned.guard.msg_type();
    let shelf: Shelf<OwnedView> = Rc::new(RefCell::new(Some(owned)));
    // SAFETY: the bytes belong to the guard on `shelf`; `NativeView::release`
    // detaches the Buffer before it drops the guard, and the finalizer drops
    // it only once the Buffer is gone.
    let data = unsafe { ring_buffer(env, ptr, len, &shelf) }?;
    let view = NativeView {
        shelf,
        ptr: ptr as usize,
    };
    let mut obj = env.create_object()?;
    obj.set_named_property("data", data)?;
    obj.set_named_property("type", msg_type)?;
    obj.set_named_property("view", External::new(view))?;
    Ok(obj)
}

/// `{ data, type }` with `data` a Buffer of its own.
fn message_object(env: &Env, data: JsBuffer, msg_type: u32) -> Result<JsObject> {
    let mut obj = env.create_object()?;
    obj.set_named_property("data", data)?;
    obj.set_named_property("type", msg_type)?;
    Ok(obj)
}

// ---- waiting off the JavaScript thread -----------------------------------------

/// A promise's settling function, run on the JavaScript thread.
type Settle = Box<dyn FnOnce(Env) -> Result<JsUnknown> + Send>;
type Deferred = JsDeferred<JsUnknown, Settle>;

/// The state a channel's waits share with its waiter threads.
#[derive(Default)]
struct Waits {
    /// Set by `close()` before it cancels the live tokens.
    closed: AtomicBool,
    /// Tokens of the waits in flight (queued or waiting), by wait number,
    /// for `close()`.
    live: Mutex<Vec<(u64, CancelToken)>>,
    /// The next wait number.
    next_id: std::sync::atomic::AtomicU64,
    /// Receive waits queued or in progress; while any is, a new receive
    /// queues behind it (messages go to receivers in call order).
    recv_pending: AtomicUsize,
    /// Send waits queued or in progress; while any is, a new send queues
    /// behind it (or, `send`, reports CHANNEL_FULL) so that one handle's
    /// messages keep their order.
    send_pending: AtomicUsize,
}

impl Waits {
    fn forget(&self, id: u64) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = live.iter().position(|&(n, _)| n == id) {
            live.swap_remove(i);
        }
    }
}

/// How a wait ends at the latest.
#[derive(Clone, Copy)]
struct Limit {
    /// None: no limit.
    deadline: Option<Instant>,
}

impl Limit {
    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

enum Op {
    Recv { view: bool },
    Send { data: Vec<u8>, msg_type: u32 },
}

struct Job {
    op: Op,
    channel: Channel,
    limit: Limit,
    token: CancelToken,
    id: u64,
    waits: Arc<Waits>,
    done: Deferred,
}

enum Outcome {
    Sent,
    Copied(Vec<u8>, u32),
    View(OwnedView),
}

impl Job {
    /// Waits (on the waiter thread whose state is `waiter`) and settles the
    /// promise.
    ///
    /// The core waits on the waiter's `interrupt` token, not on the job's
    /// own: an abort (of this job or of one queued behind it), a new job,
    /// or `close()` trigger it, and the wait then starts over after
    /// settling whatever queued job was aborted or ran out of time — so a
    /// queued wait's timeout and signal take effect while the one ahead
    /// of it still waits. The wait is also cut short at the earliest
    /// deadline in the queue, for the same reason.
    fn run(self, waiter: &mut Queue) {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.wait(waiter)))
            .unwrap_or_else(|_| Err(Failure::panicked("waiter thread")));
        self.settle_with(outcome);
    }

    fn wait(&self, waiter: &mut Queue) -> std::result::Result<Outcome, Failure> {
        loop {
            waiter.state.interrupt.reset();
            waiter.sweep();
            if self.waits.closed.load(Ordering::SeqCst) {
                return Err(Failure::closed());
            }
            if self.token.is_cancelled() {
                return Err(psyne::Error::Cancelled.into());
            }
            let mine = self.limit.remaining();
            let queued = waiter
                .earliest_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            let timeout = match (mine, queued) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let interrupt = waiter.state.interrupt.clone();
            let cancel = Some(&interrupt);
            let attempt = match &self.op {
                Op::Recv { view } => self.channel.recv_until(timeout, cancel).map(|g| {
                    if *view {
                        Outcome::View(OwnedView::new(&self.channel, g))
                    } else {
                        Outcome::Copied(g.to_vec(), g.msg_type())
                    }
                }),
                Op::Send { data, msg_type } => self
                    .channel
                    .send_until(data, *msg_type, timeout, cancel)
                    .map(|()| Outcome::Sent),
            };
            let mine_left = self.limit.deadline.map_or(true, |d| Instant::now() < d);
            match attempt {
                Ok(out) => return Ok(out),
                // Interrupted, or a queued job's deadline came first: go round.
                Err(psyne::Error::Cancelled) => {}
                Err(
                    psyne::Error::Timeout | psyne::Error::NoMessage | psyne::Error::ChannelFull,
                ) if mine_left => {}
                Err(psyne::Error::NoMessage | psyne::Error::ChannelFull) => {
                    return Err(psyne::Error::Timeout.into())
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Settles the promise with `failure` without waiting.
    fn fail(self, failure: Failure) {
        self.settle_with(Err(failure));
    }

    fn settle_with(self, outcome: std::result::Result<Outcome, Failure>) {
        let Job {
            op,
            channel,
            id,
            waits,
            done,
            ..
        } = self;
        let recv = matches!(op, Op::Recv { .. });
        let outcome = match outcome {
            Err(f) if f.code == -9 && waits.closed.load(Ordering::SeqCst) => Err(Failure::closed()),
            r => r,
        };
        waits.forget(id);
        if !recv {
            waits.send_pending.fetch_sub(1, Ordering::SeqCst);
        }
        drop(channel);
        done.resolve(Box::new(move |env: Env| {
            if recv {
                waits.recv_pending.fetch_sub(1, Ordering::SeqCst);
            }
            catch_unwind(AssertUnwindSafe(|| settle(&env, outcome)))
                .unwrap_or_else(|_| Err(Error::from_reason("internal panic settling a promise")))
        }));
    }

    /// Why a queued job must end before its turn, if it must.
    fn ended(&self, now: Instant) -> Option<Failure> {
        if self.waits.closed.load(Ordering::SeqCst) {
            Some(Failure::closed())
        } else if self.token.is_cancelled() {
            Some(psyne::Error::Cancelled.into())
        } else if self.limit.deadline.is_some_and(|d| now >= d) {
            Some(psyne::Error::Timeout.into())
        } else {
            None
        }
    }
}

/// The value a wait's promise resolves to: the result, or a `PsyneError`
/// (which index.js throws).
fn settle(env: &Env, result: std::result::Result<Outcome, Failure>) -> Result<JsUnknown> {
    Ok(match result {
        Ok(Outcome::Sent) => env.get_undefined()?.into_unknown(),
        Ok(Outcome::Copied(data, msg_type)) => {
            let buf = env.create_buffer_with_data(data)?.into_raw();
            message_object(env, buf, msg_type)?.into_unknown()
        }
        Ok(Outcome::View(owned)) => view_object(env, owned)?.into_unknown(),
        Err(f) => error_object(env, &f)?.into_unknown(),
    })
}

/// What a waiter thread shares with the JavaScript thread.
#[derive(Default)]
struct WaiterState {
    /// Cuts the running job's wait short (see [`Job::run`]).
    interrupt: CancelToken,
    /// A job is running.
    busy: AtomicBool,
}

/// A waiter thread's jobs: those sent to it, and those it took off the
/// channel but has not started (to look at their deadlines and tokens while
/// an earlier job waits).
struct Queue {
    incoming: crossbeam_channel::Receiver<Job>,
    waiting: std::collections::VecDeque<Job>,
    state: Arc<WaiterState>,
}

impl Queue {
    /// Takes in what was sent, then settles the waiting jobs that were
    /// aborted, ran out of time, or whose handle was closed.
    fn sweep(&mut self) {
        while let Ok(job) = self.incoming.try_recv() {
            self.waiting.push_back(job);
        }
        if self.waiting.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.waiting.len() {
            match self.waiting[i].ended(now) {
                Some(f) => {
                    if let Some(job) = self.waiting.remove(i) {
                        job.fail(f);
                    }
                }
                None => i += 1,
            }
        }
    }

    /// The earliest deadline of a waiting job (after a `sweep`).
    fn earliest_deadline(&self) -> Option<Instant> {
        self.waiting.iter().filter_map(|j| j.limit.deadline).min()
    }

    /// The next job: polled for up to `spin` (the channel's own polling
    /// budget, so that the next `recv` of a request/reply loop is taken
    /// without a thread wake-up), then waited for. None once the handle is
    /// gone and every job is done.
    fn next(&mut self, spin: Duration) -> Option<Job> {
        if let Some(job) = self.waiting.pop_front() {
            return Some(job);
        }
        let since = Instant::now();
        loop {
            match self.incoming.try_recv() {
                Ok(job) => return Some(job),
                Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
                Err(crossbeam_channel::TryRecvError::Empty) if since.elapsed() >= spin => {
                    return self.incoming.recv().ok()
                }
                Err(crossbeam_channel::TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
    }
}

/// A waiter thread: runs its direction's waits one after another.
struct Waiter {
    jobs: crossbeam_channel::Sender<Job>,
    state: Arc<WaiterState>,
}

impl Waiter {
    fn start(name: &str, spin: Duration) -> std::result::Result<Waiter, Failure> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let state = Arc::new(WaiterState::default());
        let mut queue = Queue {
            incoming: rx,
            waiting: Default::default(),
            state: state.clone(),
        };
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Some(job) = queue.next(spin) {
                    queue.state.busy.store(true, Ordering::SeqCst);
                    job.run(&mut queue);
                    queue.state.busy.store(false, Ordering::SeqCst);
                }
            })
            .map_err(|e| Failure {
                code: -7,
                message: format!("I/O error: could not start a waiter thread: {e}"),
            })?;
        Ok(Waiter { jobs: tx, state })
    }

    fn push(&self, job: Job) {
        if let Err(crossbeam_channel::SendError(job)) = self.jobs.send(job) {
            // The thread is gone: it never ends while the sender lives, so
            // only a panic outside a job could end it.
            job.fail(Failure::panicked("waiter thread ended"));
            return;
        }
        if self.state.busy.load(Ordering::SeqCst) {
            // The running wait must take the new job's deadline into account.
            self.state.interrupt.cancel();
        }
    }

    /// Makes the running wait look at its queue again (an abort).
    fn wake(&self) {
        self.state.interrupt.cancel();
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // Dropping `jobs` disconnects the thread's queue: it ends once the
        // jobs it has are settled (as closed: the handle sets that first).
        self.state.interrupt.cancel();
    }
}

/// A cancellation token for one wait (JavaScript: made for an `AbortSignal`).
#[napi]
pub struct NativeCancel {
    token: CancelToken,
}

#[napi]
impl NativeCancel {
    #[napi(constructor, catch_unwind)]
    pub fn new() -> NativeCancel {
        NativeCancel {
            token: CancelToken::new(),
        }
    }

    /// Cancels the wait: its promise settles with CANCELLED.
    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.token.cancel();
    }
}

impl Default for NativeCancel {
    fn default() -> Self {
        NativeCancel::new()
    }
}

// ---- the channel ------------------------------------------------------------

/// Compression settings (JavaScript: `{ type, level, minSizeThreshold, enableChecksum }`
/// with `type` already turned into its C value by index.js).
#[napi(object)]
pub struct NativeCompression {
    pub kind: u32,
    pub level: i32,
    pub min_size_threshold: f64,
    pub enable_checksum: bool,
}

/// Open options, validated and turned into C values by index.js.
#[napi(object)]
pub struct NativeOptions {
    pub buffer_size: f64,
    pub mode: u32,
    pub channel_type: u32,
    pub compression: Option<NativeCompression>,
    /// Microseconds.
    pub spin: Option<f64>,
    pub metrics: Option<bool>,
}

/// A channel's counters.
#[napi(object)]
pub struct NativeMetrics {
    pub messages_sent: f64,
    pub bytes_sent: f64,
    pub messages_received: f64,
    pub bytes_received: f64,
    pub send_blocks: f64,
    pub receive_blocks: f64,
    pub wire_bytes_sent: f64,
    pub wire_bytes_received: f64,
    pub messages_compressed: f64,
    pub checksum_failures: f64,
    pub frames_refused: f64,
    pub connects: f64,
    pub reconnects: f64,
    pub peers: f64,
    pub queued_bytes: f64,
    pub high_water_bytes: f64,
}

/// A channel handle, held by JavaScript as an `External` (index.js:
/// `Channel`). Its functions are free functions over the External, not
/// class methods: a napi-rs class method call costs several times a
/// function call with an External argument, as much as the rest of a
/// `send` (figures in docs/NODE.md, Performance).
pub struct NativeChannel {
    /// None once closed.
    channel: Option<Channel>,
    waits: Arc<Waits>,
    recv_waiter: Option<Waiter>,
    send_waiter: Option<Waiter>,
}

/// A size from JavaScript: a whole number of bytes.
fn size_arg(what: &str, v: f64) -> std::result::Result<usize, Failure> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= (1u64 << 53) as f64 {
        Ok(v as usize)
    } else {
        Err(Failure::invalid(format!(
            "{what} must be a whole number of bytes >= 0 (got {v})"
        )))
    }
}

/// A timeout from JavaScript (milliseconds; None or Infinity: no limit).
fn limit_arg(timeout_ms: Option<f64>) -> std::result::Result<Limit, Failure> {
    match timeout_ms {
        None => Ok(Limit { deadline: None }),
        Some(t) if t == f64::INFINITY => Ok(Limit { deadline: None }),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Limit {
            deadline: Some(Instant::now() + Duration::from_secs_f64(t / 1000.0)),
        }),
        Some(t) => Err(Failure::invalid(format!(
            "timeout must be a number of milliseconds >= 0 (got {t})"
        ))),
    }
}

impl NativeChannel {
    /// Opens `uri`; `buffer_size` 0 attaches to an existing memory/ipc channel.
    fn new(env: Env, uri: String, options: NativeOptions) -> Result<NativeChannel> {
        let open = || -> std::result::Result<Channel, Failure> {
            let mut b = Channel::builder(uri)
                .buffer_size(size_arg("bufferSize", options.buffer_size)?)
                .mode(Mode::from_raw(options.mode.into())?)
                .channel_type(ChannelType::from_raw(options.channel_type.into())?);
            if let Some(c) = options.compression {
                b = b.compression(CompressionConfig {
                    kind: CompressionType::from_raw(c.kind.into())?,
                    level: c.level,
                    min_size_threshold: size_arg(
                        "compression.minSizeThreshold",
                        c.min_size_threshold,
                    )?,
                    enable_checksum: c.enable_checksum,
                });
            }
            if let Some(us) = options.spin {
                b = b.spin(Duration::from_micros(size_arg("spin", us)? as u64));
            }
            if let Some(on) = options.metrics {
                b = b.metrics(on);
            }
            Ok(b.build()?)
        };
        let channel = open().map_err(|f| throw(&env, f))?;
        Ok(NativeChannel {
            channel: Some(channel),
            waits: Arc::default(),
            recv_waiter: None,
            send_waiter: None,
        })
    }

    fn open(&self, env: &Env) -> Result<&Channel> {
        self.channel
            .as_ref()
            .ok_or_else(|| throw(env, Failure::closed()))
    }

    /// Sends a copy of `data`; never waits (CHANNEL_FULL when full, or while
    /// a `sendAsync` of this handle is still waiting).
    pub fn send(&self, env: Env, data: &[u8], msg_type: u32) -> Result<()> {
        let ch = self.open(&env)?;
        if self.waits.send_pending.load(Ordering::SeqCst) > 0 {
            return Err(throw(&env, psyne::Error::ChannelFull.into()));
        }
        ch.try_send(data, msg_type)
            .map_err(|e| throw(&env, e.into()))
    }

    /// Sends, waiting for room: undefined when sent at once, else a promise
    /// of undefined or of a `PsyneError`.
    pub fn send_async(
        &mut self,
        env: Env,
        data: &[u8],
        msg_type: u32,
        timeout_ms: Option<f64>,
        cancel: Option<&NativeCancel>,
    ) -> Result<JsUnknown> {
        let limit = limit_arg(timeout_ms).map_err(|f| throw(&env, f))?;
        let ch = self.open(&env)?.clone();
        if self.waits.send_pending.load(Ordering::SeqCst) == 0 {
            match ch.try_send(data, msg_type) {
                Ok(()) => return Ok(env.get_undefined()?.into_unknown()),
                Err(psyne::Error::ChannelFull) if limit.remaining() != Some(Duration::ZERO) => {}
                Err(e) => return Err(throw(&env, e.into())),
            }
        }
        if limit.remaining() == Some(Duration::ZERO) {
            // Told not to wait, behind a send that waits.
            return Err(throw(&env, psyne::Error::ChannelFull.into()));
        }
        let op = Op::Send {
            data: data.to_vec(),
            msg_type,
        };
        self.enqueue(&env, ch, op, limit, cancel)
    }

    /// The next message copied out of the ring, or null when none is queued
    /// (or a `recv` of this handle is waiting for one).
    ///
    /// Small messages are copied into `pool` at `offset` (index.js keeps a
    /// pool Buffer and hands out slices of it, as Node's `Buffer.allocUnsafe`
    /// does): a separate ArrayBuffer per message costs several times the
    /// copy. Then the result is a number, `len * 2^32 + type` (exact in a
    /// double: `len` fits the pool's few KiB). A message larger than the
    /// room left at `offset` comes back as `{ data, type }` with a Buffer of
    /// its own.
    pub fn try_recv(&self, env: Env, pool: JsBuffer, offset: u32) -> Result<JsUnknown> {
        let ch = self.open(&env)?;
        if self.waits.recv_pending.load(Ordering::SeqCst) > 0 {
            return Ok(env.get_null()?.into_unknown());
        }
        match ch.try_recv() {
            Ok(g) => {
                let mut pool = pool.into_value()?;
                let room = pool.len().saturating_sub(offset as usize);
                if g.len() <= room && g.len() < 1 << 20 {
                    let at = offset as usize;
                    pool[at..at + g.len()].copy_from_slice(&g);
                    let packed = g.len() as f64 * 4_294_967_296.0 + f64::from(g.msg_type());
                    return Ok(env.create_double(packed)?.into_unknown());
                }
                let buf = env.create_buffer_copy(&g[..])?.into_raw();
                Ok(message_object(&env, buf, g.msg_type())?.into_unknown())
            }
            Err(psyne::Error::NoMessage) => Ok(env.get_null()?.into_unknown()),
            Err(e) => Err(throw(&env, e.into())),
        }
    }

    /// Like `try_recv`, but a zero-copy view.
    pub fn try_recv_view(&self, env: Env) -> Result<Option<JsObject>> {
        let ch = self.open(&env)?;
        if self.waits.recv_pending.load(Ordering::SeqCst) > 0 {
            return Ok(None);
        }
        match ch.try_recv() {
            Ok(g) => Ok(Some(view_object(&env, OwnedView::new(ch, g))?)),
            Err(psyne::Error::NoMessage) => Ok(None),
            Err(e) => Err(throw(&env, e.into())),
        }
    }

    /// Receives, waiting: the message object when one is queued, else a
    /// promise of it or of a `PsyneError`.
    pub fn recv(
        &mut self,
        env: Env,
        view: bool,
        timeout_ms: Option<f64>,
        cancel: Option<&NativeCancel>,
    ) -> Result<JsUnknown> {
        let limit = limit_arg(timeout_ms).map_err(|f| throw(&env, f))?;
        let ch = self.open(&env)?.clone();
        if self.waits.recv_pending.load(Ordering::SeqCst) == 0 {
            match ch.try_recv() {
                Ok(g) if view => {
                    return Ok(view_object(&env, OwnedView::new(&ch, g))?.into_unknown())
                }
                Ok(g) => {
                    let buf = env.create_buffer_copy(&g[..])?.into_raw();
                    return Ok(message_object(&env, buf, g.msg_type())?.into_unknown());
                }
                Err(psyne::Error::NoMessage) if limit.remaining() != Some(Duration::ZERO) => {}
                Err(e) => return Err(throw(&env, e.into())),
            }
        }
        if limit.remaining() == Some(Duration::ZERO) {
            // Told not to wait, behind a receive that waits.
            return Err(throw(&env, psyne::Error::NoMessage.into()));
        }
        self.enqueue(&env, ch, Op::Recv { view }, limit, cancel)
    }

    fn enqueue(
        &mut self,
        env: &Env,
        channel: Channel,
        op: Op,
        limit: Limit,
        cancel: Option<&NativeCancel>,
    ) -> Result<JsUnknown> {
        let token = cancel.map_or_else(CancelToken::new, |c| c.token.clone());
        let recv = matches!(op, Op::Recv { .. });
        let slot = if recv {
            &mut self.recv_waiter
        } else {
            &mut self.send_waiter
        };
        if slot.is_none() {
            let name = if recv {
                "psyne-node-recv"
            } else {
                "psyne-node-send"
            };
            *slot = Some(Waiter::start(name, channel.spin()).map_err(|f| throw(env, f))?);
        }
        let (done, promise) = env.create_deferred::<JsUnknown, Settle>()?;
        let id = self.waits.next_id.fetch_add(1, Ordering::Relaxed);
        self.waits
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, token.clone()));
        let pending = if recv {
            &self.waits.recv_pending
        } else {
            &self.waits.send_pending
        };
        pending.fetch_add(1, Ordering::SeqCst);
        let job = Job {
            op,
            channel,
            limit,
            token,
            id,
            waits: self.waits.clone(),
            done,
        };
        if let Some(w) = slot.as_ref() {
            w.push(job);
        }
        Ok(promise.into_unknown())
    }

    /// Reserves `size` bytes in the ring; never waits.
    pub fn reserve(&self, env: Env, size: f64) -> Result<JsObject> {
        let ch = self.open(&env)?;
        let size = size_arg("size", size).map_err(|f| throw(&env, f))?;
        if self.waits.send_pending.load(Ordering::SeqCst) > 0 {
            return Err(throw(&env, psyne::Error::ChannelFull.into()));
        }
        let mut g = ch.try_reserve(size).map_err(|e| throw(&env, e.into()))?;
        let ptr = g.as_mut_ptr();
        let len = g.len();
        let shelf: Shelf<OwnedReservation> =
            Rc::new(RefCell::new(Some(OwnedReservation::new(ch, g))));
        // SAFETY: the bytes belong to the reservation on `shelf`;
        // `NativeReservation` detaches the Buffer before it takes the guard,
        // and the finalizer cancels only once the Buffer is gone.
        let data = unsafe { ring_buffer(&env, ptr, len, &shelf) }?;
        let res = NativeReservation {
            shelf,
            ptr: ptr as usize,
        };
        let mut obj = env.create_object()?;
        obj.set_named_property("data", data)?;
        obj.set_named_property("reservation", External::new(res))?;
        Ok(obj)
    }

    /// Stops the channel (every handle on it): waits wake, sends fail with
    /// CHANNEL_STOPPED, receivers drain what is queued first.
    pub fn stop(&self, env: Env) -> Result<()> {
        self.open(&env)?.stop();
        Ok(())
    }

    pub fn stopped(&self, env: Env) -> Result<bool> {
        Ok(self.open(&env)?.is_stopped())
    }

    /// Closes this handle: waits in flight settle with CHANNEL_STOPPED
    /// ("channel is closed"), the waiter threads end, the handle's share of
    /// the channel is dropped (views and reservations still held keep the
    /// ring until they are released). Idempotent.
    pub fn close(&mut self) {
        self.shut();
    }

    pub fn closed(&self) -> bool {
        self.channel.is_none()
    }

    /// Makes running waits look at their queues again (an `AbortSignal`
    /// fired: its wait may be queued behind another).
    fn wake(&self) {
        for w in [&self.recv_waiter, &self.send_waiter].into_iter().flatten() {
            w.wake();
        }
    }

    fn shut(&mut self) {
        if self.channel.is_none() {
            return;
        }
        self.waits.closed.store(true, Ordering::SeqCst);
        for t in self
            .waits
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            t.1.cancel();
        }
        // Dropping the senders ends the threads once their queues are done.
        self.recv_waiter = None;
        self.send_waiter = None;
        self.channel = None;
    }

    pub fn metrics(&self, env: Env) -> Result<NativeMetrics> {
        let m = self.open(&env)?.metrics();
        Ok(NativeMetrics {
            messages_sent: m.messages_sent as f64,
            bytes_sent: m.bytes_sent as f64,
            messages_received: m.messages_received as f64,
            bytes_received: m.bytes_received as f64,
            send_blocks: m.send_blocks as f64,
            receive_blocks: m.receive_blocks as f64,
            wire_bytes_sent: m.wire_bytes_sent as f64,
            wire_bytes_received: m.wire_bytes_received as f64,
            messages_compressed: m.messages_compressed as f64,
            checksum_failures: m.checksum_failures as f64,
            frames_refused: m.frames_refused as f64,
            connects: m.connects as f64,
            reconnects: m.reconnects as f64,
            peers: m.peers as f64,
            queued_bytes: m.queued_bytes as f64,
            high_water_bytes: m.high_water_bytes as f64,
        })
    }

    pub fn reset_metrics(&self, env: Env) -> Result<()> {
        self.open(&env)?.reset_metrics();
        Ok(())
    }

    pub fn uri(&self, env: Env) -> Result<String> {
        Ok(self.open(&env)?.uri().to_owned())
    }

    pub fn buffer_size(&self, env: Env) -> Result<f64> {
        Ok(self.open(&env)?.buffer_size() as f64)
    }

    pub fn max_message_size(&self, env: Env) -> Result<f64> {
        Ok(self.open(&env)?.max_message_size() as f64)
    }

    /// A socket end's address (`HOST:PORT` or path), else null.
    pub fn local_address(&self, env: Env) -> Result<Option<String>> {
        Ok(self.open(&env)?.local_addr())
    }

    /// The last protocol violation or close reason on a socket end.
    pub fn last_peer_error(&self, env: Env) -> Result<Option<String>> {
        Ok(self.open(&env)?.last_peer_error())
    }
}

impl Drop for NativeChannel {
    fn drop(&mut self) {
        // A channel object collected (or torn down with its environment)
        // without close(): the same clean-up.
        let _ = catch_unwind(AssertUnwindSafe(|| self.shut()));
    }
}

// ---- the functions index.js calls on a channel --------------------------------

type Handle = External<NativeChannel>;

/// Opens `uri` (`buffer_size` 0 attaches to an existing memory/ipc channel).
#[napi(catch_unwind)]
pub fn channel_open(env: Env, uri: String, options: NativeOptions) -> Result<Handle> {
    NativeChannel::new(env, uri, options).map(External::new)
}

/// Sends a copy of `data`; never waits (CHANNEL_FULL when full, or while a
/// `sendAsync` of this handle is still waiting).
#[napi(catch_unwind)]
pub fn channel_send(env: Env, ch: Handle, data: &[u8], msg_type: u32) -> Result<()> {
    ch.send(env, data, msg_type)
}

/// Sends, waiting for room: undefined when sent at once, else a promise of
/// undefined or of a `PsyneError`.
#[napi(catch_unwind)]
pub fn channel_send_async(
    env: Env,
    mut ch: Handle,
    data: &[u8],
    msg_type: u32,
    timeout_ms: Option<f64>,
    cancel: Option<&NativeCancel>,
) -> Result<JsUnknown> {
    ch.send_async(env, data, msg_type, timeout_ms, cancel)
}

/// See [`NativeChannel::try_recv`].
#[napi(catch_unwind)]
pub fn channel_try_recv(env: Env, ch: Handle, pool: JsBuffer, offset: u32) -> Result<JsUnknown> {
    ch.try_recv(env, pool, offset)
}

/// The next message as a zero-copy view `{ data, type, view }`, or null.
#[napi(catch_unwind)]
pub fn channel_try_recv_view(env: Env, ch: Handle) -> Result<Option<JsObject>> {
    ch.try_recv_view(env)
}

/// Receives (a copy, or a view), waiting: the message when one is queued,
/// else a promise of it or of a `PsyneError`.
#[napi(catch_unwind)]
pub fn channel_recv(
    env: Env,
    mut ch: Handle,
    view: bool,
    timeout_ms: Option<f64>,
    cancel: Option<&NativeCancel>,
) -> Result<JsUnknown> {
    ch.recv(env, view, timeout_ms, cancel)
}

/// Reserves `size` bytes in the ring: `{ data, reservation }`; never waits.
#[napi(catch_unwind)]
pub fn channel_reserve(env: Env, ch: Handle, size: f64) -> Result<JsObject> {
    ch.reserve(env, size)
}

/// Stops the channel (every handle on it).
#[napi(catch_unwind)]
pub fn channel_stop(env: Env, ch: Handle) -> Result<()> {
    ch.stop(env)
}

/// Wakes the handle's running waits to look at their queues (index.js
/// calls it when an `AbortSignal` fires, after cancelling the wait's token).
#[napi(catch_unwind)]
pub fn channel_wake(ch: Handle) {
    ch.wake();
}

/// Closes this handle. Idempotent.
#[napi(catch_unwind)]
pub fn channel_close(mut ch: Handle) {
    ch.close();
}

#[napi(catch_unwind)]
pub fn channel_closed(ch: Handle) -> bool {
    ch.closed()
}

#[napi(catch_unwind)]
pub fn channel_stopped(env: Env, ch: Handle) -> Result<bool> {
    ch.stopped(env)
}

#[napi(catch_unwind)]
pub fn channel_metrics(env: Env, ch: Handle) -> Result<NativeMetrics> {
    ch.metrics(env)
}

#[napi(catch_unwind)]
pub fn channel_reset_metrics(env: Env, ch: Handle) -> Result<()> {
    ch.reset_metrics(env)
}

#[napi(catch_unwind)]
pub fn channel_uri(env: Env, ch: Handle) -> Result<String> {
    ch.uri(env)
}

#[napi(catch_unwind)]
pub fn channel_buffer_size(env: Env, ch: Handle) -> Result<f64> {
    ch.buffer_size(env)
}

#[napi(catch_unwind)]
pub fn channel_max_message_size(env: Env, ch: Handle) -> Result<f64> {
    ch.max_message_size(env)
}

#[napi(catch_unwind)]
pub fn channel_local_address(env: Env, ch: Handle) -> Result<Option<String>> {
    ch.local_address(env)
}

#[napi(catch_unwind)]
pub fn channel_last_peer_error(env: Env, ch: Handle) -> Result<Option<String>> {
    ch.last_peer_error(env)
}
