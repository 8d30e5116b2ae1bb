//! One connection: the handshake, then a reader that moves frames from the
//! socket into the end's receive ring and a writer that moves runs of
//! messages from its send ring to the socket with vectored writes.
//!
//! Invariants:
//! * The reader is the only producer of the receive ring on this
//!   connection's behalf; a claim it holds is committed or cancelled before
//!   it returns, whatever the socket does.
//! * Records the writer takes from the send ring are its own until it frees
//!   them; it frees them only after the write that carried them returned.
//! * Every write to the socket holds `Peer::write_lock`, so a CLOSE frame
//!   from the reader never lands inside a frame from the writer.

use super::socket::Stream;
use super::NetEnd;
use crate::codec;
use crate::error::Error;
use crate::ring::wait::{CancelToken, WaitLimit};
use crate::ring::{Claim, Direction, Record, Ring};
use crate::wire::{self, Header, Hello, Kind, Side, Violation, HEADER_LEN, HELLO_LEN, RAW_LEN_LEN};
use parking_lot::Mutex;
use std::io::{self, IoSlice};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Socket read buffer: frames that fit are read many at a time and copied
/// into the ring; longer ones are read straight into it.
const READ_BUF: usize = 64 * 1024;
/// Most messages one run (one vectored write) carries.
const RUN_RECORDS: usize = 1024;
/// Payloads up to this size are copied, with their headers, into one
/// contiguous staging buffer: a slice per small message costs the kernel
/// more than the copy (measured: 64 B streaming was bound by the writer's
/// `writev` of two slices per message). Longer ones go out from the ring.
const COPY_MAX: u32 = 1024;
/// Payload bytes after which a run stops growing.
const RUN_BYTES: u64 = 4 << 20;
/// How long a CLOSE frame may take to go out before we close regardless.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(200);

/// A connected, handshaken peer.
pub(super) struct Peer {
    pub stream: Stream,
    /// Held for every write (see the module invariants).
    pub write_lock: Mutex<()>,
    /// The peer's HELLO.
    pub hello: Hello,
    /// Fired when either half of the connection ends: wakes the other half
    /// out of a ring wait.
    pub cancel: CancelToken,
}

/// Why a connection half ended.
#[derive(Debug)]
pub(super) enum Ended {
    /// The peer broke the protocol.
    Violation(Violation),
    /// The peer closed, with the reason of its CLOSE frame if it sent one.
    PeerClosed(Option<String>),
    /// A socket error (the peer vanished, or we shut the socket down).
    Io(io::Error),
    /// The channel was stopped (writer: after sending everything queued).
    Stopped,
    /// The other half ended first.
    Cancelled,
}

/// What a framing layer under a [`Stream`] (ws) found, carried through
/// the `io::Error` of a read: `From<io::Error> for Ended` unwraps it, so
/// the reader ends as it would have for the same event on a plain stream.
#[derive(Debug)]
pub(super) enum Framing {
    Violation(Violation),
    PeerClosed(Option<String>),
}

impl std::fmt::Display for Framing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Framing::Violation(v) => write!(f, "{v}"),
            Framing::PeerClosed(r) => write!(f, "peer closed: {}", r.as_deref().unwrap_or("")),
        }
    }
}

impl std::error::Error for Framing {}

impl From<io::Error> for Ended {
    fn from(e: io::Error) -> Ended {
        if !e.get_ref().is_some_and(|i| i.is::<Framing>()) {
            return Ended::Io(e);
        }
        match e.into_inner().and_then(|i| i.downcast::<Framing>().ok()) {
            Some(f) => match *f {
                Framing::Violation(v) => Ended::Violation(v),
                Framing::PeerClosed(reason) => Ended::PeerClosed(reason),
            },
            None => Ended::Io(io::ErrorKind::Other.into()), // checked above
        }
    }
}

impl From<Violation> for Ended {
    fn from(v: Violation) -> Ended {
        Ended::Violation(v)
    }
}

/// Sends our HELLO and reads the peer's, all within the handshake timeout.
pub(super) fn handshake(
    end: &NetEnd,
    stream: &Stream,
    own: Side,
) -> std::result::Result<Hello, Ended> {
    let deadline = Instant::now() + end.opts.handshake_timeout;
    stream.set_write_timeout(Some(end.opts.handshake_timeout))?;
    stream.write_all(&end.hello(own).encode())?;
    stream.set_write_timeout(None)?;
    end.counters
        .wire_bytes_sent
        .fetch_add(HELLO_LEN as u64, Relaxed);
    let mut b = [0u8; HELLO_LEN];
    read_exact_by(end, stream, &mut b, deadline, Kind::HandshakeTimeout)?;
    stream.set_read_timeout(None)?;
    Ok(Hello::decode(&b, own)?)
}

/// Reads exactly `buf.len()` bytes before `deadline`; past it, a
/// `on_timeout` violation; the stream ending first, `truncated` (or a clean
/// close if nothing at all was read and `on_timeout` is the handshake's).
fn read_exact_by(
    end: &NetEnd,
    stream: &Stream,
    buf: &mut [u8],
    deadline: Instant,
    on_timeout: Kind,
) -> std::result::Result<(), Ended> {
    let want = buf.len();
    let late = |got: usize| -> Ended {
        Violation::new(on_timeout, format!("{got} of {want} bytes arrived in time")).into()
    };
    // One timeout for every read (a system call each time it is set): a
    // read blocks at most until the deadline, and the deadline is checked
    // after each read, so the whole takes at most twice the time allowed.
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(late(0));
    }
    stream.set_read_timeout(Some(left))?;
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(Violation::new(
                    Kind::Truncated,
                    format!("stream ended after {got} of {} bytes", buf.len()),
                )
                .into())
            }
            Ok(n) => {
                got += n;
                end.counters
                    .wire_bytes_received
                    .fetch_add(n as u64, Relaxed);
            }
            Err(e) if is_timeout(&e) => return Err(late(got)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
        if got < buf.len() && Instant::now() >= deadline {
            return Err(late(got));
        }
    }
    Ok(())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Tells the peer why we close (where the protocol says to), best effort.
pub(super) fn send_close(peer_stream: &Stream, write_lock: &Mutex<()>, v: &Violation) {
    if let Stream::Ws(ws) = peer_stream {
        // A WebSocket close frame with the violation's code and reason.
        return ws.close_for(v);
    }
    if !v.kind.sends_close() {
        return;
    }
    let mut reason = v.to_string().into_bytes();
    reason.truncate(wire::MAX_CONTROL_LEN as usize);
    let Some(_w) = write_lock.try_lock_for(CLOSE_TIMEOUT) else {
        return; // the writer is stuck in a write: the peer is not reading
    };
    let _ = peer_stream.set_write_timeout(Some(CLOSE_TIMEOUT));
    let mut frame = Header::close(reason.len() as u32).encode().to_vec();
    frame.extend_from_slice(&reason);
    let _ = peer_stream.write_all(&frame);
}

// ---------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------

/// Moves frames from the socket into the receive ring until the
/// connection or the channel ends.
pub(super) struct Reader<'a> {
    end: &'a NetEnd,
    peer: &'a Peer,
    buf: Box<[u8]>,
    /// Unread bytes are `buf[start..filled]`.
    start: usize,
    filled: usize,
    /// Compressed frames longer than `buf`: their body, before it is
    /// decompressed into the ring (reused; at most `max_frame` bytes).
    zbuf: Vec<u8>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(end: &'a NetEnd, peer: &'a Peer) -> Reader<'a> {
        Reader {
            end,
            peer,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            start: 0,
            filled: 0,
            zbuf: Vec::new(),
        }
    }

    pub(super) fn run(&mut self) -> Ended {
        loop {
            if let Err(e) = self.next_frame() {
                return e;
            }
        }
    }

    fn ring(&self) -> &'a Ring {
        &self.end.rx.ring
    }

    /// Makes at least `n <= READ_BUF` unread bytes available. `at_boundary`:
    /// the stream may end here cleanly (between frames).
    fn fill(&mut self, n: usize, at_boundary: bool) -> std::result::Result<(), Ended> {
        debug_assert!(n <= READ_BUF);
        if self.filled - self.start >= n {
            return Ok(());
        }
        if self.start + n > READ_BUF {
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
        }
        while self.filled - self.start < n {
            match self.peer.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) if at_boundary && self.filled == self.start => {
                    return Err(Ended::PeerClosed(None))
                }
                Ok(0) => {
                    return Err(Violation::new(
                        Kind::Truncated,
                        format!(
                            "stream ended inside a frame ({} of {n} bytes)",
                            self.filled - self.start
                        ),
                    )
                    .into())
                }
                Ok(k) => {
                    self.filled += k;
                    self.end
                        .counters
                        .wire_bytes_received
                        .fetch_add(k as u64, Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn next_frame(&mut self) -> std::result::Result<(), Ended> {
        self.fill(HEADER_LEN, true)?;
        let hb: &[u8; HEADER_LEN] = self.buf[self.start..self.start + HEADER_LEN]
            .try_into()
            .expect("HEADER_LEN bytes");
        let h = Header::decode(hb, self.end.max_frame(), wire::DECODERS)?;
        let len = h.len as usize;
        if h.is_control() {
            self.fill(HEADER_LEN + len, false)?;
            let p = self.start + HEADER_LEN;
            let reason = String::from_utf8_lossy(&self.buf[p..p + len]).into_owned();
            self.start = p + len;
            return Err(Ended::PeerClosed(Some(reason)));
        }
        if h.algo() != 0 {
            return self.compressed_frame(&h);
        }
        // A frame that fits the buffer is read whole before space is
        // claimed for it: on a listener's receive ring a held claim delays
        // every later message, so a peer trickling a frame must not hold one.
        let small = HEADER_LEN + len <= READ_BUF;
        if small {
            self.fill(HEADER_LEN + len, false)?;
        }
        let claim = self.claim(len)?;
        let dst = self.ring().payload_ptr(claim.pos);
        let result = if small {
            let p = self.start + HEADER_LEN;
            // SAFETY: the claim owns `len` writable bytes at `dst` until
            // committed or cancelled; the source is our own buffer, which
            // holds the whole frame.
            unsafe { std::ptr::copy_nonoverlapping(self.buf[p..].as_ptr(), dst, len) };
            self.start = p + len;
            Ok(())
        } else {
            // What is buffered, then the rest straight into the ring.
            self.read_large(dst, len)
        };
        if let Err(e) = result {
            self.ring().cancel(claim);
            return Err(e);
        }
        // SAFETY: as above; the bytes were written just now.
        self.finish(&h, claim, unsafe { std::slice::from_raw_parts(dst, len) })
    }

    /// Checks a received message's checksum (if the frame has one) and
    /// commits it, or cancels it and reports the mismatch.
    fn finish(&self, h: &Header, claim: Claim, msg: &[u8]) -> std::result::Result<(), Ended> {
        if h.has_checksum() {
            let got = wire::checksum(msg);
            if got != h.checksum {
                self.ring().cancel(claim);
                self.end.counters.checksum_failures.fetch_add(1, Relaxed);
                return Err(Violation::new(
                    Kind::ChecksumMismatch,
                    format!(
                        "message of {} bytes has CRC32C {got:#010x}, the frame says {:#010x}",
                        msg.len(),
                        h.checksum
                    ),
                )
                .into());
            }
        }
        let msg_type = if self.end.single_type { 0 } else { h.msg_type };
        if self.ring().commit(claim, msg_type) {
            Ok(())
        } else {
            Err(Ended::Stopped)
        }
    }

    /// A compressed frame: its body is read whole (from the read buffer, or
    /// into `zbuf` when longer), then the raw length is checked against our
    /// `max_frame` before space is claimed, and the body is decompressed
    /// straight into the ring.
    fn compressed_frame(&mut self, h: &Header) -> std::result::Result<(), Ended> {
        let len = h.len as usize; // <= max_frame, >= RAW_LEN_LEN: Header::decode
        let mut z = std::mem::take(&mut self.zbuf);
        let in_buf = HEADER_LEN + len <= READ_BUF;
        let r = if in_buf {
            self.fill(HEADER_LEN + len, false).map(|()| {
                let p = self.start + HEADER_LEN;
                self.start = p + len;
                p
            })
        } else {
            z.clear();
            z.resize(len, 0);
            self.read_large(z.as_mut_ptr(), len).map(|()| 0)
        };
        let r = r.and_then(|at| {
            let body = if in_buf {
                &self.buf[at..at + len]
            } else {
                &z[..]
            };
            self.decompress(h, body)
        });
        self.zbuf = z;
        r
    }

    /// Decompresses a compressed frame's payload (raw length + body) into
    /// the receive ring.
    fn decompress(&self, h: &Header, payload: &[u8]) -> std::result::Result<(), Ended> {
        let (raw, body) = payload.split_at(RAW_LEN_LEN);
        let raw = u32::from_le_bytes(raw.try_into().expect("RAW_LEN_LEN bytes"));
        let max = self.end.max_frame();
        if raw > max {
            return Err(Violation::new(
                Kind::BadCompression,
                format!("compressed frame declares {raw} bytes; this side accepts at most {max}"),
            )
            .into());
        }
        let claim = self.claim(raw as usize)?;
        let dst = self.ring().payload_ptr(claim.pos);
        // SAFETY: the claim owns `raw` writable bytes at `dst` until committed
        // or cancelled.
        let msg = unsafe { std::slice::from_raw_parts_mut(dst, raw as usize) };
        if let Err(e) = codec::decompress(h.algo(), body, msg) {
            self.ring().cancel(claim);
            return Err(Violation::new(Kind::BadCompression, e).into());
        }
        self.finish(h, claim, msg)
    }

    /// A frame longer than the read buffer: what is buffered, then the rest
    /// read into the ring, all before the frame deadline.
    fn read_large(&mut self, dst: *mut u8, len: usize) -> std::result::Result<(), Ended> {
        // The header is buffered (fill(HEADER_LEN) succeeded).
        let p = self.start + HEADER_LEN;
        let have = (self.filled - p).min(len);
        // SAFETY: the claim owns `len >= have` bytes at `dst`.
        unsafe { std::ptr::copy_nonoverlapping(self.buf[p..].as_ptr(), dst, have) };
        self.start = p + have;
        if self.start == self.filled {
            (self.start, self.filled) = (0, 0);
        }
        // SAFETY: as above: bytes `have..len` of the claim are ours to write.
        let rest = unsafe { std::slice::from_raw_parts_mut(dst.add(have), len - have) };
        // The frame holds space in the ring while it arrives, so it gets a
        // deadline: the handshake timeout, plus 1 ms per KiB (a peer slower
        // than about 1 MB/s is dropped).
        let deadline = Instant::now()
            + self.end.opts.handshake_timeout
            + Duration::from_millis((len >> 10) as u64);
        let r = read_exact_by(self.end, &self.peer.stream, rest, deadline, Kind::Truncated);
        self.peer.stream.set_read_timeout(None)?;
        r
    }

    /// Claims `len` bytes in the receive ring, waiting for room (the
    /// socket is not read meanwhile: that is the backpressure).
    fn claim(&self, len: usize) -> std::result::Result<Claim, Ended> {
        let ring = self.ring();
        if !ring.is_stopped() {
            if let Some(c) = ring.try_claim(len) {
                return Ok(c);
            }
        }
        let limit = WaitLimit {
            timeout: None,
            cancel: Some(&self.peer.cancel),
            spin: self.end.spin,
        };
        ring.block_on(Direction::Space, limit, |_| {
            if ring.is_stopped() {
                return Err(Error::ChannelStopped);
            }
            ring.free_for_waiting_producer();
            Ok(ring.try_claim(len))
        })
        .map_err(ring_end)
    }
}

fn ring_end(e: Error) -> Ended {
    match e {
        Error::ChannelStopped => Ended::Stopped,
        _ => Ended::Cancelled,
    }
}

// ---------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------

/// Messages taken from the send ring, written out together.
pub(super) struct Run {
    /// Headers and small payloads, contiguous (reused from run to run).
    staging: Vec<u8>,
    /// (offset in `staging`, position, length) of each payload written
    /// from the ring.
    cuts: Vec<(usize, u64, u32)>,
    /// (position, length) of each message to write.
    records: Vec<(u64, u32)>,
    /// Multi-consumer send rings: every record taken, to release one by one.
    taken: Vec<Record>,
    /// Single-consumer send rings: the span to free.
    span: (u64, u64),
    /// Payload bytes after which the run being taken stops growing.
    max_bytes: u64,
    /// Compression output of one message (reused).
    comp: Vec<u8>,
}

impl Run {
    pub(super) fn new() -> Run {
        Run {
            staging: Vec::with_capacity(64 * 1024),
            cuts: Vec::new(),
            max_bytes: RUN_BYTES,
            records: Vec::with_capacity(RUN_RECORDS),
            taken: Vec::with_capacity(RUN_RECORDS),
            span: (0, 0),
            comp: Vec::new(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Takes what is queued without waiting; whether anything was.
    fn take_now(&mut self, ring: &Ring) -> bool {
        if ring.is_multi_consumer() {
            let mut bytes = 0u64;
            while self.taken.len() < RUN_RECORDS && bytes < self.max_bytes {
                match ring.try_read(u32::MAX) {
                    Ok(Some(rec)) => {
                        bytes += rec.len() as u64;
                        self.records.push((rec.pos, rec.len()));
                        self.taken.push(rec);
                    }
                    _ => break,
                }
            }
            !self.taken.is_empty()
        } else {
            let start = ring.read_position();
            let records = &mut self.records;
            let end = ring.read_run(RUN_RECORDS, self.max_bytes, |rec| {
                records.push((rec.pos, rec.len()))
            });
            self.span = (start, end);
            // A run of padding alone is freed at once.
            if self.records.is_empty() && end != start {
                ring.free_run(start, end);
                self.span = (end, end);
            }
            !self.records.is_empty()
        }
    }

    /// Takes the next run, waiting for the first message. `Err(Stopped)`
    /// once the ring is stopped and drained.
    pub(super) fn take(
        &mut self,
        ring: &Ring,
        limit: WaitLimit<'_>,
        max_bytes: u64,
    ) -> std::result::Result<(), Ended> {
        debug_assert!(self.is_empty());
        self.max_bytes = max_bytes.clamp(1, RUN_BYTES);
        if self.take_now(ring) {
            return Ok(());
        }
        ring.block_on(Direction::Data, limit, |_| {
            if self.take_now(ring) {
                return Ok(Some(()));
            }
            if ring.drained_after_stop() {
                // Look once more: a message committed just before the stop.
                return if self.take_now(ring) {
                    Ok(Some(()))
                } else {
                    Err(Error::ChannelStopped)
                };
            }
            Ok(None)
        })
        .map_err(ring_end)
    }

    /// Gives the run's records back to the ring.
    pub(super) fn release(&mut self, ring: &Ring) {
        if ring.is_multi_consumer() {
            for rec in self.taken.drain(..) {
                ring.release(rec);
            }
        } else {
            ring.free_run(self.span.0, self.span.1);
        }
        self.records.clear();
    }

    /// Writes the run to one peer (frames the peer cannot take are dropped
    /// and counted). The caller holds nothing; this takes the peer's write
    /// lock.
    pub(super) fn write_to(&mut self, end: &NetEnd, ring: &Ring, peer: &Peer) -> io::Result<()> {
        let max = peer.hello.max_frame;
        let cfg = &end.opts.codec;
        // Compress only in an algorithm the peer decodes.
        let compressing = cfg.kind != crate::CompressionType::None
            && peer.hello.decoders & (1 << (codec::algo_of(cfg.kind) - 1)) != 0;
        let mut compressed = 0u64;
        // Lay the frames out: headers and small payloads copied into
        // `staging`, large payloads left in the ring; `cuts` records where
        // a ring payload goes between two stretches of staging. Compressed
        // payloads (raw length + body) are copied into `staging`.
        self.staging.clear();
        self.cuts.clear();
        for &(pos, len) in &self.records {
            if len > max {
                end.refused(format!(
                    "a message of {len} bytes was not sent: the peer accepts at most {max}"
                ));
                continue;
            }
            // SAFETY: the record is ours until the run is released, and its
            // producer finished writing it before publishing it.
            let payload =
                unsafe { std::slice::from_raw_parts(ring.payload_ptr(pos), len as usize) };
            let checksum = cfg.enable_checksum.then(|| wire::checksum(payload));
            let msg_type = if end.single_type {
                0
            } else {
                ring.record_type(pos)
            };
            let compressed_to = if compressing {
                codec::compress(cfg, payload, &mut self.comp)
                    .filter(|&(_, n)| RAW_LEN_LEN + n < payload.len())
            } else {
                None
            };
            if let Some((algo, n)) = compressed_to {
                let framed = (RAW_LEN_LEN + n) as u32;
                self.staging
                    .extend_from_slice(&Header::message(framed, msg_type, checksum, algo).encode());
                self.staging.extend_from_slice(&len.to_le_bytes());
                self.staging.extend_from_slice(&self.comp[..n]);
                compressed += 1;
                continue;
            }
            self.staging
                .extend_from_slice(&Header::message(len, msg_type, checksum, 0).encode());
            if len <= COPY_MAX {
                self.staging.extend_from_slice(payload);
            } else {
                self.cuts.push((self.staging.len(), pos, len));
            }
        }
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(2 * self.cuts.len() + 1);
        let mut from = 0;
        for &(at, pos, len) in &self.cuts {
            slices.push(IoSlice::new(&self.staging[from..at]));
            // SAFETY: as above.
            slices.push(IoSlice::new(unsafe {
                std::slice::from_raw_parts(ring.payload_ptr(pos), len as usize)
            }));
            from = at;
        }
        if from < self.staging.len() {
            slices.push(IoSlice::new(&self.staging[from..]));
        }
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let _w = peer.write_lock.lock();
        write_all_vectored(&peer.stream, &mut slices)?;
        end.counters
            .wire_bytes_sent
            .fetch_add(total as u64, Relaxed);
        if compressed != 0 {
            end.counters
                .messages_compressed
                .fetch_add(compressed, Relaxed);
        }
        Ok(())
    }
}

/// Waits until the peer's socket can take more bytes, and says about how
/// many it can take now (at least 1). A listener's writers compete for its
/// messages, and one whose peer does not read must take none — else it
/// would sit on them, and messages are freed in ring order, so the ring
/// would fill and every peer stall. A shut-down socket counts as writable
/// (the write that follows fails).
pub(super) fn socket_room(stream: &Stream, sndbuf: &mut usize) -> io::Result<u64> {
    let fd = stream.fd();
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd; `fd` is our open socket.
        let r = unsafe { libc::poll(&mut p, 1, -1) };
        if r >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if *sndbuf == 0 {
        let mut v: libc::c_int = 0;
        let mut l = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `l` are valid for the option's int.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&mut v as *mut libc::c_int).cast(),
                &mut l,
            )
        };
        *sndbuf = if r == 0 && v > 0 { v as usize } else { 1 << 16 };
    }
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int: the bytes still queued.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
    let queued = if r == 0 { queued.max(0) as usize } else { 0 };
    Ok(sndbuf.saturating_sub(queued).max(1) as u64)
}

/// `write_all` over several slices: one `writev` per call, continuing where
/// a partial write stopped.
fn write_all_vectored(stream: &Stream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    // Linux takes at most 1024 slices per call.
    const IOV_MAX: usize = 1024;
    while !slices.is_empty() {
        let n = match stream.write_vectored(&slices[..slices.len().min(IOV_MAX)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        advance(&mut slices, n);
    }
    Ok(())
}

/// Drops the first `n` bytes of `slices` (`IoSlice::advance_slices`, which
/// needs a newer Rust than this crate's minimum).
fn advance<'a>(slices: &mut &mut [IoSlice<'a>], mut n: usize) {
    let mut skip = 0;
    for s in slices.iter() {
        if n < s.len() {
            break;
        }
        n -= s.len();
        skip += 1;
    }
    let rest = std::mem::take(slices);
    *slices = &mut rest[skip..];
    if let Some(first) = slices.first_mut() {
        if n > 0 {
            let bytes: &'a [u8] = {
                // SAFETY: an IoSlice<'a> derefs to bytes that live for 'a;
                // the slice is re-made shorter from the same memory.
                unsafe { std::slice::from_raw_parts(first.as_ptr(), first.len()) }
            };
            *first = IoSlice::new(&bytes[n..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_drops_exactly_n_bytes() {
        let (a, b, c) = ([1u8, 2, 3], [4u8, 5], [6u8, 7, 8, 9]);
        for n in 0..=9 {
            let mut v = [IoSlice::new(&a), IoSlice::new(&b), IoSlice::new(&c)];
            let mut s: &mut [IoSlice<'_>] = &mut v;
            advance(&mut s, n);
            let rest: Vec<u8> = s.iter().flat_map(|x| x.iter().copied()).collect();
            assert_eq!(rest, (n as u8 + 1..=9).collect::<Vec<u8>>(), "n = {n}");
        }
    }
}
