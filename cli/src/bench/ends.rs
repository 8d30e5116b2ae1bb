//! The two ends of every system the benchmark measures, behind one pair of
//! traits: psyne over any URI, and the baseline a user would otherwise pick
//! for that transport. Every end copies: the sender from a caller buffer,
//! the receiver into one (or, for the channel baselines, into the message
//! object the library hands over), so the rows compare like with like.

use psyne::{Channel, ChannelType, Consumer, Mode, Producer};
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub type Res<T> = Result<T, String>;

/// The sending end of a stream of messages.
pub trait Tx: Send {
    fn send(&mut self, msg: &[u8]) -> Res<()>;
    /// Pushes out anything buffered (called after the last send of a burst).
    fn flush(&mut self) -> Res<()> {
        Ok(())
    }
}

/// The receiving end. `Ok(None)`: nothing arrived within `timeout`.
pub trait Rx: Send {
    fn recv(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Res<Option<usize>>;
}

/// Ends for a throughput run: `producers` senders, `consumers` receivers.
pub struct Stream {
    pub txs: Vec<Box<dyn Tx>>,
    pub rxs: Vec<Box<dyn Rx>>,
}

/// Ends for a ping-pong: what side A sends arrives at side B and back.
pub struct Duplex {
    pub a: (Box<dyn Tx>, Box<dyn Rx>),
    pub b: (Box<dyn Tx>, Box<dyn Rx>),
}

// ---------------------------------------------------------------- psyne

/// A psyne sender: the exclusive producer side on single-producer modes
/// (what the README recommends for speed), the channel itself otherwise.
enum PsyneTx {
    /// The channel handle keeps a socket end's driver alive.
    Producer {
        side: Producer,
        _channel: Channel,
    },
    Shared(Channel),
}

impl Tx for PsyneTx {
    fn send(&mut self, msg: &[u8]) -> Res<()> {
        match self {
            PsyneTx::Producer { side, .. } => side.send(msg, 1),
            PsyneTx::Shared(c) => c.send(msg, 1),
        }
        .map_err(|e| e.to_string())
    }
}

enum PsyneRx {
    Consumer { side: Consumer, _channel: Channel },
    Shared(Channel),
}

impl Rx for PsyneRx {
    fn recv(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Res<Option<usize>> {
        let r = match self {
            PsyneRx::Consumer { side, .. } => side.recv_into_timeout(buf, timeout),
            PsyneRx::Shared(c) => c.recv_into_timeout(buf, timeout),
        };
        match r {
            Ok((n, _)) => Ok(Some(n)),
            Err(psyne::Error::Timeout) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn psyne_tx(ch: &Channel, n: usize) -> Res<Vec<Box<dyn Tx>>> {
    (0..n)
        .map(|_| -> Res<Box<dyn Tx>> {
            Ok(match ch.mode() {
                Mode::Spsc | Mode::Spmc => Box::new(PsyneTx::Producer {
                    side: ch.producer().map_err(|e| e.to_string())?,
                    _channel: ch.clone(),
                }),
                _ => Box::new(PsyneTx::Shared(ch.clone())),
            })
        })
        .collect()
}

fn psyne_rx(ch: &Channel, n: usize) -> Res<Vec<Box<dyn Rx>>> {
    (0..n)
        .map(|_| -> Res<Box<dyn Rx>> {
            Ok(match ch.mode() {
                Mode::Spsc | Mode::Mpsc => Box::new(PsyneRx::Consumer {
                    side: ch.consumer().map_err(|e| e.to_string())?,
                    _channel: ch.clone(),
                }),
                _ => Box::new(PsyneRx::Shared(ch.clone())),
            })
        })
        .collect()
}

/// Ring size for messages of `size` bytes: room for a few of the largest.
pub fn ring_for(size: usize) -> usize {
    (4 * size).max(1 << 20).next_power_of_two()
}

/// Two connected psyne ends (`first` sends to `second`): one ring on
/// memory/ipc (two handles on it), a connection on sockets (a connector and
/// its listener, both directions).
pub fn psyne_pair(
    scheme: &str,
    tag: &str,
    mode: Mode,
    size: usize,
) -> psyne::Result<(Channel, Channel)> {
    let ring = ring_for(size);
    let open = |uri: &str, n| Channel::open(uri, n, mode, ChannelType::Multi);
    let unique = format!("bench-{}-{tag}", std::process::id());
    match scheme {
        "memory" | "ipc" => {
            let a = open(&format!("{scheme}://{unique}"), ring)?;
            let b = open(&format!("{scheme}://{unique}"), 0)?;
            Ok((a, b))
        }
        _ => {
            let listen = match scheme {
                "unix" => format!("unix://{}?role=listen", sock_path(&unique).display()),
                "ws" => "ws://127.0.0.1:0/bench?role=listen".to_string(),
                _ => "tcp://127.0.0.1:0?role=listen".to_string(),
            };
            let server = open(&listen, ring)?;
            let addr = server
                .local_addr()
                .ok_or_else(|| psyne::Error::Io("listener has no local address".into()))?;
            let client = match scheme {
                "ws" => open(&format!("ws://{addr}/bench"), ring)?,
                _ => open(&format!("{scheme}://{addr}"), ring)?,
            };
            let t = Instant::now();
            while client.metrics().peers == 0 || server.metrics().peers == 0 {
                if t.elapsed() > Duration::from_secs(10) {
                    return Err(psyne::Error::Io(format!(
                        "{scheme}: no connection within 10 s"
                    )));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok((client, server))
        }
    }
}

fn sock_path(unique: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("psyne-{unique}.sock"))
}

pub fn psyne_stream(
    scheme: &str,
    tag: &str,
    mode: Mode,
    size: usize,
    n: usize,
) -> psyne::Result<Stream> {
    let (a, b) = psyne_pair(scheme, tag, mode, size)?;
    let txs = psyne_tx(&a, n).map_err(psyne::Error::Io)?;
    let rxs = psyne_rx(&b, n).map_err(psyne::Error::Io)?;
    Ok(Stream { txs, rxs })
}

pub fn psyne_duplex(scheme: &str, tag: &str, mode: Mode, size: usize) -> psyne::Result<Duplex> {
    let one = |v: Res<Vec<Box<dyn Tx>>>| v.map_err(psyne::Error::Io).map(|mut v| v.remove(0));
    let one_rx = |v: Res<Vec<Box<dyn Rx>>>| v.map_err(psyne::Error::Io).map(|mut v| v.remove(0));
    match scheme {
        "memory" | "ipc" => {
            // Two rings, one per direction.
            let (a1, b1) = psyne_pair(scheme, &format!("{tag}-ab"), mode, size)?;
            let (b2, a2) = psyne_pair(scheme, &format!("{tag}-ba"), mode, size)?;
            Ok(Duplex {
                a: (one(psyne_tx(&a1, 1))?, one_rx(psyne_rx(&a2, 1))?),
                b: (one(psyne_tx(&b2, 1))?, one_rx(psyne_rx(&b1, 1))?),
            })
        }
        _ => {
            let (client, server) = psyne_pair(scheme, tag, mode, size)?;
            Ok(Duplex {
                a: (one(psyne_tx(&client, 1))?, one_rx(psyne_rx(&client, 1))?),
                b: (one(psyne_tx(&server, 1))?, one_rx(psyne_rx(&server, 1))?),
            })
        }
    }
}

// ---------------------------------------------------------------- rtrb

/// rtrb's byte ring with a 4-byte length before each message, written and
/// read through its chunk API (no allocation per message). rtrb has no
/// blocking calls: a full or empty ring is polled, yielding the CPU.
struct RtrbTx(rtrb::Producer<u8>);
struct RtrbRx(rtrb::Consumer<u8>);

/// Copies `parts`, in order, into the two slices of a ring chunk.
fn scatter(dst: (&mut [u8], &mut [u8]), parts: [&[u8]; 2]) {
    let (a, b) = dst;
    let mut off = 0;
    for p in parts {
        let mut p = p;
        while !p.is_empty() {
            let (slice, at) = if off < a.len() {
                (&mut a[off..], off)
            } else {
                (&mut b[off - a.len()..], off)
            };
            let n = slice.len().min(p.len());
            slice[..n].copy_from_slice(&p[..n]);
            p = &p[n..];
            off = at + n;
        }
    }
}

/// Copies `out.len()` bytes from offset `skip` of the two slices of a chunk.
fn gather(src: (&[u8], &[u8]), skip: usize, out: &mut [u8]) {
    let (a, b) = src;
    let n = out.len();
    if skip + n <= a.len() {
        out.copy_from_slice(&a[skip..skip + n]);
    } else if skip >= a.len() {
        out.copy_from_slice(&b[skip - a.len()..skip - a.len() + n]);
    } else {
        let first = a.len() - skip;
        out[..first].copy_from_slice(&a[skip..]);
        out[first..].copy_from_slice(&b[..n - first]);
    }
}

/// Polls like an rtrb user without a wake-up mechanism: spin, and give the
/// CPU away now and then (two threads may share one CPU).
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins % 64 == 0 {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

impl Tx for RtrbTx {
    fn send(&mut self, msg: &[u8]) -> Res<()> {
        let len = (msg.len() as u32).to_le_bytes();
        let mut spins = 0;
        loop {
            if let Ok(mut chunk) = self.0.write_chunk(4 + msg.len()) {
                scatter(chunk.as_mut_slices(), [&len, msg]);
                chunk.commit_all();
                return Ok(());
            }
            if self.0.is_abandoned() {
                return Err("rtrb: consumer gone".into());
            }
            backoff(&mut spins);
        }
    }
}

impl Rx for RtrbRx {
    fn recv(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Res<Option<usize>> {
        let deadline = Instant::now() + timeout;
        let mut spins = 0;
        loop {
            if let Ok(chunk) = self.0.read_chunk(4) {
                let mut len = [0u8; 4];
                gather(chunk.as_slices(), 0, &mut len);
                let n = u32::from_le_bytes(len) as usize;
                // The producer commits length and payload in one chunk.
                let chunk = self.0.read_chunk(4 + n).map_err(|e| e.to_string())?;
                buf.resize(n, 0);
                gather(chunk.as_slices(), 4, buf);
                chunk.commit_all();
                return Ok(Some(n));
            }
            if spins % 1024 == 1023 && Instant::now() >= deadline {
                return Ok(None);
            }
            backoff(&mut spins);
        }
    }
}

pub fn rtrb_stream(size: usize) -> Stream {
    let (p, c) = rtrb::RingBuffer::new(ring_for(size));
    Stream {
        txs: vec![Box::new(RtrbTx(p))],
        rxs: vec![Box::new(RtrbRx(c))],
    }
}

pub fn rtrb_duplex(size: usize) -> Duplex {
    let (p1, c1) = rtrb::RingBuffer::new(ring_for(size));
    let (p2, c2) = rtrb::RingBuffer::new(ring_for(size));
    Duplex {
        a: (Box::new(RtrbTx(p1)), Box::new(RtrbRx(c2))),
        b: (Box::new(RtrbTx(p2)), Box::new(RtrbRx(c1))),
    }
}

// ---------------------------------------------------- crossbeam-channel

/// crossbeam-channel of `Vec<u8>`: each message is an allocation, as it is
/// for its users. Bounded to the same bytes as psyne's ring.
struct CbTx(crossbeam_channel::Sender<Vec<u8>>);
struct CbRx(crossbeam_channel::Receiver<Vec<u8>>);

impl Tx for CbTx {
    fn send(&mut self, msg: &[u8]) -> Res<()> {
        self.0.send(msg.to_vec()).map_err(|e| e.to_string())
    }
}

impl Rx for CbRx {
    fn recv(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Res<Option<usize>> {
        match self.0.recv_timeout(timeout) {
            Ok(v) => {
                let n = v.len();
                *buf = v;
                Ok(Some(n))
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn cb_bound(size: usize) -> usize {
    (ring_for(size) / (size + 16)).max(2)
}

pub fn crossbeam_stream(size: usize, n: usize) -> Stream {
    let (s, r) = crossbeam_channel::bounded(cb_bound(size));
    Stream {
        txs: (0..n)
            .map(|_| Box::new(CbTx(s.clone())) as Box<dyn Tx>)
            .collect(),
        rxs: (0..n)
            .map(|_| Box::new(CbRx(r.clone())) as Box<dyn Rx>)
            .collect(),
    }
}

pub fn crossbeam_duplex(size: usize) -> Duplex {
    let (s1, r1) = crossbeam_channel::bounded(cb_bound(size));
    let (s2, r2) = crossbeam_channel::bounded(cb_bound(size));
    Duplex {
        a: (Box::new(CbTx(s1)), Box::new(CbRx(r2))),
        b: (Box::new(CbTx(s2)), Box::new(CbRx(r1))),
    }
}

// ------------------------------------------------ raw stream sockets

/// A byte stream carrying messages as a 4-byte little-endian length and the
/// payload, through 64 KiB buffers (so small messages share system calls,
/// as any reasonable framing over a socket does). On multi modes the
/// threads of a side share the one socket behind a mutex.
trait Sock: Read + Write + Send + Sync + 'static {
    fn set_timeout(&self, t: Duration) -> std::io::Result<()>;
    fn dup(&self) -> std::io::Result<Self>
    where
        Self: Sized;
}

impl Sock for TcpStream {
    fn set_timeout(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))
    }
    fn dup(&self) -> std::io::Result<Self> {
        self.try_clone()
    }
}

impl Sock for UnixStream {
    fn set_timeout(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))
    }
    fn dup(&self) -> std::io::Result<Self> {
        self.try_clone()
    }
}

const SOCK_BUF: usize = 64 << 10;

/// One thread's end (no lock), or an end several threads share.
enum Side<T> {
    Own(T),
    Shared(Arc<Mutex<T>>),
}

impl<T> Side<T> {
    fn with<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        match self {
            Side::Own(t) => f(t),
            Side::Shared(m) => f(&mut m.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }
}

/// `n` handles on `t`: itself when `n == 1`, shared otherwise.
fn sides<T>(t: T, n: usize) -> Vec<Side<T>> {
    if n == 1 {
        return vec![Side::Own(t)];
    }
    let m = Arc::new(Mutex::new(t));
    (0..n).map(|_| Side::Shared(m.clone())).collect()
}

struct SockTx<S: Sock>(Side<BufWriter<S>>);
struct SockRx<S: Sock> {
    r: Side<BufReader<S>>,
    sock: Arc<S>,
}

impl<S: Sock> Tx for SockTx<S> {
    fn send(&mut self, msg: &[u8]) -> Res<()> {
        self.0.with(|w| {
            w.write_all(&(msg.len() as u32).to_le_bytes())
                .and_then(|()| w.write_all(msg))
                .map_err(|e| e.to_string())
        })
    }
    fn flush(&mut self) -> Res<()> {
        self.0.with(|w| w.flush().map_err(|e| e.to_string()))
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Reads exactly `buf.len()` bytes, retrying read timeouts (the writer is
/// in the middle of a message) for up to 10 s.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Res<()> {
    let mut got = 0;
    let give_up = Instant::now() + Duration::from_secs(10);
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Err("peer closed mid-message".into()),
            Ok(n) => got += n,
            Err(e) if timed_out(&e) && Instant::now() < give_up => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

impl<S: Sock> Rx for SockRx<S> {
    fn recv(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Res<Option<usize>> {
        let sock = &self.sock;
        self.r.with(|r| {
            if r.buffer().is_empty() {
                sock.set_timeout(timeout.max(Duration::from_micros(1)))
                    .map_err(|e| e.to_string())?;
                match std::io::BufRead::fill_buf(r) {
                    Ok([]) => return Err("peer closed".into()),
                    Ok(_) => {}
                    Err(e) if timed_out(&e) => return Ok(None),
                    Err(e) => return Err(e.to_string()),
                }
            }
            let mut len = [0u8; 4];
            read_full(r, &mut len)?;
            let n = u32::from_le_bytes(len) as usize;
            buf.resize(n, 0);
            read_full(r, buf)?;
            Ok(Some(n))
        })
    }
}

/// `n` senders on `w`'s socket and `n` receivers on `r`'s.
fn sock_stream<S: Sock>(w: S, r: S, n: usize) -> Res<Stream> {
    let rsock = Arc::new(r.dup().map_err(|e| e.to_string())?);
    let txs = sides(BufWriter::with_capacity(SOCK_BUF, w), n);
    let rxs = sides(BufReader::with_capacity(SOCK_BUF, r), n);
    Ok(Stream {
        txs: txs
            .into_iter()
            .map(|w| Box::new(SockTx(w)) as Box<dyn Tx>)
            .collect(),
        rxs: rxs
            .into_iter()
            .map(|r| {
                Box::new(SockRx {
                    r,
                    sock: rsock.clone(),
                }) as Box<dyn Rx>
            })
            .collect(),
    })
}

fn sock_end<S: Sock>(s: S) -> Res<(Box<dyn Tx>, Box<dyn Rx>)> {
    let read = s.dup().map_err(|e| e.to_string())?;
    let sock = Arc::new(s.dup().map_err(|e| e.to_string())?);
    Ok((
        Box::new(SockTx(Side::Own(BufWriter::with_capacity(SOCK_BUF, s)))),
        Box::new(SockRx {
            r: Side::Own(BufReader::with_capacity(SOCK_BUF, read)),
            sock,
        }),
    ))
}

fn tcp_pair() -> Res<(TcpStream, TcpStream)> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let a = TcpStream::connect(l.local_addr().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let (b, _) = l.accept().map_err(|e| e.to_string())?;
    for s in [&a, &b] {
        s.set_nodelay(true).map_err(|e| e.to_string())?;
    }
    Ok((a, b))
}

/// A Unix stream socket through a listener on a path, as `unix://` uses.
fn unix_listener_pair() -> Res<(UnixStream, UnixStream)> {
    let path = sock_path(&format!("baseline-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).map_err(|e| e.to_string())?;
    let a = UnixStream::connect(&path).map_err(|e| e.to_string())?;
    let (b, _) = l.accept().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&path);
    Ok((a, b))
}

pub fn socketpair_stream(n: usize) -> Res<Stream> {
    let (a, b) = UnixStream::pair().map_err(|e| e.to_string())?;
    sock_stream(a, b, n)
}
pub fn socketpair_duplex() -> Res<Duplex> {
    let (a, b) = UnixStream::pair().map_err(|e| e.to_string())?;
    Ok(Duplex {
        a: sock_end(a)?,
        b: sock_end(b)?,
    })
}
pub fn tcp_stream(n: usize) -> Res<Stream> {
    let (a, b) = tcp_pair()?;
    sock_stream(a, b, n)
}
pub fn tcp_duplex() -> Res<Duplex> {
    let (a, b) = tcp_pair()?;
    Ok(Duplex {
        a: sock_end(a)?,
        b: sock_end(b)?,
    })
}
pub fn unix_stream(n: usize) -> Res<Stream> {
    let (a, b) = unix_listener_pair()?;
    sock_stream(a, b, n)
}
pub fn unix_duplex() -> Res<Duplex> {
    let (a, b) = unix_listener_pair()?;
    Ok(Duplex {
        a: sock_end(a)?,
        b: sock_end(b)?,
    })
}

// ---------------------------------------------------------- tungstenite

type Ws = tungstenite::WebSocket<TcpStream>;

/// tungstenite over loopback TCP, one binary WebSocket message per message.
/// `write` buffers (it writes to the socket by itself once 128 KiB are
/// queued) and `flush` sends, so a burst shares system calls, as above.
struct WsTx(Side<Ws>);
struct WsRx(Side<Ws>, TcpStream);

impl Tx for WsTx {
    fn send(&mut self, msg: &[u8]) -> Res<()> {
        self.0.with(|ws| {
            ws.write(tungstenite::Message::binary(msg.to_vec()))
                .map_err(|e| e.to_string())
        })
    }
    fn flush(&mut self) -> Res<()> {
        self.0.with(|ws| ws.flush().map_err(|e| e.to_string()))
    }
}

impl Rx for WsRx {
    fn recv(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Res<Option<usize>> {
        self.1
            .set_read_timeout(Some(timeout.max(Duration::from_micros(1))))
            .map_err(|e| e.to_string())?;
        self.0.with(|ws| loop {
            match ws.read() {
                Ok(tungstenite::Message::Binary(b)) => {
                    let n = b.len();
                    buf.clear();
                    buf.extend_from_slice(&b);
                    return Ok(Some(n));
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if timed_out(&e) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            }
        })
    }
}

fn ws_pair() -> Res<(Ws, Ws, TcpStream, TcpStream)> {
    let (a, b) = tcp_pair()?;
    let (a2, b2) = (
        a.try_clone().map_err(|e| e.to_string())?,
        b.try_clone().map_err(|e| e.to_string())?,
    );
    let server = std::thread::spawn(move || tungstenite::accept(b).map_err(|e| e.to_string()));
    let (client, _) = tungstenite::client("ws://127.0.0.1/bench", a).map_err(|e| e.to_string())?;
    let server = server
        .join()
        .map_err(|_| "ws accept panicked".to_string())??;
    Ok((client, server, a2, b2))
}

pub fn ws_stream(n: usize) -> Res<Stream> {
    let (client, server, _, server_sock) = ws_pair()?;
    let mut rxs: Vec<Box<dyn Rx>> = Vec::new();
    for s in sides(server, n) {
        let sock = server_sock.try_clone().map_err(|e| e.to_string())?;
        rxs.push(Box::new(WsRx(s, sock)));
    }
    Ok(Stream {
        txs: sides(client, n)
            .into_iter()
            .map(|c| Box::new(WsTx(c)) as Box<dyn Tx>)
            .collect(),
        rxs,
    })
}

pub fn ws_duplex() -> Res<Duplex> {
    // Each side sends and receives on one WebSocket, from one thread.
    let (client, server, cs, ss) = ws_pair()?;
    let (c, s) = (Arc::new(Mutex::new(client)), Arc::new(Mutex::new(server)));
    Ok(Duplex {
        a: (
            Box::new(WsTx(Side::Shared(c.clone()))),
            Box::new(WsRx(Side::Shared(c), cs)),
        ),
        b: (
            Box::new(WsTx(Side::Shared(s.clone()))),
            Box::new(WsRx(Side::Shared(s), ss)),
        ),
    })
}
