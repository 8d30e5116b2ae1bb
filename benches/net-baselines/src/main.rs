//! psyne `tcp://` (127.0.0.1), `unix://` (Unix stream sockets) and `ws://`
//! (WebSocket over 127.0.0.1) beside baselines, all in one run.
//!
//!   cargo run --release --manifest-path benches/net-baselines/Cargo.toml                # full, < 2 min
//!   cargo run --release --manifest-path benches/net-baselines/Cargo.toml -- --quick     # < 20 s
//!   cargo run --release --manifest-path benches/net-baselines/Cargo.toml -- --json      # JSON on stdout
//!   ... --no-default-features --features zmq,nng   # baselines only (no psyne rows)
//!   ... -- --reps N                                # rounds per measurement (default 5, quick 3)
//!   ... -- --only psyne,raw,raw_buf,raw_writev,zmq,nng,tokio_tungstenite  # just these columns
//!   PSYNE_BENCH_SPIN_US=N ...                      # psyne URIs get `spin=N` (poll N µs before sleeping)
//!   PSYNE_BENCH_VERBOSE=1 ...                      # each case's time on stderr
//!
//! Rows (each for tcp, unix and ws), columns = psyne and the baselines
//! (tcp and unix: raw, zmq, nng; ws: tokio-tungstenite):
//! * ping-pong 64 B: the client sends a 64-byte message (sequence number in
//!   its first 8 bytes), an echo thread sends it back, the client checks the
//!   number; one-way latency = round trip / 2, p50 and p99 from an
//!   hdrhistogram of the rounds of one run (after 80 ms of warm-up, then
//!   200 ms of rounds; quick: 20 + 30 ms).
//! * stream 64 B / 64 KiB / 1 MiB: one sender thread sends messages back to
//!   back (sequence number in the first 8 payload bytes), the receiving
//!   thread checks every length and sequence number. After 80 ms of warm-up
//!   (every buffer between the two is full by then) it counts the messages
//!   of the next 200 ms (quick: 20 + 30 ms): messages/s (64 B) or payload
//!   GB/s (64 KiB, 1 MiB). It then stops the sender, which sends an end
//!   marker and reports how many it sent; the receiver takes the backlog and
//!   the run fails unless it got exactly that many, in order (lost,
//!   duplicated or reordered messages fail loudly). A backlog that takes
//!   over 0.5 s to drain (nng at 64 B: megabytes of socket buffers at
//!   ~20 k msg/s; quick: 0.15 s) is abandoned and the cell marked `~`.
//!
//! Columns:
//! * psyne: `Channel::open("tcp://127.0.0.1:P?role=listen")` / connect,
//!   ring 4 MiB, `Producer::send_timeout` (copies the payload in) and
//!   `Consumer::recv_timeout` (a view) — see src/psy.rs. Needs feature
//!   `psyne-net` (default).
//! * raw: length-prefixed frames over a blocking socket, one write per
//!   message; the receiver reads header and payload with `read_exact`
//!   (ping-pong: reads through a `BufReader`). raw buf: `BufWriter` +
//!   `BufReader` (64 KiB). raw writev: [header, payload] in one
//!   `write_vectored` (64 KiB and 1 MiB only). See src/raw.rs.
//! * zmq: ZeroMQ PUSH/PULL (streaming), PAIR (ping-pong), tcp or ipc
//!   transport (feature `zmq`, default; libzmq built from source).
//! * nng: PUSH0/PULL0, PAIR1 (feature `nng`, default).
//! * tokio-tung (ws rows only): plain tokio-tungstenite, each end a
//!   current-thread runtime driven by its thread (feature `tungstenite`,
//!   default) — see src/ttb.rs. psyne ws:// is measured against it.
//!
//! Ratio columns (the targets): ping-pong p50 psyne/raw <= 1.2; 64 B
//! streaming psyne/raw buf >= 1.0 and psyne/zmq >= 5; 64 KiB and 1 MiB
//! psyne/raw writev >= 0.9 and psyne/zmq >= 2. ws rows: psyne/tokio-tung
//! >= 1.0 on every rate, p50 latency psyne/tokio-tung <= 1.0.
//!
//! Every measurement is repeated in rounds (the implementations interleaved,
//! each opens a fresh connection per round) and the table shows medians:
//! the 2-core VM is noisy, so compare the ratios within one run. Every
//! blocking call has a 5 s timeout, and a watchdog aborts a case stuck for
//! 30 s, so a broken transport fails loudly (FAIL cells, errors listed,
//! exit code 1) instead of hanging.

#[cfg(feature = "nng")]
mod nngb;
#[cfg(feature = "psyne-net")]
mod psy;
mod raw;
#[cfg(feature = "tungstenite")]
mod ttb;
#[cfg(feature = "zmq")]
mod zmqb;

use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Limit of every single blocking call.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Limit of one case (one connection, one measurement), enforced by the watchdog.
const CASE_LIMIT: Duration = Duration::from_secs(30);
/// Sequence number that tells an echo peer to stop.
pub const STOP: u64 = u64::MAX;

pub type Res<T> = Result<T, String>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Net {
    Tcp,
    Unix,
    Ws,
}

impl Net {
    fn name(self) -> &'static str {
        match self {
            Net::Tcp => "tcp",
            Net::Unix => "unix",
            Net::Ws => "ws",
        }
    }
}

/// A free loopback port: bind port 0, read it, let it go.
pub fn tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Socket paths handed out and not yet checked (see `left_behind`).
static PATHS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A fresh socket path (removed first if it exists).
pub fn unix_path() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let p = format!(
        "/tmp/psyne-bench-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let _ = std::fs::remove_file(&p);
    PATHS.lock().unwrap().push(p.clone());
    p
}

/// Removes the socket files of a finished case; returns those that were
/// still there (the implementation did not unlink what it bound).
fn left_behind() -> Vec<String> {
    let mut left = Vec::new();
    for p in PATHS.lock().unwrap().drain(..) {
        if std::fs::remove_file(&p).is_ok() {
            left.push(p);
        }
    }
    left
}

pub fn fill_payload(p: &mut [u8]) {
    for (i, b) in p.iter_mut().enumerate() {
        *b = i as u8 ^ 0x5a;
    }
}

#[inline]
pub fn parse_seq(p: &[u8]) -> u64 {
    match p.get(..8) {
        Some(b) => u64::from_le_bytes(b.try_into().unwrap()),
        None => u64::MAX - 1, // too short: never a valid sequence number
    }
}

/// Sending side of a stream: message `seq` (in the first 8 payload bytes).
pub trait StreamTx: Send + 'static {
    fn send(&mut self, seq: u64) -> Res<()>;
    fn flush(&mut self) -> Res<()> {
        Ok(())
    }
}

/// Receiving side of a stream: (sequence number, payload length).
pub trait StreamRx: Send + 'static {
    fn recv(&mut self) -> Res<(u64, usize)>;
}

/// Ping-pong client: one round trip, returns the echoed sequence number.
pub trait PingClient: Send + 'static {
    fn round(&mut self, seq: u64) -> Res<u64>;
    /// Tells the echo peer to stop (no answer).
    fn stop(&mut self) -> Res<()>;
}

/// Ping-pong server: answers one message; false once told to stop.
pub trait Echo: Send + 'static {
    fn echo(&mut self) -> Res<bool>;
}

// ---------------------------------------------------------------------------
// Implementations, workloads
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Imp {
    Psyne,
    Raw,
    RawBuf,
    Writev,
    Zmq,
    Nng,
    Tung,
}

const IMPS: [Imp; 7] = [
    Imp::Psyne,
    Imp::Raw,
    Imp::RawBuf,
    Imp::Writev,
    Imp::Zmq,
    Imp::Nng,
    Imp::Tung,
];

impl Imp {
    fn name(self) -> &'static str {
        match self {
            Imp::Psyne => "psyne",
            Imp::Raw => "raw",
            Imp::RawBuf => "raw buf",
            Imp::Writev => "raw writev",
            Imp::Zmq => "zmq",
            Imp::Nng => "nng",
            Imp::Tung => "tokio-tung",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Imp::Psyne => "psyne",
            Imp::Raw => "raw",
            Imp::RawBuf => "raw_buf",
            Imp::Writev => "raw_writev",
            Imp::Zmq => "zmq",
            Imp::Nng => "nng",
            Imp::Tung => "tokio_tungstenite",
        }
    }
    /// Whether this implementation has rows on `net`: tokio-tungstenite
    /// only on ws, psyne everywhere, the others on tcp and unix.
    fn on(self, net: Net) -> bool {
        match self {
            Imp::Psyne => true,
            Imp::Tung => net == Net::Ws,
            _ => net != Net::Ws,
        }
    }
    /// Whether this build has the implementation (None) or why not.
    fn missing(self) -> Option<&'static str> {
        match self {
            Imp::Psyne if !cfg!(feature = "psyne-net") => Some("feature psyne-net off"),
            Imp::Zmq if !cfg!(feature = "zmq") => Some("feature zmq off"),
            Imp::Nng if !cfg!(feature = "nng") => Some("feature nng off"),
            Imp::Tung if !cfg!(feature = "tungstenite") => Some("feature tungstenite off"),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Work {
    Ping,
    Stream(usize),
}

const WORKS: [Work; 4] = [
    Work::Ping,
    Work::Stream(64),
    Work::Stream(64 << 10),
    Work::Stream(1 << 20),
];

impl Work {
    fn applies(self, imp: Imp) -> bool {
        match self {
            Work::Ping => !matches!(imp, Imp::RawBuf | Imp::Writev),
            Work::Stream(64) => imp != Imp::Writev,
            Work::Stream(_) => true,
        }
    }
    fn label(self) -> String {
        match self {
            Work::Ping => "ping-pong 64 B".into(),
            Work::Stream(s) => format!("stream {}", size_name(s)),
        }
    }
}

fn size_name(s: usize) -> String {
    match s {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

struct Cfg {
    quick: bool,
    json: bool,
    reps: usize,
    /// `--only a,b`: the columns to run (keys as in the JSON), None: all.
    only: Option<Vec<String>>,
    /// Warm-up before each measurement (connections, caches, and every
    /// buffer between sender and receiver filled: psyne alone holds 4 MiB
    /// a side).
    warm: Duration,
    /// Length of one measurement.
    target: Duration,
    /// Longest wait for a stream's backlog after the measurement.
    drain: Duration,
}

impl Cfg {
    fn selected(&self, imp: Imp) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|k| k == imp.key()))
    }
}

// ---------------------------------------------------------------------------
// Watchdog: a case that overstays CASE_LIMIT ends the process loudly
// ---------------------------------------------------------------------------

static CASE: Mutex<Option<(String, Instant)>> = Mutex::new(None);

fn watchdog() {
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Some((name, t0)) = &*CASE.lock().unwrap() {
            if t0.elapsed() > CASE_LIMIT {
                eprintln!(
                    "\nWATCHDOG: case {name} still running after {CASE_LIMIT:?} (a blocking call ignored its timeout); aborting"
                );
                std::process::exit(3);
            }
        }
    });
}

fn case<T>(name: String, f: impl FnOnce() -> T) -> T {
    *CASE.lock().unwrap() = Some((name, Instant::now()));
    let v = f();
    *CASE.lock().unwrap() = None;
    v
}

/// Runs `f` on a thread; its result (and the thread's object, so that the
/// caller decides when it drops) comes back through a channel with a time
/// limit, so a stuck thread is reported rather than joined forever.
struct Worker<T> {
    rx: mpsc::Receiver<(Res<()>, T)>,
}

impl<T: Send + 'static> Worker<T> {
    fn spawn(obj: T, f: impl FnOnce(&mut T) -> Res<()> + Send + 'static) -> Worker<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut obj = obj;
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut obj)))
                .unwrap_or_else(|_| Err("thread panicked".into()));
            let _ = tx.send((r, obj));
        });
        Worker { rx }
    }
    fn finish(self, limit: Duration) -> Res<T> {
        match self.rx.recv_timeout(limit) {
            Ok((Ok(()), obj)) => Ok(obj),
            Ok((Err(e), _)) => Err(e),
            Err(_) => Err(format!("thread did not finish within {limit:?}")),
        }
    }
}

// ---------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------

/// How a streaming run ended.
struct StreamResult {
    /// Messages/s over the measured window.
    rate: f64,
    /// Messages in the measured window.
    n: u64,
    /// The backlog after the window was not all taken within the drain
    /// budget: the sequence numbers up to there were checked, the total
    /// count was not.
    undrained: bool,
}

/// The sender sends back to back (sequence numbers 0, 1, ...) until told to
/// stop, then sends one message numbered `STOP` and says how many it sent
/// before it. The receiver checks every message's sequence number and
/// length, lets `warm` pass, counts the messages of the next `target`, then
/// stops the sender and takes the backlog up to `STOP`: the run fails unless
/// it received exactly what was sent, in order. A backlog that takes longer
/// than `drain` to take (a slow receiver behind megabytes of socket buffers)
/// is abandoned and the result marked.
fn stream_session<T: StreamTx, R: StreamRx>(
    (tx, mut rx): (T, R),
    size: usize,
    warm: Duration,
    target: Duration,
    drain: Duration,
) -> Res<StreamResult> {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(u64::MAX));
    let (stop2, sent2) = (stop.clone(), sent.clone());
    let sender = Worker::spawn(tx, move |tx| {
        let mut seq = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            tx.send(seq)
                .map_err(|e| format!("sender, message {seq}: {e}"))?;
            seq += 1;
        }
        sent2.store(seq, Ordering::Release);
        tx.send(STOP)
            .map_err(|e| format!("sender, end marker after {seq}: {e}"))?;
        tx.flush()
    });
    // The clock is read every `every` messages: often enough to see a
    // millisecond pass, rarely enough to cost nothing at millions a second.
    let mut every: u64 = 1;
    let mut next = 1u64;
    let mut last = Instant::now();
    let mut seq = 0u64;
    let mut window: Option<(Instant, u64)> = None;
    let mut result: Option<(f64, u64)> = None;
    let mut drain_end = None;
    let mut undrained = false;
    let t0 = last;
    let recv_all = (|| -> Res<()> {
        loop {
            let (got, len) = rx
                .recv()
                .map_err(|e| format!("receiver, waiting for message {seq}: {e}"))?;
            if got == STOP && len == size && result.is_some() {
                return Ok(());
            }
            if got != seq || len != size {
                return Err(format!(
                    "receiver: message {seq}: got sequence number {got} and length {len}, expected {seq} and {size}"
                ));
            }
            seq += 1;
            if let Some(end) = drain_end {
                if Instant::now() > end {
                    undrained = true;
                    return Ok(());
                }
            } else if seq == next {
                let now = Instant::now();
                let gap = now - last;
                if gap < Duration::from_micros(100) && every < 1024 {
                    every *= 2;
                } else if gap > Duration::from_millis(2) && every > 1 {
                    every /= 2;
                }
                next = seq + every;
                last = now;
                match window {
                    None if now - t0 >= warm => window = Some((now, seq)),
                    Some((ta, na)) if now - ta >= target => {
                        result = Some(((seq - na) as f64 / (now - ta).as_secs_f64(), seq - na));
                        stop.store(true, Ordering::Relaxed);
                        drain_end = Some(now + drain);
                    }
                    _ => {}
                }
            }
        }
    })();
    stop.store(true, Ordering::Relaxed);
    if undrained {
        // Close the receiving end so a sender blocked on a full pipe gives
        // up; a sender still stuck after that is left behind (its calls
        // time out on their own).
        drop(rx);
        let _ = sender.finish(Duration::from_millis(200));
        let (rate, n) = result.unwrap();
        return Ok(StreamResult { rate, n, undrained });
    }
    // A receiver that failed has already waited out a timeout: the sender gets 1 s more.
    let sent_ok = sender.finish(if recv_all.is_ok() {
        TIMEOUT * 2
    } else {
        Duration::from_secs(1)
    });
    // Errors: the receiver's (it saw the data) and the sender's, if any.
    let tx = match (recv_all, sent_ok) {
        (Ok(()), Ok(tx)) => tx,
        (Err(r), Ok(_)) => return Err(r),
        (Ok(()), Err(s)) => return Err(s),
        (Err(r), Err(s)) => return Err(format!("{r}; {s}")),
    };
    let total = sent.load(Ordering::Acquire);
    if total != seq {
        return Err(format!(
            "sender sent {total} messages, receiver got {seq} before the end marker"
        ));
    }
    drop(tx); // after the receiver has everything: a drop that loses queued data is not measured
    drop(rx);
    let (rate, n) = result.unwrap();
    Ok(StreamResult { rate, n, undrained })
}

fn stream_run(
    imp: Imp,
    net: Net,
    size: usize,
    w: Duration,
    t: Duration,
    d: Duration,
) -> Res<StreamResult> {
    match imp {
        #[cfg(feature = "psyne-net")]
        Imp::Psyne => stream_session(psy::stream(net, size)?, size, w, t, d),
        Imp::Raw => {
            let (c, s) = raw::pair(net)?;
            stream_session(
                (raw::RawTx::new(c, size), raw::rx_unbuffered(s, size)),
                size,
                w,
                t,
                d,
            )
        }
        Imp::RawBuf => {
            let (c, s) = raw::pair(net)?;
            stream_session(
                (raw::BufTx::new(c, size), raw::rx_buffered(s, size)),
                size,
                w,
                t,
                d,
            )
        }
        Imp::Writev => {
            let (c, s) = raw::pair(net)?;
            stream_session(
                (raw::WritevTx::new(c, size), raw::rx_unbuffered(s, size)),
                size,
                w,
                t,
                d,
            )
        }
        #[cfg(feature = "zmq")]
        Imp::Zmq => stream_session(zmqb::stream(net, size)?, size, w, t, d),
        #[cfg(feature = "nng")]
        Imp::Nng => stream_session(nngb::stream(net, size)?, size, w, t, d),
        #[cfg(feature = "tungstenite")]
        Imp::Tung => stream_session(ttb::pair(size)?, size, w, t, d),
        #[allow(unreachable_patterns)]
        _ => Err("not built".into()),
    }
}

// ---------------------------------------------------------------------------
// Ping-pong
// ---------------------------------------------------------------------------

/// Round trips: for `warm`, then for `target` (at least 200 rounds).
/// Returns (p50, p99) one-way latency in ns and the number of rounds.
fn ping_session<C: PingClient, E: Echo>(
    (mut client, echo): (C, E),
    warm: Duration,
    target: Duration,
) -> Res<(f64, f64, u64)> {
    let server = Worker::spawn(echo, |e| {
        while e.echo().map_err(|err| format!("echo: {err}"))? {}
        Ok(())
    });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let run = (|| -> Res<()> {
        let mut seq = 0u64;
        let mut t_end = None;
        let t_warm = Instant::now() + warm;
        loop {
            let t0 = Instant::now();
            let got = client
                .round(seq)
                .map_err(|e| format!("client, round {seq}: {e}"))?;
            let t1 = Instant::now();
            if got != seq {
                return Err(format!(
                    "client: round {seq} answered with sequence number {got}"
                ));
            }
            seq += 1;
            if t1 >= t_warm {
                hist.saturating_record((t1 - t0).as_nanos() as u64);
                if t_end.is_none() {
                    t_end = Some(t1 + target);
                }
                if hist.len() >= 200 && t1 >= t_end.unwrap() {
                    break;
                }
            }
        }
        client.stop()
    })();
    let echoed = server.finish(if run.is_ok() {
        TIMEOUT * 2
    } else {
        Duration::from_secs(1)
    });
    match (run, echoed) {
        (Ok(()), Ok(e)) => drop(e),
        (Err(c), Ok(_)) => return Err(c),
        (Ok(()), Err(e)) => return Err(e),
        (Err(c), Err(e)) => return Err(format!("{c}; {e}")),
    }
    drop(client);
    Ok((
        hist.value_at_quantile(0.5) as f64 / 2.0,
        hist.value_at_quantile(0.99) as f64 / 2.0,
        hist.len(),
    ))
}

fn ping_run(imp: Imp, net: Net, warm: Duration, target: Duration) -> Res<(f64, f64, u64)> {
    match imp {
        #[cfg(feature = "psyne-net")]
        Imp::Psyne => ping_session(psy::ping(net, 64)?, warm, target),
        Imp::Raw => {
            let (c, s) = raw::pair(net)?;
            ping_session(
                (raw::PingSide::new(c, 64)?, raw::PingSide::new(s, 64)?),
                warm,
                target,
            )
        }
        #[cfg(feature = "zmq")]
        Imp::Zmq => ping_session(zmqb::ping(net, 64)?, warm, target),
        #[cfg(feature = "nng")]
        Imp::Nng => ping_session(nngb::ping(net, 64)?, warm, target),
        #[cfg(feature = "tungstenite")]
        Imp::Tung => ping_session(ttb::pair(64)?, warm, target),
        #[allow(unreachable_patterns)]
        _ => Err("not built".into()),
    }
}

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

/// Samples of one cell (one per round), or why it has none.
#[derive(Default, Clone)]
struct Cell {
    samples: Vec<f64>,
    err: Option<String>,
    /// Messages (streaming) or rounds (ping-pong) of each measured run.
    n: Vec<u64>,
    /// Streaming runs whose backlog was abandoned (total count unchecked).
    undrained: usize,
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = s.len() / 2;
    Some(if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    })
}

/// Metric rows of the table: (net, metric).
#[derive(Clone, Copy, PartialEq)]
enum Metric {
    P50,
    P99,
    Rate(usize),
}

impl Metric {
    fn label(self) -> String {
        match self {
            Metric::P50 => "ping-pong 64 B p50".into(),
            Metric::P99 => "ping-pong 64 B p99".into(),
            Metric::Rate(s) => format!("stream {}", size_name(s)),
        }
    }
    fn unit(self) -> &'static str {
        match self {
            Metric::P50 | Metric::P99 => "us",
            Metric::Rate(64) => "M msg/s",
            Metric::Rate(_) => "GB/s",
        }
    }
    /// Display value from a raw sample (ns, or messages/s).
    fn scale(self, v: f64) -> f64 {
        match self {
            Metric::P50 | Metric::P99 => v / 1e3,
            Metric::Rate(64) => v / 1e6,
            Metric::Rate(s) => v * s as f64 / 1e9,
        }
    }
    fn work(self) -> Work {
        match self {
            Metric::P50 | Metric::P99 => Work::Ping,
            Metric::Rate(s) => Work::Stream(s),
        }
    }
    /// (ratio column, baseline, target, higher ratio is better).
    fn ratios(self, net: Net) -> [(&'static str, Imp, Option<f64>, bool); 2] {
        if net == Net::Ws {
            let (target, higher) = match self {
                Metric::P50 => (Some(1.0), false),
                Metric::P99 => (None, false),
                Metric::Rate(_) => (Some(1.0), true),
            };
            return [
                ("psyne/tokio_tungstenite", Imp::Tung, target, higher),
                ("psyne/zmq", Imp::Zmq, None, higher),
            ];
        }
        match self {
            Metric::P50 => [
                ("psyne/raw", Imp::Raw, Some(1.2), false),
                ("psyne/zmq", Imp::Zmq, None, false),
            ],
            Metric::P99 => [
                ("psyne/raw", Imp::Raw, None, false),
                ("psyne/zmq", Imp::Zmq, None, false),
            ],
            Metric::Rate(64) => [
                ("psyne/raw", Imp::RawBuf, Some(1.0), true),
                ("psyne/zmq", Imp::Zmq, Some(5.0), true),
            ],
            Metric::Rate(_) => [
                ("psyne/raw", Imp::Writev, Some(0.9), true),
                ("psyne/zmq", Imp::Zmq, Some(2.0), true),
            ],
        }
    }
}

const METRICS: [Metric; 5] = [
    Metric::P50,
    Metric::P99,
    Metric::Rate(64),
    Metric::Rate(64 << 10),
    Metric::Rate(1 << 20),
];
const NETS: [Net; 3] = [Net::Tcp, Net::Unix, Net::Ws];

struct Results {
    /// (net, metric, imp) -> cell
    cells: Vec<((Net, Metric), Imp, Cell)>,
}

impl Results {
    fn cell(&mut self, net: Net, m: Metric, imp: Imp) -> &mut Cell {
        let i = match self
            .cells
            .iter()
            .position(|(k, i, _)| *k == (net, m) && *i == imp)
        {
            Some(i) => i,
            None => {
                self.cells.push(((net, m), imp, Cell::default()));
                self.cells.len() - 1
            }
        };
        &mut self.cells[i].2
    }
    fn get(&self, net: Net, m: Metric, imp: Imp) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|(k, i, _)| *k == (net, m) && *i == imp)
            .map(|c| &c.2)
    }
    fn value(&self, net: Net, m: Metric, imp: Imp) -> Option<f64> {
        self.get(net, m, imp)
            .filter(|c| c.err.is_none())
            .and_then(|c| median(&c.samples))
            .map(|v| m.scale(v))
    }
    fn failed(&self, net: Net, w: Work, imp: Imp) -> bool {
        METRICS
            .iter()
            .any(|&m| m.work() == w && self.get(net, m, imp).is_some_and(|c| c.err.is_some()))
    }
}

// ---------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------

fn run(cfg: &Cfg, res: &mut Results) {
    let mut noted = Vec::new();
    for round in 0..cfg.reps {
        for net in NETS {
            for work in WORKS {
                for imp in IMPS {
                    if !work.applies(imp)
                        || !imp.on(net)
                        || imp.missing().is_some()
                        || !cfg.selected(imp)
                        || res.failed(net, work, imp)
                    {
                        continue;
                    }
                    let name = format!(
                        "{} {} {} (round {})",
                        net.name(),
                        work.label(),
                        imp.name(),
                        round + 1
                    );
                    let t0 = Instant::now();
                    let r: Res<()> = case(name.clone(), || match work {
                        Work::Ping => {
                            let (p50, p99, n) = ping_run(imp, net, cfg.warm, cfg.target)?;
                            res.cell(net, Metric::P50, imp).samples.push(p50);
                            res.cell(net, Metric::P99, imp).samples.push(p99);
                            res.cell(net, Metric::P50, imp).n.push(n);
                            Ok(())
                        }
                        Work::Stream(size) => {
                            let r = stream_run(imp, net, size, cfg.warm, cfg.target, cfg.drain)?;
                            let c = res.cell(net, Metric::Rate(size), imp);
                            c.samples.push(r.rate);
                            c.n.push(r.n);
                            c.undrained += r.undrained as usize;
                            Ok(())
                        }
                    });
                    let left = left_behind();
                    if !left.is_empty() && !noted.contains(&imp) {
                        noted.push(imp);
                        eprintln!(
                            "  note: {} {} left its socket file(s) behind (removed): {}",
                            net.name(),
                            imp.name(),
                            left.join(" ")
                        );
                    }
                    if let Err(e) = r {
                        eprintln!("  FAIL {name}: {e}");
                        let m = match work {
                            Work::Ping => Metric::P50,
                            Work::Stream(s) => Metric::Rate(s),
                        };
                        res.cell(net, m, imp).err = Some(e.clone());
                        if m == Metric::P50 {
                            res.cell(net, Metric::P99, imp).err = Some(e);
                        }
                    } else if std::env::var_os("PSYNE_BENCH_VERBOSE").is_some() {
                        eprintln!("  {name}: {:.2} s", t0.elapsed().as_secs_f64());
                    }
                }
            }
        }
        eprintln!("  round {}/{} done", round + 1, cfg.reps);
    }
}

fn fmt_val(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// ratio = psyne / baseline, and whether it meets the target.
fn ratio(
    res: &Results,
    net: Net,
    m: Metric,
    base: Imp,
    target: Option<f64>,
    higher: bool,
) -> Option<(f64, Option<bool>)> {
    let p = res.value(net, m, Imp::Psyne)?;
    let b = res.value(net, m, base)?;
    let r = p / b;
    Some((r, target.map(|t| if higher { r >= t } else { r <= t })))
}

fn table(cfg: &Cfg, res: &Results, stamp: &str, elapsed: f64) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "psyne net baselines — {stamp} — {} run, median of {} rounds, {:.0} s; psyne rows: {}",
        if cfg.quick { "quick" } else { "full" },
        cfg.reps,
        elapsed,
        match Imp::Psyne.missing() {
            None => "yes",
            Some(why) => why,
        }
    );
    let _ = writeln!(
        o,
        "{:<5} {:<19} {:<8}{}  {:>17} {:>17}",
        "net",
        "workload",
        "unit",
        IMPS.iter()
            .map(|i| format!("{:>11}", i.name()))
            .collect::<String>(),
        "psyne/raw*",
        "psyne/zmq"
    );
    for net in NETS {
        for m in METRICS {
            let mut line = format!("{:<5} {:<19} {:<8}", net.name(), m.label(), m.unit());
            for imp in IMPS {
                let s = if !m.work().applies(imp) || !imp.on(net) {
                    "–".to_string()
                } else if imp.missing().is_some() {
                    "n/b".to_string()
                } else if !cfg.selected(imp) {
                    "off".to_string()
                } else {
                    match res.get(net, m, imp) {
                        Some(c) if c.err.is_some() => "FAIL".into(),
                        Some(c) if c.undrained > 0 => res
                            .value(net, m, imp)
                            .map(|v| format!("{}~", fmt_val(v)))
                            .unwrap_or("?".into()),
                        _ => res.value(net, m, imp).map(fmt_val).unwrap_or("?".into()),
                    }
                };
                let _ = write!(line, "{s:>11}");
            }
            line.push_str("  ");
            for (_, base, target, higher) in m.ratios(net) {
                let s = match ratio(res, net, m, base, target, higher) {
                    None => "–".to_string(),
                    Some((r, met)) => {
                        let t = match target {
                            Some(t) => format!(
                                " {}{t} {}",
                                if higher { "≥" } else { "≤" },
                                if met == Some(true) { "ok" } else { "MISS" }
                            ),
                            None => String::new(),
                        };
                        format!("{r:.2}{t}")
                    }
                };
                let _ = write!(line, " {s:>17}");
            }
            let _ = writeln!(o, "{}", line.trim_end());
        }
    }
    let _ = writeln!(
        o,
        "psyne/raw*: against raw (ping-pong), raw buf (64 B stream), raw writev (64 KiB, 1 MiB); \
         ws rows: against tokio-tungstenite; \
         latency ratios: lower is better, rate ratios: higher is better.\n\
         – not measured for this row, n/b not built, off left out by --only, FAIL see errors. zmq/nng unix rows use their ipc:// transport.\n\
         ~ some runs' backlog was too slow to drain: their order was checked, their total count not."
    );
    let errs: Vec<String> = errors(res);
    if !errs.is_empty() {
        let _ = writeln!(o, "errors:");
        for e in errs {
            let _ = writeln!(o, "  {e}");
        }
    }
    o
}

fn errors(res: &Results) -> Vec<String> {
    res.cells
        .iter()
        .filter(|((_, m), _, c)| c.err.is_some() && *m != Metric::P99)
        .map(|((net, m), imp, c)| {
            format!(
                "{} {} {}: {}",
                net.name(),
                m.work().label(),
                imp.name(),
                c.err.as_ref().unwrap()
            )
        })
        .collect()
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.6}"),
        _ => "null".into(),
    }
}

fn json(cfg: &Cfg, res: &Results, stamp: &str, elapsed: f64) -> String {
    let mut rows = Vec::new();
    for net in NETS {
        for m in METRICS {
            let mut vals = Vec::new();
            let mut samples = Vec::new();
            let mut counts = Vec::new();
            let mut undrained = Vec::new();
            for imp in IMPS.iter().filter(|i| m.work().applies(**i) && i.on(net)) {
                let c = res.get(net, m, *imp);
                let v = match c {
                    Some(c) if c.err.is_some() => json_str("FAIL"),
                    _ => json_num(res.value(net, m, *imp)),
                };
                vals.push(format!("{}: {v}", json_str(imp.key())));
                if let Some(c) = c {
                    let s: Vec<String> = c
                        .samples
                        .iter()
                        .map(|x| json_num(Some(m.scale(*x))))
                        .collect();
                    samples.push(format!("{}: [{}]", json_str(imp.key()), s.join(", ")));
                    let n: Vec<String> = c.n.iter().map(|x| x.to_string()).collect();
                    counts.push(format!("{}: [{}]", json_str(imp.key()), n.join(", ")));
                    if c.undrained > 0 {
                        undrained.push(format!("{}: {}", json_str(imp.key()), c.undrained));
                    }
                }
            }
            let ratios: Vec<String> = m
                .ratios(net)
                .iter()
                .map(|(name, base, target, higher)| {
                    let r = ratio(res, net, m, *base, *target, *higher);
                    format!(
                        "{}: {{\"baseline\": {}, \"value\": {}, \"target\": {}, \"met\": {}}}",
                        json_str(name),
                        json_str(base.key()),
                        json_num(r.map(|x| x.0)),
                        match target {
                            Some(t) =>
                                json_str(&format!("{}{t}", if *higher { ">=" } else { "<=" })),
                            None => "null".into(),
                        },
                        match r.and_then(|x| x.1) {
                            Some(b) => b.to_string(),
                            None => "null".into(),
                        }
                    )
                })
                .collect();
            rows.push(format!(
                "    {{\"transport\": {}, \"workload\": {}, \"unit\": {}, \"values\": {{{}}}, \"samples\": {{{}}}, \"counts\": {{{}}}, \"undrained_runs\": {{{}}}, \"ratios\": {{{}}}}}",
                json_str(net.name()),
                json_str(&m.label()),
                json_str(m.unit()),
                vals.join(", "),
                samples.join(", "),
                counts.join(", "),
                undrained.join(", "),
                ratios.join(", ")
            ));
        }
    }
    let errs: Vec<String> = errors(res).iter().map(|e| json_str(e)).collect();
    format!(
        "{{\n  \"date\": {},\n  \"mode\": {},\n  \"rounds\": {},\n  \"seconds\": {:.1},\n  \"psyne_rows\": {},\n  \"not_built\": {{{}}},\n  \"rows\": [\n{}\n  ],\n  \"errors\": [{}]\n}}\n",
        json_str(stamp),
        json_str(if cfg.quick { "quick" } else { "full" }),
        cfg.reps,
        elapsed,
        Imp::Psyne.missing().is_none(),
        IMPS.iter()
            .filter_map(|i| i.missing().map(|why| format!("{}: {}", json_str(i.key()), json_str(why))))
            .collect::<Vec<_>>()
            .join(", "),
        rows.join(",\n"),
        errs.join(", ")
    )
}

/// "YYYY-MM-DD HH:MM:SS UTC" without a date crate.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json_out = args.iter().any(|a| a == "--json");
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .map(|i| {
            args.get(i + 1)
                .and_then(|v| v.parse().ok())
                .expect("--reps N")
        })
        .unwrap_or(if quick { 3 } else { 5 });
    let only = args.iter().position(|a| a == "--only").map(|i| {
        let v: Vec<String> = args.get(i + 1).expect("--only COLUMNS").split(',').map(str::to_string).collect();
        for k in &v {
            if !IMPS.iter().any(|i| i.key() == k) {
                eprintln!("--only: unknown column {k}; columns: psyne, raw, raw_buf, raw_writev, zmq, nng, tokio_tungstenite");
                std::process::exit(2);
            }
        }
        v
    });
    for a in &args {
        if a.starts_with("--") && !["--quick", "--json", "--reps", "--only"].contains(&a.as_str()) {
            eprintln!("unknown option {a}; usage: [--quick] [--json] [--reps N] [--only psyne,raw,raw_buf,raw_writev,zmq,nng,tokio_tungstenite]");
            std::process::exit(2);
        }
    }
    let cfg = Cfg {
        quick,
        json: json_out,
        reps,
        only,
        warm: if quick {
            Duration::from_millis(20)
        } else {
            Duration::from_millis(80)
        },
        target: if quick {
            Duration::from_millis(30)
        } else {
            Duration::from_millis(200)
        },
        drain: if quick {
            Duration::from_millis(150)
        } else {
            Duration::from_millis(500)
        },
    };
    watchdog();
    for imp in IMPS {
        if let Some(why) = imp.missing() {
            eprintln!("note: {} column not built ({why})", imp.name());
        }
    }
    let stamp = format!("{} — CPU: {}", utc_now(), cpu_model());
    let t0 = Instant::now();
    let mut res = Results { cells: Vec::new() };
    run(&cfg, &mut res);
    let elapsed = t0.elapsed().as_secs_f64();
    if cfg.json {
        print!("{}", json(&cfg, &res, &stamp, elapsed));
    } else {
        print!("{}", table(&cfg, &res, &stamp, elapsed));
    }
    if !errors(&res).is_empty() {
        std::process::exit(1);
    }
}

#[path = "../../cpu_model.rs"]
mod cpu;
use cpu::cpu_model;
