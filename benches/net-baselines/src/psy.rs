//! psyne `tcp://`, `unix://` and `ws://` (feature `psyne-net`).
//!
//! One channel per end: the server opens `...?role=listen`, the client
//! connects (in the background, retrying); both are connected once each
//! side's `metrics().peers >= 1` (polled, 5 s limit). Rings of 4 MiB (largest
//! message 2 MiB - 16). Streaming: the client's `Producer::send_timeout`
//! copies the payload into its ring; the server's `Consumer::recv_timeout`
//! returns a view of the message (released when dropped). Both try first
//! (`try_send`, `try_recv`) and wait with the timeout variant only when
//! they have to (see below). Ping-pong: the
//! client sends and receives on its own channel handle, the server answers
//! on its handle with `recv_into_timeout` + `send_timeout`.

use crate::{
    fill_payload, parse_seq, Echo, Net, PingClient, Res, StreamRx, StreamTx, STOP, TIMEOUT,
};
use psyne::{Channel, ChannelType, Consumer, Mode, Producer};
use std::time::{Duration, Instant};

pub const RING: usize = 4 << 20;
const MSG_TYPE: u32 = 1;

fn e(what: &'static str) -> impl Fn(psyne::Error) -> String {
    move |err| format!("psyne {what}: {err}")
}

/// `what: err`, plus the channel's last protocol violation or close reason.
fn ech<'a>(what: &'static str, ch: &'a Channel) -> impl Fn(psyne::Error) -> String + 'a {
    move |err| match ch.last_peer_error() {
        Some(p) => format!("psyne {what}: {err} (last peer error: {p})"),
        None => format!("psyne {what}: {err}"),
    }
}

/// `PSYNE_BENCH_SPIN_US=N` adds the URI option `spin=N` (how long blocking
/// calls poll before they sleep) to every psyne URI, as in ipc-baselines.
fn with_spin(uri: &str) -> String {
    match std::env::var("PSYNE_BENCH_SPIN_US") {
        Ok(us) => format!(
            "{uri}{}spin={us}",
            if uri.contains('?') { '&' } else { '?' }
        ),
        Err(_) => uri.to_string(),
    }
}

/// (server, client), both connected.
pub fn open_pair(net: Net) -> Res<(Channel, Channel)> {
    let (listen, connect) = match net {
        Net::Tcp => {
            let port = crate::tcp_port();
            (
                format!("tcp://127.0.0.1:{port}?role=listen"),
                format!("tcp://127.0.0.1:{port}"),
            )
        }
        Net::Ws => {
            let port = crate::tcp_port();
            (
                format!("ws://127.0.0.1:{port}/bench?role=listen"),
                format!("ws://127.0.0.1:{port}/bench"),
            )
        }
        Net::Unix => {
            let path = crate::unix_path();
            (
                format!("unix://{path}?role=listen"),
                format!("unix://{path}"),
            )
        }
    };
    let (listen, connect) = (with_spin(&listen), with_spin(&connect));
    let server = Channel::open(&listen, RING, Mode::Spsc, ChannelType::Multi)
        .map_err(|err| format!("psyne open {listen}: {err}"))?;
    let client = Channel::open(&connect, RING, Mode::Spsc, ChannelType::Multi)
        .map_err(|err| format!("psyne open {connect}: {err}"))?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (s, c) = (server.metrics().peers, client.metrics().peers);
        if s >= 1 && c >= 1 {
            return Ok((server, client));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "psyne {connect}: not connected after {TIMEOUT:?} (server peers {s}, client peers {c}; last peer errors: server {:?}, client {:?})",
                server.last_peer_error(),
                client.last_peer_error()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The client's producer (fields drop in order: handle before channel).
pub struct Tx {
    p: Producer,
    ch: Channel,
    payload: Vec<u8>,
}

/// The server's consumer.
pub struct Rx {
    c: Consumer,
    ch: Channel,
}

pub fn stream(net: Net, size: usize) -> Res<(Tx, Rx)> {
    let (server, client) = open_pair(net)?;
    let mut payload = vec![0u8; size];
    fill_payload(&mut payload);
    let tx = Tx {
        p: client.producer().map_err(e("producer"))?,
        ch: client,
        payload,
    };
    let rx = Rx {
        c: server.consumer().map_err(e("consumer"))?,
        ch: server,
    };
    Ok((tx, rx))
}

// The hot paths try first and call the `_timeout` variant only when they
// must wait: `send_timeout`/`recv_timeout` read the clock on every call to
// compute their deadline, even when they need not wait (about 8 % of each
// application thread's time in a 64 B stream, as `perf` shows), a cost the
// plain blocking `send`/`recv` do not have and the raw socket loops (timeouts
// set once on the socket) do not pay either.

impl StreamTx for Tx {
    #[inline]
    fn send(&mut self, seq: u64) -> Res<()> {
        self.payload[..8].copy_from_slice(&seq.to_le_bytes());
        match self.p.try_send(&self.payload, MSG_TYPE) {
            Err(psyne::Error::ChannelFull) => self
                .p
                .send_timeout(&self.payload, MSG_TYPE, TIMEOUT)
                .map_err(ech("send", &self.ch)),
            r => r.map_err(ech("try_send", &self.ch)),
        }
    }
}

fn check(m: &[u8], t: u32) -> Res<(u64, usize)> {
    if t != MSG_TYPE {
        return Err(format!("psyne: message type {t}, expected {MSG_TYPE}"));
    }
    Ok((parse_seq(m), m.len()))
}

impl StreamRx for Rx {
    #[inline]
    fn recv(&mut self) -> Res<(u64, usize)> {
        match self.c.try_recv() {
            Ok(m) => return check(&m, m.msg_type()),
            Err(psyne::Error::NoMessage) => {}
            Err(err) => return Err(ech("try_recv", &self.ch)(err)),
        }
        let m = self
            .c
            .recv_timeout(TIMEOUT)
            .map_err(ech("recv", &self.ch))?;
        check(&m, m.msg_type())
    }
}

pub struct Side {
    ch: Channel,
    buf: Vec<u8>,
}

/// (client, echo server).
pub fn ping(net: Net, size: usize) -> Res<(Side, Side)> {
    let (server, client) = open_pair(net)?;
    let mut buf = vec![0u8; size];
    fill_payload(&mut buf);
    Ok((
        Side {
            ch: client,
            buf: buf.clone(),
        },
        Side { ch: server, buf },
    ))
}

impl PingClient for Side {
    #[inline]
    fn round(&mut self, seq: u64) -> Res<u64> {
        self.buf[..8].copy_from_slice(&seq.to_le_bytes());
        self.ch
            .send_timeout(&self.buf, MSG_TYPE, TIMEOUT)
            .map_err(ech("send", &self.ch))?;
        let m = self
            .ch
            .recv_timeout(TIMEOUT)
            .map_err(ech("recv", &self.ch))?;
        Ok(parse_seq(&m))
    }
    fn stop(&mut self) -> Res<()> {
        self.buf[..8].copy_from_slice(&STOP.to_le_bytes());
        self.ch
            .send_timeout(&self.buf, MSG_TYPE, TIMEOUT)
            .map_err(e("send"))
    }
}

impl Echo for Side {
    #[inline]
    fn echo(&mut self) -> Res<bool> {
        let (n, t) = self
            .ch
            .recv_into_timeout(&mut self.buf, TIMEOUT)
            .map_err(ech("recv_into", &self.ch))?;
        if parse_seq(&self.buf[..n]) == STOP {
            return Ok(false);
        }
        self.ch
            .send_timeout(&self.buf[..n], t, TIMEOUT)
            .map_err(ech("send", &self.ch))?;
        Ok(true)
    }
}
