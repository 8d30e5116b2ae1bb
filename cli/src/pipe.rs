//! `psyne send` and `psyne recv`: channels in shell pipelines.

use crate::{exit, ChannelArgs, Failure, RecvArgs, SendArgs};
use psyne::{Channel, ChannelType};
use std::io::{BufRead, Read, Write};
use std::time::{Duration, Instant};

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
        Some(s) if s.is_finite() && s >= 0.0 && s <= 1e9 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(Failure(exit::USAGE, format!("--timeout {s} is not a number of seconds in 0..=1e9"))),
    }
}

pub fn send(a: SendArgs) -> Result<u8, Failure> {
    let limit = timeout(&a.channel)?;
    let ch = open(&a.channel)?;
    let max = a.count.unwrap_or(u64::MAX);
    let mut sent = 0u64;
    let put = |msg: &[u8], sent: &mut u64| -> Result<(), Failure> {
        match limit {
            Some(t) => ch.send_timeout(msg, a.msg_type, t),
            None => ch.send(msg, a.msg_type),
        }
        .map_err(|e| Failure::from(e).context(&format!("sending message {}", *sent + 1)))?;
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
                std::fs::read(f).map_err(|e| Failure(exit::FAILURE, format!("reading {}: {e}", f.display())))?
            };
            put(&data, &mut sent)?;
        }
    }
    drain(&ch, limit)?;
    Ok(exit::OK)
}

/// Waits until every message sent has left this process's hands: taken by
/// a receiver (ipc://, where the segment goes away with its last process)
/// or written to a connected peer (sockets).
fn drain(ch: &Channel, limit: Option<Duration>) -> Result<(), Failure> {
    let start = Instant::now();
    let network = !ch.uri().starts_with("ipc://");
    loop {
        let m = ch.metrics();
        let connected = !network || m.peers > 0;
        if ch.queued_bytes() == 0 && connected {
            return Ok(());
        }
        if ch.is_stopped() {
            return Err(Failure(exit::FAILURE, format!("{}: the channel was stopped with messages queued", ch.uri())));
        }
        if limit.is_some_and(|t| start.elapsed() >= t) {
            return Err(Failure(
                exit::TIMEOUT,
                format!(
                    "{}: {} bytes still queued after {:.1} s ({})",
                    ch.uri(),
                    ch.queued_bytes(),
                    start.elapsed().as_secs_f64(),
                    if connected { "nobody took them" } else { "no peer connected" }
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn recv(a: RecvArgs) -> Result<u8, Failure> {
    let limit = timeout(&a.channel)?;
    let ch = open(&a.channel)?;
    let max = a.count.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut got = 0u64;
    let write_err = |e: std::io::Error| Failure(exit::FAILURE, format!("writing stdout: {e}"));
    while got < max {
        let msg = match limit {
            Some(t) => ch.recv_timeout(t),
            None => ch.recv(),
        };
        match msg {
            Ok(m) => {
                if a.show_type {
                    write!(out, "{}\t", m.msg_type()).map_err(write_err)?;
                }
                out.write_all(&m).map_err(write_err)?;
                if !a.raw {
                    out.write_all(b"\n").map_err(write_err)?;
                }
                out.flush().map_err(write_err)?;
                got += 1;
            }
            Err(psyne::Error::Timeout) if a.count.is_none() => break,
            Err(psyne::Error::Timeout) => {
                return Err(Failure(
                    exit::TIMEOUT,
                    format!("{}: {got} of {max} messages within the timeout", ch.uri()),
                ))
            }
            Err(psyne::Error::ChannelStopped) => break,
            Err(e) => return Err(Failure::from(e).context("receiving")),
        }
    }
    Ok(exit::OK)
}
