//! `psyne send` and `psyne recv`: channels in shell pipelines.

use crate::{exit, ChannelArgs, Failure, RecvArgs, SendArgs};
use psyne::{CancelToken, Channel, ChannelType};
use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The signal that ended the command (0: none yet).
static SIGNALLED: AtomicI32 = AtomicI32::new(0);

/// Turns SIGINT, SIGTERM and SIGHUP into a cancellation of whatever the
/// command waits for, so that it detaches and exits normally: a process
/// killed inside a wait would leave its ipc:// segment attached (stale
/// until the next open or `inspect --clean`). Called before any channel is
/// opened, so that every thread (the library's included) inherits the mask
/// and the one thread below receives the signals.
fn cancel_on_signals() -> Result<Arc<CancelToken>, Failure> {
    let token = Arc::new(CancelToken::new());
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use;
    // pthread_sigmask only changes this thread's mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(Failure(exit::FAILURE, "cannot block signals".into()));
        }
        set
    };
    let t = token.clone();
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: `set` is a valid, initialised signal set; sigwait writes
        // the signal number into `sig`.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            SIGNALLED.store(sig, Ordering::SeqCst);
            t.cancel();
        }
    });
    Ok(token)
}

/// The failure for a wait a signal cancelled: exit 128 + the signal.
fn interrupted() -> Failure {
    let sig = SIGNALLED.load(Ordering::SeqCst);
    Failure(
        128u8.wrapping_add(sig as u8),
        format!("interrupted by signal {sig}"),
    )
}

fn open(c: &ChannelArgs) -> Result<Channel, Failure> {
    if c.uri.starts_with("memory://") {
        return Err(Failure(
            exit::USAGE,
            format!(
                "{}: memory:// channels live inside one process, so separate commands cannot share one; use ipc://NAME between processes on one host",
                c.uri
            ),
        ));
    }
    Ok(Channel::open(&c.uri, c.buffer, c.mode, ChannelType::Multi)?)
}

fn timeout(c: &ChannelArgs) -> Result<Option<Duration>, Failure> {
    match c.timeout {
        None => Ok(None),
        Some(s) if s.is_finite() && (0.0..=1e9).contains(&s) => {
            Ok(Some(Duration::from_secs_f64(s)))
        }
        Some(s) => Err(Failure(
            exit::USAGE,
            format!("--timeout {s} is not a number of seconds in 0..=1e9"),
        )),
    }
}

pub fn send(a: SendArgs) -> Result<u8, Failure> {
    let limit = timeout(&a.channel)?;
    let cancel = cancel_on_signals()?;
    let ch = open(&a.channel)?;
    let max = a.count.unwrap_or(u64::MAX);
    let mut sent = 0u64;
    let put = |msg: &[u8], sent: &mut u64| -> Result<(), Failure> {
        match ch.send_until(msg, a.msg_type, limit, Some(&cancel)) {
            Err(psyne::Error::Cancelled) => return Err(interrupted()),
            r => {
                r.map_err(|e| Failure::from(e).context(&format!("sending message {}", *sent + 1)))?
            }
        }
        *sent += 1;
        Ok(())
    };
    if a.files.is_empty() {
        let stdin = std::io::stdin();
        let mut lines = stdin.lock();
        let mut line = Vec::new();
        while sent < max {
            line.clear();
            let n = lines
                .read_until(b'\n', &mut line)
                .map_err(|e| Failure(exit::FAILURE, format!("reading stdin: {e}")))?;
            if n == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            put(&line, &mut sent)?;
        }
    } else {
        for f in &a.files {
            if sent >= max {
                break;
            }
            let data = if f.as_os_str() == "-" {
                let mut v = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut v)
                    .map_err(|e| Failure(exit::FAILURE, format!("reading stdin: {e}")))?;
                v
            } else {
                std::fs::read(f)
                    .map_err(|e| Failure(exit::FAILURE, format!("reading {}: {e}", f.display())))?
            };
            put(&data, &mut sent)?;
        }
    }
    drain(&ch, limit, &cancel)?;
    Ok(exit::OK)
}

/// Waits until every message sent has left this process's hands: taken by
/// a receiver (ipc://, where the segment goes away with its last process)
/// or written to a connected peer (sockets).
fn drain(ch: &Channel, limit: Option<Duration>, cancel: &CancelToken) -> Result<(), Failure> {
    let start = Instant::now();
    let network = !ch.uri().starts_with("ipc://");
    loop {
        let m = ch.metrics();
        // A peer may have taken everything and gone already: what counts is
        // that the ring was emptied into a connection.
        let connected = !network || m.peers > 0 || m.connects > 0;
        if ch.queued_bytes() == 0 && connected {
            return Ok(());
        }
        if cancel.is_cancelled() {
            return Err(interrupted());
        }
        if ch.is_stopped() {
            return Err(Failure(
                exit::FAILURE,
                format!("{}: the channel was stopped with messages queued", ch.uri()),
            ));
        }
        if limit.is_some_and(|t| start.elapsed() >= t) {
            return Err(Failure(
                exit::TIMEOUT,
                format!(
                    "{}: {} bytes still queued after {:.1} s ({})",
                    ch.uri(),
                    ch.queued_bytes(),
                    start.elapsed().as_secs_f64(),
                    if connected {
                        "nobody took them"
                    } else {
                        "no peer connected"
                    }
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn recv(a: RecvArgs) -> Result<u8, Failure> {
    let limit = timeout(&a.channel)?;
    let cancel = cancel_on_signals()?;
    let ch = open(&a.channel)?;
    let max = a.count.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut got = 0u64;
    while got < max {
        let msg = ch.recv_until(limit, Some(&cancel));
        match msg {
            Ok(m) => {
                let written = (|| {
                    if a.show_type {
                        write!(out, "{}\t", m.msg_type())?;
                    }
                    out.write_all(&m)?;
                    if !a.raw {
                        out.write_all(b"\n")?;
                    }
                    out.flush()
                })();
                match written {
                    Ok(()) => got += 1,
                    // The reader went away (`| head`): a normal end.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                    Err(e) => return Err(Failure(exit::FAILURE, format!("writing stdout: {e}"))),
                }
            }
            Err(psyne::Error::Timeout) if a.count.is_none() => break,
            Err(psyne::Error::Timeout) => {
                return Err(Failure(
                    exit::TIMEOUT,
                    format!("{}: {got} of {max} messages within the timeout", ch.uri()),
                ))
            }
            Err(psyne::Error::ChannelStopped) => break,
            Err(psyne::Error::Cancelled) => return Err(interrupted()),
            Err(e) => return Err(Failure::from(e).context("receiving")),
        }
    }
    Ok(exit::OK)
}
