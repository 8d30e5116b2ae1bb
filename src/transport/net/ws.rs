//! `ws://`: the stream protocol of `docs/PROTOCOL.md` carried over
//! WebSocket (RFC 6455), one HELLO or frame per binary message.
//!
//! A [`WsStream`] looks like a byte stream to the rest of the driver: its
//! reads yield the psyne bytes of the binary messages received, its writes
//! take psyne bytes (a HELLO, then whole frames) and send each HELLO or
//! frame as one binary message. So the handshake, the reader (header
//! checks, checksums, decoding, large frames straight into the ring) and the
//! writer (runs, batching) are the very code of `tcp://`, and whatever the
//! frame codec learns (compression) ws gets too.
//!
//! The WebSocket side is `tungstenite`, synchronous, over the same blocking
//! std sockets as tcp: the driver is threads waiting on rings (futexes), so
//! an async runtime (tokio-tungstenite) would put an event loop and a
//! hand-off between every socket and its ring. tungstenite does the HTTP
//! upgrade, the framing, masking, ping/pong replies, close handshakes and
//! the size limits (checked on each frame header, before its payload is
//! buffered). The reader and the writer of one connection each own one
//! tungstenite state (a `WebSocket` for reading, a `WebSocketContext` for
//! writing) over clones of the socket; every write to the socket, theirs or
//! the pongs the reader's state sends, holds one lock and writes whole
//! WebSocket frames, so frames never interleave.
//!
//! Invariants:
//! * The first binary message each way is the 32-byte HELLO; every later
//!   one is exactly one frame (`16 + length` bytes, `length` read from its
//!   header). Anything else ends the connection (`bad-message`).
//! * Liveness: a read that hears nothing (not a byte) for `ping_interval`
//!   sends a ping; hearing nothing for as long again ends the connection
//!   (`ping-timeout`). Time spent not reading (the receive ring is full)
//!   does not count.

// tungstenite's upgrade callback and handshake functions fix these error
// types (an HTTP response, a mid-handshake state); they are not ours to box.
#![allow(clippy::result_large_err)]

use super::conn::Framing;
use super::socket::Stream;
use super::NetEnd;
use crate::wire::{Kind, Side, Violation, HEADER_LEN, HELLO_LEN};
use parking_lot::Mutex;
use std::io::{self, IoSlice, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::http::{HeaderValue, StatusCode, Uri};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role as WsRole, WebSocket, WebSocketConfig, WebSocketContext};
use tungstenite::{Bytes, ClientRequestBuilder, Message};

/// The WebSocket subprotocol a psyne end offers and accepts.
pub(crate) const SUBPROTOCOL: &str = "psyne.v1";
/// Longest a close frame may wait to go out before the socket is shut down.
const CLOSE_WAIT: Duration = Duration::from_millis(200);
/// Longest a close reason may be: a control frame carries 125 bytes, two of
/// them the code.
const MAX_REASON: usize = 123;

/// The close code a violation is told with (PROTOCOL.md section 8).
pub(crate) fn close_code(kind: Kind) -> u16 {
    match kind {
        Kind::NotBinary => 1003,
        Kind::FrameTooLong => 1009,
        Kind::BadMessage | Kind::Truncated | Kind::BadUpgrade => 1002,
        Kind::TooManyPeers => 1013,
        Kind::PingTimeout => 1001,
        Kind::BadMagic
        | Kind::BadVersion
        | Kind::BadHello
        | Kind::HandshakeTimeout
        | Kind::BadFlags
        | Kind::BadCompression
        | Kind::ChecksumMismatch
        | Kind::BadControl => 1008,
    }
}

/// One direction's handle on the socket: reads go straight to it; writes
/// hold the connection's write lock and write everything they are given
/// (whole WebSocket frames) before returning.
struct Io {
    stream: Stream,
    lock: Arc<Mutex<()>>,
    /// How long a write may wait for the lock (the reader's pongs and
    /// pings: a writer stuck in a write means the peer is not reading);
    /// `None`: as long as it takes.
    wait: Option<Duration>,
    /// When the last byte arrived (reads only).
    heard: Instant,
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        if n > 0 {
            self.heard = Instant::now();
        }
        Ok(n)
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _g = match self.wait {
            None => self.lock.lock(),
            Some(d) => self
                .lock
                .try_lock_for(d)
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "the peer does not read"))?,
        };
        self.stream.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct RxHalf {
    ws: WebSocket<Io>,
    /// The binary message being read, and how much of it was read.
    msg: Bytes,
    at: usize,
    hello_seen: bool,
    /// What `set_read_timeout` asked for: a read that gets nothing for this
    /// long fails with `TimedOut`.
    timeout: Option<Duration>,
    /// When a ping went out unanswered.
    pinged: Option<Instant>,
}

struct TxHalf {
    ctx: WebSocketContext,
    io: Io,
    /// The HELLO or frame being gathered from the writes.
    msg: Vec<u8>,
    hello_sent: bool,
}

/// A WebSocket connection seen as the byte stream of psyne HELLO and frames
/// (module docs).
pub(crate) struct WsStream {
    tcp: Stream,
    rx: Mutex<RxHalf>,
    tx: Mutex<TxHalf>,
    ping_interval: Duration,
    /// A close frame went out or came in: none is sent again.
    closed: AtomicBool,
}

fn signal(f: Framing) -> io::Error {
    io::Error::other(f)
}

fn violation(kind: Kind, detail: impl Into<String>) -> io::Error {
    signal(Framing::Violation(Violation::new(kind, detail)))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A tungstenite error met while reading, as the driver's kind of error.
fn read_error(e: tungstenite::Error) -> io::Error {
    use tungstenite::Error as E;
    match e {
        E::Io(e) => e,
        E::ConnectionClosed | E::AlreadyClosed => {
            io::Error::new(io::ErrorKind::UnexpectedEof, "closed")
        }
        E::Capacity(c) => violation(Kind::FrameTooLong, c.to_string()),
        other => violation(Kind::BadMessage, other.to_string()),
    }
}

fn write_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl WsStream {
    /// Reads psyne bytes: the rest of the current binary message, or the
    /// next one (module docs for the checks and the liveness rule).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rx = self.rx.lock();
        let started = Instant::now();
        loop {
            if rx.at < rx.msg.len() {
                let n = buf.len().min(rx.msg.len() - rx.at);
                buf[..n].copy_from_slice(&rx.msg[rx.at..rx.at + n]);
                rx.at += n;
                if rx.at == rx.msg.len() {
                    // Let go of the message: it shares tungstenite's read
                    // buffer, which can then reuse its space.
                    rx.msg = Bytes::new();
                    rx.at = 0;
                }
                return Ok(n);
            }
            let e = match rx.ws.read() {
                Ok(Message::Binary(b)) => {
                    rx.pinged = None;
                    check_message(&mut rx.hello_seen, &b)?;
                    (rx.msg, rx.at) = (b, 0);
                    continue;
                }
                Ok(Message::Text(_)) => {
                    return Err(violation(
                        Kind::NotBinary,
                        "a text message; psyne messages are binary",
                    ))
                }
                Ok(Message::Close(f)) => {
                    self.closed.store(true, Relaxed);
                    let reason = f.map(|f| format!("{} {}", u16::from(f.code), f.reason));
                    return Err(signal(Framing::PeerClosed(reason)));
                }
                // Pings are answered by tungstenite; any message is a sign
                // of life.
                Ok(_) => {
                    rx.pinged = None;
                    continue;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(0)
                }
                Err(e) => read_error(e),
            };
            if !is_timeout(&e) {
                return Err(e);
            }
            let now = Instant::now();
            if rx.timeout.is_some_and(|t| now >= started + t) {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let silent = now.saturating_duration_since(rx.ws.get_ref().heard.max(started));
            match rx.pinged {
                Some(at) if now >= at + self.ping_interval && silent >= self.ping_interval => {
                    return Err(violation(
                        Kind::PingTimeout,
                        format!(
                            "no answer to a ping within {} ms",
                            self.ping_interval.as_millis()
                        ),
                    ))
                }
                None if silent >= self.ping_interval => {
                    rx.pinged = Some(now);
                    let sent = rx
                        .ws
                        .send(Message::Ping(Bytes::from_static(b"psyne")))
                        .map_err(write_error);
                    if let Err(e) = sent {
                        return Err(violation(
                            Kind::PingTimeout,
                            format!("could not send a ping: {e}"),
                        ));
                    }
                }
                _ => {}
            }
        }
    }

    /// Takes psyne bytes (a HELLO, then frames, possibly cut anywhere) and
    /// sends each complete HELLO or frame as one binary message. Everything
    /// given is consumed.
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut tx = self.tx.lock();
        let tx = &mut *tx;
        let mut total = 0;
        for b in bufs {
            let mut data: &[u8] = b;
            total += data.len();
            loop {
                let want = if !tx.hello_sent {
                    HELLO_LEN
                } else if tx.msg.len() < HEADER_LEN {
                    HEADER_LEN
                } else {
                    HEADER_LEN + frame_len(&tx.msg)
                };
                if tx.msg.len() < want {
                    if data.is_empty() {
                        break;
                    }
                    let take = (want - tx.msg.len()).min(data.len());
                    tx.msg.reserve_exact(want - tx.msg.len());
                    tx.msg.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    continue;
                }
                let msg = Bytes::from(std::mem::take(&mut tx.msg));
                tx.hello_sent = true;
                tx.ctx
                    .write(&mut tx.io, Message::Binary(msg))
                    .map_err(write_error)?;
            }
        }
        tx.ctx.flush(&mut tx.io).map_err(write_error)?;
        Ok(total)
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) {
        self.rx.lock().timeout = t;
    }

    pub(crate) fn tcp(&self) -> &Stream {
        &self.tcp
    }

    /// Sends a close frame (at most once per connection, best effort).
    fn close(&self, code: u16, reason: &str) {
        if self.closed.swap(true, Relaxed) {
            return;
        }
        let Some(mut tx) = self.tx.try_lock_for(CLOSE_WAIT) else {
            return; // the writer is stuck in a write: the peer is not reading
        };
        let tx = &mut *tx;
        let frame = close_frame(code, reason);
        let _ = self.tcp.set_write_timeout(Some(CLOSE_WAIT));
        let _ = tx.ctx.close(&mut tx.io, Some(frame));
        let _ = tx.ctx.flush(&mut tx.io);
    }

    /// Tells the peer about a violation with its close code.
    pub(crate) fn close_for(&self, v: &Violation) {
        self.close(close_code(v.kind), &v.to_string());
    }

    /// Closes (1000, normal closure, after whatever was written) and shuts
    /// the socket down.
    pub(crate) fn shutdown(&self) {
        self.close(1000, "");
        self.tcp.shutdown();
    }
}

/// A close frame with `reason` cut to what a close frame holds (on a
/// character boundary).
fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut cut = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..cut].into(),
    }
}

/// The `length` field of a frame header at the start of `b`.
fn frame_len(b: &[u8]) -> usize {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// One binary message is one HELLO (the first) or one frame (every other).
fn check_message(hello_seen: &mut bool, b: &[u8]) -> io::Result<()> {
    if !*hello_seen {
        if b.len() != HELLO_LEN {
            return Err(violation(
                Kind::BadMessage,
                format!(
                    "the first message has {} bytes; a HELLO has {HELLO_LEN}",
                    b.len()
                ),
            ));
        }
        *hello_seen = true;
        return Ok(());
    }
    if b.len() < HEADER_LEN || b.len() != HEADER_LEN + frame_len(b) {
        let says = if b.len() >= HEADER_LEN {
            format!("a frame of {} bytes", HEADER_LEN + frame_len(b))
        } else {
            "no whole header".to_string()
        };
        return Err(violation(
            Kind::BadMessage,
            format!("a message of {} bytes holds {says}", b.len()),
        ));
    }
    Ok(())
}

/// The limits tungstenite enforces on what it receives: a frame of the
/// largest length this end accepts, and nothing larger (checked on each
/// WebSocket frame header, before its payload is buffered).
fn ws_config(end: &NetEnd) -> WebSocketConfig {
    let max = HEADER_LEN + end.max_frame() as usize;
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// The request URI a connector sends (and `open` validates).
pub(crate) fn request_uri(host: &str, port: u16, path: &str) -> Result<Uri, String> {
    format!("ws://{host}:{port}{path}")
        .parse::<Uri>()
        .map_err(|e| format!("ws://{host}:{port}{path} is not a valid request URI: {e}"))
}

fn error_response(status: StatusCode, why: String) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(why));
    *r.status_mut() = status;
    r
}

/// The listener's answer to an upgrade request: only its path, and the
/// psyne subprotocol if the client offers subprotocols at all.
fn answer(path: &str, req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    if req.uri().path() != path {
        return Err(error_response(
            StatusCode::NOT_FOUND,
            format!(
                "no psyne channel at {}; this listener serves {path}",
                req.uri().path()
            ),
        ));
    }
    let offered: Vec<&str> = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if offered.contains(&SUBPROTOCOL) {
        resp.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
    } else if !offered.is_empty() {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            format!("this endpoint speaks the subprotocol {SUBPROTOCOL}, not {offered:?}"),
        ));
    }
    Ok(resp)
}

fn upgrade_failed<R>(e: HandshakeError<R>) -> Violation
where
    R: tungstenite::handshake::HandshakeRole,
{
    match e {
        HandshakeError::Interrupted(_) => Violation::new(
            Kind::HandshakeTimeout,
            "the WebSocket upgrade did not complete in time",
        ),
        HandshakeError::Failure(e) => {
            Violation::new(Kind::BadUpgrade, format!("WebSocket upgrade: {e}"))
        }
    }
}

/// Performs the WebSocket upgrade on a fresh connection (as the HTTP
/// server on a listener, the client on a connector), within the handshake
/// timeout, and returns the connection as a [`WsStream`].
pub(super) fn upgrade(
    end: &NetEnd,
    path: &str,
    tcp: Stream,
    side: Side,
) -> Result<Stream, Violation> {
    let io_err = |e: io::Error| Violation::new(Kind::BadUpgrade, format!("socket: {e}"));
    let t = end.opts.handshake_timeout;
    tcp.set_read_timeout(Some(t)).map_err(io_err)?;
    tcp.set_write_timeout(Some(t)).map_err(io_err)?;
    let lock = Arc::new(Mutex::new(()));
    let io = |wait| -> Result<Io, Violation> {
        Ok(Io {
            stream: tcp.try_clone().map_err(io_err)?,
            lock: lock.clone(),
            wait,
            heard: Instant::now(),
        })
    };
    let config = ws_config(end);
    let reader_io = io(Some(end.opts.ping_interval))?;
    let (ws, role) = match side {
        Side::Listener => {
            let ws = tungstenite::accept_hdr_with_config(
                reader_io,
                |req: &Request, resp| answer(path, req, resp),
                Some(config),
            )
            .map_err(upgrade_failed)?;
            (ws, WsRole::Server)
        }
        Side::Connector => {
            let (host, port) = match &end.addr {
                super::socket::Address::Tcp { host, port } => (host.as_str(), *port),
                super::socket::Address::Unix { .. } => unreachable!("ws runs over tcp"),
            };
            let uri =
                request_uri(host, port, path).map_err(|e| Violation::new(Kind::BadUpgrade, e))?;
            let req = ClientRequestBuilder::new(uri).with_sub_protocol(SUBPROTOCOL);
            let (ws, _) = tungstenite::client::client_with_config(req, reader_io, Some(config))
                .map_err(upgrade_failed)?;
            (ws, WsRole::Client)
        }
    };
    // Reads wake up this often to check the ping and read deadlines.
    let tick =
        (end.opts.ping_interval / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
    tcp.set_read_timeout(Some(tick)).map_err(io_err)?;
    tcp.set_write_timeout(None).map_err(io_err)?;
    let tx = TxHalf {
        ctx: WebSocketContext::new(role, Some(config)),
        io: io(None)?,
        msg: Vec::new(),
        hello_sent: false,
    };
    Ok(Stream::Ws(Arc::new(WsStream {
        tcp,
        rx: Mutex::new(RxHalf {
            ws,
            msg: Bytes::new(),
            at: 0,
            hello_seen: false,
            timeout: None,
            pinged: None,
        }),
        tx: Mutex::new(tx),
        ping_interval: end.opts.ping_interval,
        closed: AtomicBool::new(false),
    })))
}

/// One peer too many on a ws listener: the upgrade (briefly), then a close
/// with `too-many-peers`.
pub(super) fn refuse(end: &NetEnd, path: &str, tcp: &Stream, v: &Violation) {
    let _ = tcp.set_read_timeout(Some(CLOSE_WAIT));
    let _ = tcp.set_write_timeout(Some(CLOSE_WAIT));
    if let Ok(Ok(mut ws)) = tcp.try_clone().map(|s| {
        tungstenite::accept_hdr_with_config(
            Io {
                stream: s,
                lock: Arc::new(Mutex::new(())),
                wait: None,
                heard: Instant::now(),
            },
            |req: &Request, resp| answer(path, req, resp),
            Some(ws_config(end)),
        )
    }) {
        let _ = ws.close(Some(close_frame(close_code(v.kind), &v.to_string())));
        let _ = ws.flush();
    }
    tcp.shutdown();
}
