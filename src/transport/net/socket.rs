//! Opening sockets: the one place `tcp://` and `unix://` differ. Everything
//! above works on a [`Stream`] and a [`Listener`], whatever their family
//! (a `ws://` connection is a TCP one wrapped, once upgraded, in
//! [`Stream::Ws`]).

use super::ws::WsStream;
use crate::config::Endpoint;
use crate::error::{Error, Result};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a socket end binds or connects.
#[derive(Debug, Clone)]
pub(crate) enum Address {
    Tcp { host: String, port: u16 },
    Unix { path: PathBuf },
}

impl Address {
    pub(crate) fn from_endpoint(e: &Endpoint) -> Address {
        match e {
            Endpoint::Tcp { host, port, .. } | Endpoint::Ws { host, port, .. } => Address::Tcp {
                host: host.clone(),
                port: *port,
            },
            Endpoint::Unix { path, .. } => Address::Unix {
                path: PathBuf::from(path),
            },
            _ => unreachable!("net::open is only called for stream sockets"),
        }
    }
}

/// A connected stream socket.
/// [`Stream::linger_after_close`]: how long the peer may stay silent, and
/// how long the whole linger may last.
const LINGER_QUIET: Duration = Duration::from_millis(50);
const LINGER_MAX: Duration = Duration::from_millis(500);

pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// An upgraded WebSocket connection: the same psyne bytes, carried in
    /// binary messages (`ws.rs`).
    Ws(Arc<WsStream>),
}

impl Stream {
    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Ws(s) => Stream::Ws(s.clone()),
        })
    }

    /// Ends both directions: wakes a thread blocked reading or writing it.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Ws(s) => {
                s.shutdown();
                Ok(())
            }
        };
    }

    /// After a close frame told the peer why it is dropped: ends our sending
    /// side and reads (discarding) what the peer still sends, until it
    /// closes, falls silent for [`LINGER_QUIET`], or [`LINGER_MAX`] passed.
    /// Closing with unread bytes would reset the connection, and a reset can
    /// make the peer's system drop the close frame before its application
    /// reads it (the "lingering close" of HTTP servers).
    pub(crate) fn linger_after_close(&self) {
        let raw = match self {
            Stream::Ws(s) => s.tcp(),
            other => other,
        };
        // SAFETY: `fd` is this stream's open socket; shutdown does not close it.
        unsafe { libc::shutdown(raw.fd(), libc::SHUT_WR) };
        if raw.set_read_timeout(Some(LINGER_QUIET)).is_err() {
            return;
        }
        let deadline = std::time::Instant::now() + LINGER_MAX;
        let mut buf = [0u8; 4096];
        while std::time::Instant::now() < deadline {
            match raw.read(&mut buf) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }

    pub(crate) fn fd(&self) -> std::os::fd::RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Ws(s) => s.tcp().fd(),
        }
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Ws(s) => {
                s.set_read_timeout(t);
                Ok(())
            }
        }
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Ws(s) => s.tcp().set_write_timeout(t),
        }
    }

    #[inline]
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&mut &*s).read(buf),
            Stream::Unix(s) => (&mut &*s).read(buf),
            Stream::Ws(s) => s.read(buf),
        }
    }

    /// `writev`, as `sendmsg` with `MSG_NOSIGNAL`: a peer that is gone is an
    /// `EPIPE` error here, never a SIGPIPE that kills the process (C and Go
    /// programs do not ignore it, as Rust programs do).
    #[inline]
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if let Stream::Ws(s) = self {
            return s.write_vectored(bufs);
        }
        // SAFETY: an all-zero msghdr is valid (no name, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        // IoSlice is ABI-compatible with iovec on Unix (std guarantees it);
        // sendmsg only reads the slices.
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len() as _;
        // SAFETY: `msg` points at `bufs.len()` valid iovecs that outlive the
        // call; `fd` is our open socket.
        let n = unsafe { libc::sendmsg(self.fd(), &msg, libc::MSG_NOSIGNAL) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    pub(crate) fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_vectored(&[IoSlice::new(buf)]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A listening socket.
pub(crate) enum Listener {
    Tcp(TcpListener),
    /// The path is removed when the listener is dropped.
    Unix(UnixListener, PathBuf),
}

/// Connections waiting to be accepted (the kernel's queue, not ours).
const BACKLOG: i32 = 1024;

impl Listener {
    /// Binds and listens on `addr`.
    pub(crate) fn bind(addr: &Address) -> Result<Listener> {
        match addr {
            Address::Tcp { host, port } => bind_tcp(host, *port),
            Address::Unix { path } => bind_unix(path),
        }
    }

    /// Accepts one connection, configured like a connector's.
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            Listener::Unix(l, _) => Ok(Stream::Unix(l.accept()?.0)),
        }
    }

    /// Wakes a thread blocked in [`Listener::accept`] (on Linux, shutting
    /// a listening socket down makes `accept` fail at once).
    pub(crate) fn shutdown(&self) {
        let fd = match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        };
        // SAFETY: `fd` is our open listening socket; shutdown does not
        // close it (the owner does, on drop).
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }

    /// `HOST:PORT` (the port the system chose for port 0) or the path.
    pub(crate) fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Listener::Unix(_, p) => p.display().to_string(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(l, path) = self {
            // Remove the file only if it is still our socket: another
            // listener may have replaced it meanwhile.
            let ours = l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.to_path_buf()));
            if ours.as_deref() == Some(path.as_path()) && is_socket(path) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Connects to `addr`, giving up after `timeout`.
pub(crate) fn connect(addr: &Address, timeout: Duration) -> io::Result<Stream> {
    match addr {
        Address::Tcp { host, port } => {
            let mut last = None;
            for a in resolve(host, *port)? {
                match TcpStream::connect_timeout(&a, timeout) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
            }))
        }
        Address::Unix { path } => UnixStream::connect(path).map(Stream::Unix),
    }
}

fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host, port).to_socket_addrs()?.collect())
}

fn io_error(what: String, e: io::Error) -> Error {
    Error::io(&what, e)
}

fn bind_tcp(host: &str, port: u16) -> Result<Listener> {
    let wildcard = matches!(host, "" | "*" | "0.0.0.0");
    let addrs: Vec<SocketAddr> = if wildcard {
        vec![SocketAddr::from(([0, 0, 0, 0], port))]
    } else {
        resolve(host, port).map_err(|e| {
            Error::invalid(format!("tcp://{host}:{port}: cannot resolve the host: {e}"))
        })?
    };
    let mut last = None;
    for a in addrs {
        let sock = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))
            .map_err(|e| io_error(format!("tcp://{a}: socket"), e))?;
        sock.set_reuse_address(true)
            .map_err(|e| io_error(format!("tcp://{a}: SO_REUSEADDR"), e))?;
        if a.is_ipv6() {
            // `[::]` takes IPv4 peers too.
            let _ = sock.set_only_v6(false);
        }
        match sock
            .bind(&SockAddr::from(a))
            .and_then(|()| sock.listen(BACKLOG))
        {
            Ok(()) => return Ok(Listener::Tcp(sock.into())),
            Err(e) => last = Some(io_error(format!("tcp://{a}: cannot listen"), e)),
        }
    }
    Err(last.unwrap_or_else(|| Error::invalid(format!("tcp://{host}:{port}: no address"))))
}

fn is_socket(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

fn bind_unix(path: &std::path::Path) -> Result<Listener> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            // A socket file: live if somebody accepts on it, else left by a
            // listener that died; only the stale one is removed.
            if UnixStream::connect(path).is_ok() {
                return Err(Error::Io(format!(
                    "unix://{shown}: another listener is accepting on this path"
                )));
            }
            std::fs::remove_file(path)
                .map_err(|e| io_error(format!("unix://{shown}: removing the stale socket"), e))?;
        }
        Ok(_) => {
            return Err(Error::Io(format!(
                "unix://{shown}: the path exists and is not a socket; not replacing it"
            )))
        }
        Err(_) => {}
    }
    let l = UnixListener::bind(path)
        .map_err(|e| io_error(format!("unix://{shown}: cannot listen"), e))?;
    Ok(Listener::Unix(l, path.to_path_buf()))
}
