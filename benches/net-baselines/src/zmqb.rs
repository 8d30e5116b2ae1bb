//! Baseline (b): ZeroMQ through the `zmq` crate (libzmq 4.3.4 built from
//! source by `zeromq-src`). PUSH/PULL for streaming, PAIR for ping-pong;
//! `tcp://127.0.0.1:PORT` or `ipc://PATH` (ZeroMQ's Unix-socket transport).
//! Default high-water marks (1000 messages), linger 0, 5 s send/receive
//! timeouts. `send(&[u8])` copies the payload into a zmq message; the
//! receiver reuses one `zmq::Message`.

use crate::{
    fill_payload, parse_seq, Echo, Net, PingClient, Res, StreamRx, StreamTx, STOP, TIMEOUT,
};

fn e(what: &'static str) -> impl Fn(zmq::Error) -> String {
    move |err| format!("zmq {what}: {err}")
}

fn endpoint(net: Net) -> String {
    match net {
        // (ws rows have no zmq/nng column: Imp::on)
        Net::Tcp | Net::Ws => format!("tcp://127.0.0.1:{}", crate::tcp_port()),
        Net::Unix => format!("ipc://{}", crate::unix_path()),
    }
}

fn socket(ctx: &zmq::Context, kind: zmq::SocketType) -> Res<zmq::Socket> {
    let s = ctx.socket(kind).map_err(e("socket"))?;
    let ms = TIMEOUT.as_millis() as i32;
    s.set_linger(0).map_err(e("linger"))?;
    s.set_sndtimeo(ms).map_err(e("sndtimeo"))?;
    s.set_rcvtimeo(ms).map_err(e("rcvtimeo"))?;
    Ok(s)
}

/// Sockets are declared before the context so that they close first.
pub struct Side {
    s: zmq::Socket,
    payload: Vec<u8>,
    msg: zmq::Message,
    _ctx: zmq::Context,
}

fn side(ctx: &zmq::Context, s: zmq::Socket, size: usize) -> Side {
    let mut payload = vec![0u8; size];
    fill_payload(&mut payload);
    Side {
        s,
        payload,
        msg: zmq::Message::new(),
        _ctx: ctx.clone(),
    }
}

/// (sender PUSH, receiver PULL); PULL binds, PUSH connects.
pub fn stream(net: Net, size: usize) -> Res<(Side, Side)> {
    let ctx = zmq::Context::new();
    let ep = endpoint(net);
    let pull = socket(&ctx, zmq::PULL)?;
    pull.bind(&ep).map_err(e("bind"))?;
    let push = socket(&ctx, zmq::PUSH)?;
    push.connect(&ep).map_err(e("connect"))?;
    Ok((side(&ctx, push, size), side(&ctx, pull, size)))
}

/// (client PAIR, echo PAIR); the echo side binds.
pub fn ping(net: Net, size: usize) -> Res<(Side, Side)> {
    let ctx = zmq::Context::new();
    let ep = endpoint(net);
    let b = socket(&ctx, zmq::PAIR)?;
    b.bind(&ep).map_err(e("bind"))?;
    let a = socket(&ctx, zmq::PAIR)?;
    a.connect(&ep).map_err(e("connect"))?;
    Ok((side(&ctx, a, size), side(&ctx, b, size)))
}

impl Side {
    #[inline]
    fn send_seq(&mut self, seq: u64) -> Res<()> {
        self.payload[..8].copy_from_slice(&seq.to_le_bytes());
        self.s.send(&self.payload[..], 0).map_err(e("send"))
    }
    #[inline]
    fn recv_msg(&mut self) -> Res<(u64, usize)> {
        self.s.recv(&mut self.msg, 0).map_err(e("recv"))?;
        Ok((parse_seq(&self.msg), self.msg.len()))
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
        self.recv_msg()
    }
}

impl PingClient for Side {
    #[inline]
    fn round(&mut self, seq: u64) -> Res<u64> {
        self.send_seq(seq)?;
        Ok(self.recv_msg()?.0)
    }
    fn stop(&mut self) -> Res<()> {
        self.send_seq(STOP)
    }
}

impl Echo for Side {
    #[inline]
    fn echo(&mut self) -> Res<bool> {
        let (seq, _) = self.recv_msg()?;
        if seq == STOP {
            return Ok(false);
        }
        // The received message goes back as it is (no copy).
        let out = std::mem::replace(&mut self.msg, zmq::Message::new());
        self.s.send(out, 0).map_err(e("send"))?;
        Ok(true)
    }
}
