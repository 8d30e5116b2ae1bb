//! `tcp://`, `unix://` and `ws://`: a channel end on stream sockets,
//! speaking the protocol of `docs/PROTOCOL.md` (`crate::wire`); on ws the
//! same bytes travel in WebSocket messages (`ws.rs`).
//!
//! A socket end is two local rings and an I/O driver. Senders claim and
//! commit in the **send ring** exactly as on `memory://`; a writer thread per
//! connection takes runs of messages out of it and writes them, headers and
//! payloads straight from the ring, with one vectored write per run. A
//! reader thread per connection reads frames into the **receive ring** (many
//! small frames per `read`, large ones straight into the ring), where
//! receivers get views exactly as on `memory://`. Reservations, views,
//! blocking, timeouts, cancel, stop and metrics are therefore the ring's own.
//!
//! Threads, not an async runtime: the rings wake their waiters through
//! futexes, so whatever waits on a ring is a thread; an event loop in
//! between would add a hand-off (a wake-up, about 0.5 ms at worst on these
//! VMs) to every message it does not already batch.
//!
//! | end | send ring (user → writers) | receive ring (readers → user) |
//! |---|---|---|
//! | connector | one writer (the connection thread) | one reader |
//! | listener | one writer per peer, competing: each message goes to a peer that has room | one reader per peer (multi-producer) |
//! | listener, `broadcast=on` | one writer thread writing every run to every peer | one reader per peer |
//!
//! Backpressure is end to end: a full receive ring stops its reader, the
//! kernel buffers fill, the peer's writer blocks, its send ring fills, and
//! its senders get `CHANNEL_FULL` or wait. Nothing queues without bound.

mod conn;
mod socket;
mod ws;

use self::conn::{Ended, Peer, Reader, Run};
use self::socket::{Address, Listener, Stream};
use super::{Opened, Shared, WireCounters};
use crate::config::{Endpoint, NetOptions, Role};
use crate::error::{Error, Result};
use crate::mode::{ChannelType, Mode};
use crate::ring::layout::capacity_for;
use crate::ring::wait::{CancelToken, WaitLimit};
use crate::ring::Ring;
use crate::wire::{Hello, Kind, Side, Violation};
use parking_lot::{Condvar, Mutex};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Stack of the driver's threads: they hold little (buffers are on the heap).
const THREAD_STACK: usize = 256 * 1024;
/// First wait of a connector's backoff.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Wait after `accept` failed for want of file descriptors or memory.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Smallest ring of a socket end: its largest message (half of it, minus
/// 16) must reach the protocol's minimum `max_frame` of 64 bytes.
const MIN_RING: usize = 256;
/// A connection that lasts this long resets the connector's backoff.
const HEALTHY: Duration = Duration::from_secs(1);
/// Longest a connect attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The driver's counters (`Metrics` beyond the rings' own).
#[derive(Default)]
pub(crate) struct Counters {
    pub wire_bytes_sent: AtomicU64,
    pub wire_bytes_received: AtomicU64,
    pub messages_compressed: AtomicU64,
    pub checksum_failures: AtomicU64,
    pub frames_refused: AtomicU64,
    pub connects: AtomicU64,
    pub reconnects: AtomicU64,
    pub peers: AtomicU64,
}

/// What every thread of one socket end shares.
pub(crate) struct NetEnd {
    tx: Arc<Shared>,
    rx: Arc<Shared>,
    opts: NetOptions,
    addr: Address,
    /// ws: the request path; each connection is upgraded before its HELLO.
    ws_path: Option<String>,
    single_type: bool,
    /// How long the driver's ring waits poll before sleeping: not at all.
    /// Its threads come on top of the application's, and polling ones took
    /// the CPUs from the very threads they waited for (docs/PERFORMANCE-NET.md).
    spin: Duration,
    counters: Counters,
    last_error: Mutex<Option<String>>,
    /// Set by stop and by drop: no new connections, no reconnects.
    closing: AtomicBool,
    /// Every handshaken connection, for broadcast and for shutting down.
    peers: Mutex<Vec<Arc<Peer>>>,
    /// Every open connection, handshaken or not (listener: bounded by
    /// `max_peers`), and their sockets for shutdown.
    conns: Mutex<Vec<(u64, Stream)>>,
    next_conn: AtomicU64,
    /// Backoff sleeps and the broadcast writer's wait for a peer.
    nap: (Mutex<()>, Condvar),
    listener: Option<Listener>,
}

impl NetEnd {
    /// Our HELLO, as `side`.
    fn hello(&self, side: Side) -> Hello {
        Hello {
            side,
            mode: self.tx.mode as u8,
            channel_type: self.tx.channel_type as u8,
            checksums: self.opts.codec.enable_checksum,
            max_frame: self.max_frame(),
            decoders: crate::wire::DECODERS,
        }
    }

    /// The largest frame we accept: what the receive ring holds.
    fn max_frame(&self) -> u32 {
        self.rx.ring.max_message().min(u32::MAX as usize) as u32
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Relaxed)
    }

    /// Records why a connection ended (or a frame was dropped).
    fn note(&self, reason: String) {
        *self.last_error.lock() = Some(reason);
    }

    /// Counts a refused frame or handshake and keeps the reason.
    fn refused(&self, reason: String) {
        self.counters.frames_refused.fetch_add(1, Relaxed);
        self.note(reason);
    }

    /// Sleeps up to `d`, or until the end closes.
    fn nap(&self, d: Duration) {
        let mut g = self.nap.0.lock();
        if !self.is_closing() {
            self.nap.1.wait_for(&mut g, d);
        }
    }

    fn wake_nappers(&self) {
        let _g = self.nap.0.lock();
        self.nap.1.notify_all();
    }

    fn limit<'a>(&self, cancel: &'a CancelToken) -> WaitLimit<'a> {
        WaitLimit {
            timeout: None,
            cancel: Some(cancel),
            spin: self.spin,
        }
    }

    /// Registers an open connection's socket (for shutdown). `Ok(None)`:
    /// the end is closing; `Err`: no descriptor for the clone.
    fn register(&self, stream: &Stream) -> io::Result<Option<u64>> {
        let clone = stream.try_clone()?;
        let mut conns = self.conns.lock();
        if self.is_closing() {
            return Ok(None);
        }
        let id = self.next_conn.fetch_add(1, Relaxed);
        conns.push((id, clone));
        Ok(Some(id))
    }

    fn unregister(&self, id: u64) {
        self.conns.lock().retain(|(i, _)| *i != id);
    }

    /// Ends everything: no new connections; every socket shut down, which
    /// wakes the threads blocked on them.
    fn close_all(&self) {
        self.closing.store(true, Relaxed);
        if let Some(l) = &self.listener {
            l.shutdown();
        }
        for (_, s) in self.conns.lock().iter() {
            s.shutdown();
        }
        self.wake_nappers();
    }
}

/// A socket end's I/O driver: owns its threads; dropping it closes every
/// socket and joins them.
pub(crate) struct Driver {
    end: Arc<NetEnd>,
    threads: Vec<JoinHandle<()>>,
}

impl Driver {
    pub(crate) fn counters(&self) -> WireCounters {
        let c = &self.end.counters;
        WireCounters {
            wire_bytes_sent: c.wire_bytes_sent.load(Relaxed),
            wire_bytes_received: c.wire_bytes_received.load(Relaxed),
            messages_compressed: c.messages_compressed.load(Relaxed),
            checksum_failures: c.checksum_failures.load(Relaxed),
            frames_refused: c.frames_refused.load(Relaxed),
            connects: c.connects.load(Relaxed),
            reconnects: c.reconnects.load(Relaxed),
            peers: c.peers.load(Relaxed),
        }
    }

    pub(crate) fn reset_counters(&self) {
        let c = &self.end.counters;
        for a in [
            &c.wire_bytes_sent,
            &c.wire_bytes_received,
            &c.messages_compressed,
            &c.checksum_failures,
            &c.frames_refused,
            &c.connects,
            &c.reconnects,
        ] {
            a.store(0, Relaxed);
        }
    }

    /// The channel was stopped: accept and reconnect no more. The writers
    /// send what is queued, then close their connections.
    pub(crate) fn stop(&self) {
        self.end.closing.store(true, Relaxed);
        if let Some(l) = &self.end.listener {
            l.shutdown();
        }
        self.end.wake_nappers();
    }

    pub(crate) fn local_addr(&self) -> String {
        match (&self.end.listener, &self.end.addr) {
            (Some(l), _) => l.local_addr(),
            (None, Address::Tcp { host, port }) => format!("{host}:{port}"),
            (None, Address::Unix { path }) => path.display().to_string(),
        }
    }

    pub(crate) fn last_peer_error(&self) -> Option<String> {
        self.end.last_error.lock().clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Linger: messages already sent get up to `linger` to go out while a
        // peer is connected (handed to the kernel, not acknowledged).
        let end = &self.end;
        let deadline = std::time::Instant::now() + end.opts.linger;
        while end.tx.ring.used_bytes() > 0
            && end.counters.peers.load(Relaxed) > 0
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.end.tx.ring.stop();
        self.end.rx.ring.stop();
        self.end.close_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Opens a socket end: binds a listener at once (so that a taken port is
/// an error here), or starts connecting in the background.
pub(crate) fn open(
    endpoint: &Endpoint,
    buffer_size: usize,
    mode: Mode,
    channel_type: ChannelType,
    opts: &NetOptions,
) -> Result<Opened> {
    let role = match endpoint {
        Endpoint::Tcp { role, .. } | Endpoint::Unix { role, .. } | Endpoint::Ws { role, .. } => {
            *role
        }
        _ => unreachable!("net::open is only called for stream sockets"),
    };
    if buffer_size == 0 {
        return Err(Error::invalid(
            "a socket end needs a ring size (0 attaches only on memory:// and ipc://)",
        ));
    }
    if opts.broadcast && role == Role::Connect {
        return Err(Error::invalid(
            "broadcast applies to listeners (a connector has one peer)",
        ));
    }
    // At least MIN_RING, so that the largest frame we accept is at least
    // the protocol's minimum `max_frame`.
    let capacity = capacity_for(buffer_size.max(MIN_RING)).ok_or_else(|| {
        Error::invalid(format!(
            "buffer size {buffer_size} is larger than the maximum of {} bytes",
            crate::ring::layout::MAX_CAPACITY
        ))
    })?;
    let addr = Address::from_endpoint(endpoint);
    let ws_path = match endpoint {
        Endpoint::Ws {
            host, port, path, ..
        } => {
            ws::request_uri(host, *port, path).map_err(Error::invalid)?;
            Some(path.clone())
        }
        _ => None,
    };
    let listener = match role {
        Role::Listen => Some(Listener::bind(&addr)?),
        Role::Connect => None,
    };
    let listening = role == Role::Listen;
    // The driver's side of each ring: several writers compete on a
    // listener's send ring (unless one broadcasts), several readers fill
    // its receive ring.
    let tx_mode = Mode::from_sides(mode.multi_producer(), listening && !opts.broadcast);
    let rx_mode = Mode::from_sides(listening, mode.multi_consumer());
    let tx = Arc::new(Shared::new(
        Ring::new_heap(capacity, tx_mode)?,
        mode,
        channel_type,
    ));
    let rx = Arc::new(Shared::new(
        Ring::new_heap(capacity, rx_mode)?,
        mode,
        channel_type,
    ));
    let end = Arc::new(NetEnd {
        tx: tx.clone(),
        rx: rx.clone(),
        opts: opts.clone(),
        addr,
        ws_path,
        single_type: channel_type == ChannelType::Single,
        spin: Duration::ZERO,
        counters: Counters::default(),
        last_error: Mutex::new(None),
        closing: AtomicBool::new(false),
        peers: Mutex::new(Vec::new()),
        conns: Mutex::new(Vec::new()),
        next_conn: AtomicU64::new(0),
        nap: (Mutex::new(()), Condvar::new()),
        listener,
    });
    let mut driver = Driver {
        end: end.clone(),
        threads: Vec::new(),
    };
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .stack_size(THREAD_STACK)
            .spawn(f)
            .map_err(|e| Error::io("starting the socket driver's thread", e))
    };
    // On an error below, dropping `driver` stops what was started.
    match role {
        Role::Listen => {
            let e = end.clone();
            driver
                .threads
                .push(spawn("psyne-accept", Box::new(move || accept_loop(&e)))?);
            if opts.broadcast {
                let e = end.clone();
                driver.threads.push(spawn(
                    "psyne-broadcast",
                    Box::new(move || broadcast_loop(&e)),
                )?);
            }
        }
        Role::Connect => {
            let e = end.clone();
            driver
                .threads
                .push(spawn("psyne-connect", Box::new(move || connect_loop(&e)))?);
        }
    }
    Ok(Opened {
        tx,
        rx,
        driver: Some(driver),
    })
}

fn spawn_peer_thread(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(THREAD_STACK)
        .spawn(f)
}

/// Accepts peers until the end closes; each gets a thread of its own.
fn accept_loop(end: &Arc<NetEnd>) {
    let listener = end
        .listener
        .as_ref()
        .expect("a listener end has a listener");
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !end.is_closing() {
        let stream = match listener.accept() {
            Ok(s) => s,
            Err(_) if end.is_closing() => break,
            Err(e) => {
                // Out of descriptors or memory: counted, and retried after
                // a pause rather than in a busy loop. Anything else (a
                // connection reset before we took it) is the peer's.
                let scarce = matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                );
                end.note(format!("accept failed: {e}"));
                end.nap(if scarce { ACCEPT_PAUSE } else { BACKOFF_MIN });
                continue;
            }
        };
        threads.retain(|t| !t.is_finished());
        if end.conns.lock().len() >= end.opts.max_peers {
            refuse_peer(end, &stream);
            continue;
        }
        let id = match end.register(&stream) {
            Ok(Some(id)) => id,
            Ok(None) => break, // closing
            Err(e) => {
                end.note(format!("dropped a new peer: {e}"));
                end.nap(ACCEPT_PAUSE);
                continue;
            }
        };
        let e = end.clone();
        let spawned = spawn_peer_thread("psyne-peer", move || {
            serve(&e, stream, Side::Listener);
            e.unregister(id);
        });
        match spawned {
            Ok(t) => threads.push(t),
            Err(err) => {
                // The closure (and the stream) were dropped: closed.
                end.unregister(id);
                end.note(format!("no thread for a new peer: {err}"));
                end.nap(ACCEPT_PAUSE);
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
}

/// One peer too many: our HELLO, a `too-many-peers` CLOSE, and closed.
fn refuse_peer(end: &NetEnd, stream: &Stream) {
    let v = Violation::new(
        Kind::TooManyPeers,
        format!("this listener takes at most {} peers", end.opts.max_peers),
    );
    if let Some(path) = &end.ws_path {
        ws::refuse(end, path, stream, &v);
        end.refused(v.to_string());
        return;
    }
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = stream.write_all(&end.hello(Side::Listener).encode());
    conn::send_close(stream, &Mutex::new(()), &v);
    stream.shutdown();
    end.refused(v.to_string());
}

/// Connects, serves the connection, and reconnects with bounded
/// exponential backoff, until the end closes.
fn connect_loop(end: &Arc<NetEnd>) {
    let mut backoff = BACKOFF_MIN;
    while !end.is_closing() && !end.tx.ring.is_stopped() {
        match socket::connect(
            &end.addr,
            CONNECT_TIMEOUT.min(end.opts.handshake_timeout.max(BACKOFF_MIN)),
        ) {
            Ok(stream) => match end.register(&stream) {
                Ok(Some(id)) => {
                    // A connection that lasted starts the backoff afresh; one
                    // turned away at once (a full listener) keeps backing off.
                    let began = std::time::Instant::now();
                    if serve(end, stream, Side::Connector) && began.elapsed() >= HEALTHY {
                        backoff = BACKOFF_MIN;
                    }
                    end.unregister(id);
                }
                Ok(None) => break, // closing
                Err(e) => end.note(format!("connecting: {e}")),
            },
            Err(e) => {
                let mut last = end.last_error.lock();
                if last.is_none() {
                    *last = Some(format!("connecting: {e}"));
                }
            }
        }
        if end.is_closing() {
            break;
        }
        end.nap(backoff);
        backoff = (backoff * 2).min(end.opts.reconnect_max);
    }
}

/// Runs one connection to its end: handshake, then a reader thread and the
/// writer here (or, on a broadcasting listener, the reader here). Returns
/// whether the handshake succeeded.
fn serve(end: &Arc<NetEnd>, stream: Stream, side: Side) -> bool {
    let stream = match &end.ws_path {
        None => stream,
        Some(path) => match ws::upgrade(end, path, stream, side) {
            Ok(s) => s,
            Err(v) => {
                end.refused(v.to_string());
                return false;
            }
        },
    };
    let hello = match conn::handshake(end, &stream, side) {
        Ok(h) => h,
        Err(why) => {
            finish(end, &stream, &Mutex::new(()), why);
            stream.shutdown();
            return false;
        }
    };
    let peer = Arc::new(Peer {
        stream,
        write_lock: Mutex::new(()),
        hello,
        cancel: CancelToken::new(),
    });
    let n = end.counters.connects.fetch_add(1, Relaxed);
    if side == Side::Connector && n > 0 {
        end.counters.reconnects.fetch_add(1, Relaxed);
    }
    end.counters.peers.fetch_add(1, Relaxed);
    end.peers.lock().push(peer.clone());
    end.wake_nappers(); // a broadcast writer may wait for a first peer

    if end.opts.broadcast {
        let why = Reader::new(end, &peer).run();
        finish(end, &peer.stream, &peer.write_lock, why);
    } else {
        let (e, p) = (end.clone(), peer.clone());
        let reader = spawn_peer_thread("psyne-read", move || {
            let why = Reader::new(&e, &p).run();
            finish(&e, &p.stream, &p.write_lock, why);
            p.cancel.cancel(); // wakes the writer
        });
        match reader {
            Ok(reader) => {
                let why = write_loop(end, &peer);
                finish(end, &peer.stream, &peer.write_lock, why);
                // A reader waiting for room in the receive ring gives up.
                peer.cancel.cancel();
                let _ = reader.join();
            }
            Err(e) => end.note(format!("no thread for a connection's reader: {e}")),
        }
    }
    peer.stream.shutdown();
    end.peers.lock().retain(|p| !Arc::ptr_eq(p, &peer));
    end.counters.peers.fetch_sub(1, Relaxed);
    true
}

/// Deals with the end of one half of a connection: a violation is
/// counted, kept and told to the peer; the socket is shut down (a clean
/// stop of the writer only shuts down after everything went out).
fn finish(end: &NetEnd, stream: &Stream, write_lock: &Mutex<()>, why: Ended) {
    match why {
        Ended::Violation(v) => {
            end.refused(v.to_string());
            conn::send_close(stream, write_lock, &v);
            stream.linger_after_close();
        }
        Ended::PeerClosed(Some(reason)) => end.note(format!("peer closed: {reason}")),
        Ended::Io(e) if !end.is_closing() => end.note(format!("connection lost: {e}")),
        // A stopped writer has written everything queued (it still goes
        // out before the FIN); the rest end quietly.
        Ended::Io(_) | Ended::PeerClosed(None) | Ended::Cancelled | Ended::Stopped => {}
    }
    // Wakes the other half if it is blocked on the socket.
    stream.shutdown();
}

/// The writer of one connection (connector, or one peer of a listener):
/// runs of messages from the send ring to the socket.
fn write_loop(end: &NetEnd, peer: &Peer) -> Ended {
    let ring = &end.tx.ring;
    let competing = ring.is_multi_consumer();
    let mut run = Run::new();
    let mut sndbuf = 0;
    loop {
        // A listener's writer takes only what its peer can take now (see
        // conn::socket_room); a connector's one peer gets everything.
        let room = if competing {
            match conn::socket_room(&peer.stream, &mut sndbuf) {
                Ok(room) => room,
                Err(e) => return Ended::Io(e),
            }
        } else {
            u64::MAX
        };
        // The reader ended (the peer is gone): take nothing more, so that
        // what is queued goes to a live peer.
        if peer.cancel.is_cancelled() {
            return Ended::Cancelled;
        }
        if let Err(why) = run.take(ring, end.limit(&peer.cancel), room) {
            return why;
        }
        let r = run.write_to(end, ring, peer);
        run.release(ring);
        if let Err(e) = r {
            return Ended::Io(e);
        }
    }
}

/// A broadcasting listener's one writer: every run to every peer. A peer
/// whose connection fails is dropped; the slowest peer paces the others
/// (memory stays bounded: nothing is queued per peer).
fn broadcast_loop(end: &Arc<NetEnd>) {
    let ring = &end.tx.ring;
    let never = CancelToken::new();
    let mut run = Run::new();
    // Until the ring is stopped and drained.
    while run.take(ring, end.limit(&never), u64::MAX).is_ok() {
        // Messages wait in the ring until there is a peer to take them.
        let peers = loop {
            let peers = end.peers.lock().clone();
            if !peers.is_empty() || end.is_closing() {
                break peers;
            }
            end.nap(Duration::from_millis(100));
        };
        for p in &peers {
            if let Err(e) = run.write_to(end, ring, p) {
                end.note(format!("connection lost: {e}"));
                p.stream.shutdown();
            }
        }
        run.release(ring);
        if peers.is_empty() {
            break;
        }
    }
    for p in end.peers.lock().iter() {
        p.stream.shutdown();
    }
}
