//! Baseline (a): plain Rust length-prefixed socket loops, blocking.
//!
//! Frame = 8-byte header (u32 payload length, u32 message type, little
//! endian) + payload; the first 8 payload bytes carry the sequence number.
//! * `Raw`: one `write_all` per message (header and payload contiguous in one
//!   frame buffer, so one write); the receiver reads the header and then the
//!   payload with `read_exact` straight from the socket (two reads a message).
//! * `RawBuf`: `BufWriter` / `BufReader` (64 KiB each) around the same frames.
//! * `Writev`: header and payload as two `IoSlice`s in one `write_vectored`
//!   (looping on short writes); the receiver is the unbuffered one of `Raw`.
//! * ping-pong: each side writes a whole frame with one `write_all` and reads
//!   through a `BufReader` (one `read` system call per message).

use crate::{
    fill_payload, parse_seq, Echo, Net, PingClient, Res, StreamRx, StreamTx, STOP, TIMEOUT,
};
use std::io::{BufReader, BufWriter, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};

const HDR: usize = 8;
const MSG_TYPE: u32 = 1;

/// A connected stream socket of either family.
pub enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    fn try_clone(&self) -> Res<Sock> {
        Ok(match self {
            Sock::Tcp(s) => Sock::Tcp(s.try_clone().map_err(e("clone"))?),
            Sock::Unix(s) => Sock::Unix(s.try_clone().map_err(e("clone"))?),
        })
    }
}

impl Read for Sock {
    #[inline]
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(b),
            Sock::Unix(s) => s.read(b),
        }
    }
}

impl Write for Sock {
    #[inline]
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(b),
            Sock::Unix(s) => s.write(b),
        }
    }
    #[inline]
    fn write_vectored(&mut self, b: &[IoSlice<'_>]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write_vectored(b),
            Sock::Unix(s) => s.write_vectored(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn e(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |err| match err.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("{what}: timed out after {TIMEOUT:?}")
        }
        _ => format!("{what}: {err}"),
    }
}

/// A connected pair (client, server) with read/write timeouts and, for TCP,
/// `TCP_NODELAY` on both ends.
pub fn pair(net: Net) -> Res<(Sock, Sock)> {
    let (a, b) = match net {
        // (ws rows have no raw column: Imp::on)
        Net::Tcp | Net::Ws => {
            let l = TcpListener::bind("127.0.0.1:0").map_err(e("bind"))?;
            let c = TcpStream::connect(l.local_addr().unwrap()).map_err(e("connect"))?;
            let (s, _) = l.accept().map_err(e("accept"))?;
            c.set_nodelay(true).map_err(e("nodelay"))?;
            s.set_nodelay(true).map_err(e("nodelay"))?;
            for x in [&c, &s] {
                x.set_read_timeout(Some(TIMEOUT)).map_err(e("timeout"))?;
                x.set_write_timeout(Some(TIMEOUT)).map_err(e("timeout"))?;
            }
            (Sock::Tcp(c), Sock::Tcp(s))
        }
        Net::Unix => {
            let path = crate::unix_path();
            let l = UnixListener::bind(&path).map_err(e("bind"))?;
            let c = UnixStream::connect(&path).map_err(e("connect"))?;
            let (s, _) = l.accept().map_err(e("accept"))?;
            let _ = std::fs::remove_file(&path);
            for x in [&c, &s] {
                x.set_read_timeout(Some(TIMEOUT)).map_err(e("timeout"))?;
                x.set_write_timeout(Some(TIMEOUT)).map_err(e("timeout"))?;
            }
            (Sock::Unix(c), Sock::Unix(s))
        }
    };
    Ok((a, b))
}

fn header(len: usize) -> [u8; HDR] {
    let mut h = [0u8; HDR];
    h[..4].copy_from_slice(&(len as u32).to_le_bytes());
    h[4..].copy_from_slice(&MSG_TYPE.to_le_bytes());
    h
}

/// Reads one frame into `buf` (resized to the payload); returns the length.
fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> Res<usize> {
    let mut h = [0u8; HDR];
    r.read_exact(&mut h).map_err(e("read header"))?;
    let len = u32::from_le_bytes(h[..4].try_into().unwrap()) as usize;
    let t = u32::from_le_bytes(h[4..].try_into().unwrap());
    if t != MSG_TYPE {
        return Err(format!("message type {t}, expected {MSG_TYPE}"));
    }
    if buf.len() < len {
        buf.resize(len, 0);
    }
    r.read_exact(&mut buf[..len]).map_err(e("read payload"))?;
    Ok(len)
}

// --- streaming senders ------------------------------------------------------

/// One write per message: header and payload contiguous in `frame`.
pub struct RawTx {
    w: Sock,
    frame: Vec<u8>,
}

impl RawTx {
    pub fn new(w: Sock, size: usize) -> RawTx {
        let mut frame = vec![0u8; HDR + size];
        frame[..HDR].copy_from_slice(&header(size));
        fill_payload(&mut frame[HDR..]);
        RawTx { w, frame }
    }
}

impl StreamTx for RawTx {
    #[inline]
    fn send(&mut self, seq: u64) -> Res<()> {
        self.frame[HDR..HDR + 8].copy_from_slice(&seq.to_le_bytes());
        self.w.write_all(&self.frame).map_err(e("write"))
    }
}

/// `BufWriter` (64 KiB): header and payload as two buffered writes.
pub struct BufTx {
    w: BufWriter<Sock>,
    hdr: [u8; HDR],
    payload: Vec<u8>,
}

impl BufTx {
    pub fn new(w: Sock, size: usize) -> BufTx {
        let mut payload = vec![0u8; size];
        fill_payload(&mut payload);
        BufTx {
            w: BufWriter::with_capacity(1 << 16, w),
            hdr: header(size),
            payload,
        }
    }
}

impl StreamTx for BufTx {
    #[inline]
    fn send(&mut self, seq: u64) -> Res<()> {
        self.payload[..8].copy_from_slice(&seq.to_le_bytes());
        self.w.write_all(&self.hdr).map_err(e("write"))?;
        self.w.write_all(&self.payload).map_err(e("write"))
    }
    fn flush(&mut self) -> Res<()> {
        self.w.flush().map_err(e("flush"))
    }
}

/// `write_vectored` of [header, payload], looping on short writes.
pub struct WritevTx {
    w: Sock,
    hdr: [u8; HDR],
    payload: Vec<u8>,
}

impl WritevTx {
    pub fn new(w: Sock, size: usize) -> WritevTx {
        let mut payload = vec![0u8; size];
        fill_payload(&mut payload);
        WritevTx {
            w,
            hdr: header(size),
            payload,
        }
    }
}

impl StreamTx for WritevTx {
    #[inline]
    fn send(&mut self, seq: u64) -> Res<()> {
        self.payload[..8].copy_from_slice(&seq.to_le_bytes());
        let mut iov = [IoSlice::new(&self.hdr), IoSlice::new(&self.payload)];
        let mut bufs: &mut [IoSlice<'_>] = &mut iov;
        while !bufs.is_empty() {
            match self.w.write_vectored(bufs) {
                Ok(0) => return Err("writev: wrote 0 bytes".into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(format!("writev: {err}")),
            }
        }
        Ok(())
    }
}

// --- streaming receivers ----------------------------------------------------

/// Unbuffered (`Raw`, `Writev`) or `BufReader` (`RawBuf`) frame reader.
pub struct FrameRx<R: Read> {
    r: R,
    buf: Vec<u8>,
}

pub fn rx_unbuffered(r: Sock, size: usize) -> FrameRx<Sock> {
    FrameRx {
        r,
        buf: vec![0u8; size],
    }
}

pub fn rx_buffered(r: Sock, size: usize) -> FrameRx<BufReader<Sock>> {
    FrameRx {
        r: BufReader::with_capacity(1 << 16, r),
        buf: vec![0u8; size],
    }
}

impl<R: Read + Send + 'static> StreamRx for FrameRx<R> {
    #[inline]
    fn recv(&mut self) -> Res<(u64, usize)> {
        let n = read_frame(&mut self.r, &mut self.buf)?;
        Ok((parse_seq(&self.buf[..n]), n))
    }
}

// --- ping-pong ----------------------------------------------------------------

/// One side of a ping-pong: whole frames out with one write, reads buffered.
pub struct PingSide {
    w: Sock,
    r: BufReader<Sock>,
    frame: Vec<u8>,
    buf: Vec<u8>,
}

impl PingSide {
    pub fn new(s: Sock, size: usize) -> Res<PingSide> {
        let r = BufReader::with_capacity(1 << 16, s.try_clone()?);
        let mut frame = vec![0u8; HDR + size];
        frame[..HDR].copy_from_slice(&header(size));
        fill_payload(&mut frame[HDR..]);
        Ok(PingSide {
            w: s,
            r,
            frame,
            buf: vec![0u8; size],
        })
    }
}

impl PingClient for PingSide {
    #[inline]
    fn round(&mut self, seq: u64) -> Res<u64> {
        self.frame[HDR..HDR + 8].copy_from_slice(&seq.to_le_bytes());
        self.w.write_all(&self.frame).map_err(e("write"))?;
        let n = read_frame(&mut self.r, &mut self.buf)?;
        Ok(parse_seq(&self.buf[..n]))
    }
    fn stop(&mut self) -> Res<()> {
        self.frame[HDR..HDR + 8].copy_from_slice(&STOP.to_le_bytes());
        self.w.write_all(&self.frame).map_err(e("write"))
    }
}

impl Echo for PingSide {
    #[inline]
    fn echo(&mut self) -> Res<bool> {
        let n = read_frame(&mut self.r, &mut self.buf)?;
        if parse_seq(&self.buf[..n]) == STOP {
            return Ok(false);
        }
        // Answer with one write: copy the payload behind a header.
        self.frame.truncate(HDR);
        self.frame[..HDR].copy_from_slice(&header(n));
        self.frame.extend_from_slice(&self.buf[..n]);
        self.w.write_all(&self.frame).map_err(e("write"))?;
        Ok(true)
    }
}
