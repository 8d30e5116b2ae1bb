//! Baseline (c): nng through the `nng` crate (libnng built with cmake by
//! `nng-sys`). PUSH0/PULL0 for streaming, PAIR1 for ping-pong;
//! `tcp://127.0.0.1:PORT` or `ipc://PATH`. Socket buffers of 1024 messages
//! (like ZeroMQ's high-water marks), 5 s send/receive timeouts. Each send
//! allocates an nng message and copies the payload in; each receive returns
//! a new message.

use crate::{
    fill_payload, parse_seq, Echo, Net, PingClient, Res, StreamRx, StreamTx, STOP, TIMEOUT,
};
use nng::options::{Options, RecvBufferSize, RecvTimeout, SendBufferSize, SendTimeout};
use nng::{Protocol, Socket};

fn e(what: &'static str) -> impl Fn(nng::Error) -> String {
    move |err| format!("nng {what}: {err}")
}

fn endpoint(net: Net) -> String {
    match net {
        // (ws rows have no zmq/nng column: Imp::on)
        Net::Tcp | Net::Ws => format!("tcp://127.0.0.1:{}", crate::tcp_port()),
        Net::Unix => format!("ipc://{}", crate::unix_path()),
    }
}

fn socket(p: Protocol) -> Res<Socket> {
    let s = Socket::new(p).map_err(e("socket"))?;
    s.set_opt::<SendTimeout>(Some(TIMEOUT))
        .map_err(e("sendtimeout"))?;
    s.set_opt::<RecvTimeout>(Some(TIMEOUT))
        .map_err(e("recvtimeout"))?;
    Ok(s)
}

pub struct Side {
    s: Socket,
    payload: Vec<u8>,
}

fn side(s: Socket, size: usize) -> Side {
    let mut payload = vec![0u8; size];
    fill_payload(&mut payload);
    Side { s, payload }
}

/// (sender PUSH0, receiver PULL0); PULL listens, PUSH dials.
pub fn stream(net: Net, size: usize) -> Res<(Side, Side)> {
    let ep = endpoint(net);
    let pull = socket(Protocol::Pull0)?;
    pull.set_opt::<RecvBufferSize>(1024).map_err(e("recvbuf"))?;
    pull.listen(&ep).map_err(e("listen"))?;
    let push = socket(Protocol::Push0)?;
    push.set_opt::<SendBufferSize>(1024).map_err(e("sendbuf"))?;
    push.dial(&ep).map_err(e("dial"))?;
    Ok((side(push, size), side(pull, size)))
}

/// (client PAIR1, echo PAIR1); the echo side listens.
pub fn ping(net: Net, size: usize) -> Res<(Side, Side)> {
    let ep = endpoint(net);
    let b = socket(Protocol::Pair1)?;
    b.listen(&ep).map_err(e("listen"))?;
    let a = socket(Protocol::Pair1)?;
    a.dial(&ep).map_err(e("dial"))?;
    Ok((side(a, size), side(b, size)))
}

impl Side {
    #[inline]
    fn send_seq(&mut self, seq: u64) -> Res<()> {
        self.payload[..8].copy_from_slice(&seq.to_le_bytes());
        self.s
            .send(&self.payload[..])
            .map_err(|(_, err)| format!("nng send: {err}"))
    }
}

impl StreamTx for Side {
    #[inline]
    fn send(&mut self, seq: u64) -> Res<()> {
        self.send_seq(seq)
    }
}

impl StreamRx for Side {
    #[inline]
    fn recv(&mut self) -> Res<(u64, usize)> {
        let m = self.s.recv().map_err(e("recv"))?;
        Ok((parse_seq(&m), m.len()))
    }
}

impl PingClient for Side {
    #[inline]
    fn round(&mut self, seq: u64) -> Res<u64> {
        self.send_seq(seq)?;
        let m = self.s.recv().map_err(e("recv"))?;
        Ok(parse_seq(&m))
    }
    fn stop(&mut self) -> Res<()> {
        self.send_seq(STOP)
    }
}

impl Echo for Side {
    #[inline]
    fn echo(&mut self) -> Res<bool> {
        let m = self.s.recv().map_err(e("recv"))?;
        if parse_seq(&m) == STOP {
            return Ok(false);
        }
        // The received message goes back as it is (no copy).
        self.s
            .send(m)
            .map_err(|(_, err)| format!("nng send: {err}"))?;
        Ok(true)
    }
}
