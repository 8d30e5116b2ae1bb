//! Baseline for the ws rows: plain tokio-tungstenite (feature
//! `tungstenite`, default), the crate a Rust user would otherwise pick.
//!
//! One WebSocket connection over 127.0.0.1 (`TCP_NODELAY`), each end with
//! its own current-thread tokio runtime that the thread using it drives
//! with `block_on` (so each side is one thread, as psyne's application
//! threads are). Messages are binary, the sequence number in their first 8
//! bytes. Streaming: the client `feed`s messages (tungstenite batches them
//! into its 128 KiB write buffer) and flushes at the end; the server takes
//! them with `next`. Ping-pong: `send` (write and flush) and `next` on both
//! sides.

use crate::{fill_payload, parse_seq, Echo, PingClient, Res, StreamRx, StreamTx, STOP, TIMEOUT};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::WebSocketStream;

/// One end: its runtime and its connection.
pub struct End {
    rt: Runtime,
    ws: WebSocketStream<TcpStream>,
    payload: Vec<u8>,
}

fn e<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |err| format!("tokio-tungstenite {what}: {err}")
}

fn runtime() -> Res<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(e("runtime"))
}

/// (client, server), connected and upgraded.
pub fn pair(size: usize) -> Res<(End, End)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(e("bind"))?;
    let addr = listener.local_addr().map_err(e("addr"))?;
    let server = std::thread::spawn(move || -> Res<(Runtime, WebSocketStream<TcpStream>)> {
        let (s, _) = listener.accept().map_err(e("accept"))?;
        s.set_nodelay(true).map_err(e("nodelay"))?;
        s.set_nonblocking(true).map_err(e("nonblocking"))?;
        let rt = runtime()?;
        let ws = rt.block_on(async {
            let s = TcpStream::from_std(s).map_err(e("from_std"))?;
            tokio_tungstenite::accept_async(s)
                .await
                .map_err(e("accept"))
        })?;
        Ok((rt, ws))
    });
    let rt = runtime()?;
    let client = rt.block_on(async {
        let s = TcpStream::connect(addr).await.map_err(e("connect"))?;
        s.set_nodelay(true).map_err(e("nodelay"))?;
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/bench"), s)
            .await
            .map_err(e("handshake"))?;
        Ok::<_, String>(ws)
    })?;
    let (srt, sws) = server
        .join()
        .map_err(|_| "server thread panicked".to_string())??;
    let mut payload = vec![0u8; size];
    fill_payload(&mut payload);
    Ok((
        End {
            rt,
            ws: client,
            payload: payload.clone(),
        },
        End {
            rt: srt,
            ws: sws,
            payload,
        },
    ))
}

impl End {
    fn message(&mut self, seq: u64) -> Message {
        self.payload[..8].copy_from_slice(&seq.to_le_bytes());
        Message::binary(self.payload.clone())
    }

    fn next(&mut self) -> Res<Bytes> {
        let ws = &mut self.ws;
        self.rt.block_on(async {
            loop {
                match tokio::time::timeout(TIMEOUT, ws.next()).await {
                    Err(_) => {
                        return Err(format!(
                            "tokio-tungstenite next: timed out after {TIMEOUT:?}"
                        ))
                    }
                    Ok(None) => return Err("tokio-tungstenite next: connection closed".into()),
                    Ok(Some(Err(err))) => return Err(e("next")(err)),
                    Ok(Some(Ok(Message::Binary(b)))) => return Ok(b),
                    Ok(Some(Ok(_))) => {}
                }
            }
        })
    }
}

impl StreamTx for End {
    #[inline]
    fn send(&mut self, seq: u64) -> Res<()> {
        let m = self.message(seq);
        let ws = &mut self.ws;
        self.rt.block_on(ws.feed(m)).map_err(e("feed"))
    }
    fn flush(&mut self) -> Res<()> {
        let ws = &mut self.ws;
        self.rt.block_on(ws.flush()).map_err(e("flush"))
    }
}

impl StreamRx for End {
    #[inline]
    fn recv(&mut self) -> Res<(u64, usize)> {
        let b = self.next()?;
        Ok((parse_seq(&b), b.len()))
    }
}

impl PingClient for End {
    #[inline]
    fn round(&mut self, seq: u64) -> Res<u64> {
        let m = self.message(seq);
        let ws = &mut self.ws;
        self.rt.block_on(ws.send(m)).map_err(e("send"))?;
        Ok(parse_seq(&self.next()?))
    }
    fn stop(&mut self) -> Res<()> {
        let m = self.message(STOP);
        let ws = &mut self.ws;
        self.rt.block_on(ws.send(m)).map_err(e("send"))
    }
}

impl Echo for End {
    #[inline]
    fn echo(&mut self) -> Res<bool> {
        let b = self.next()?;
        if parse_seq(&b) == STOP {
            return Ok(false);
        }
        let ws = &mut self.ws;
        self.rt
            .block_on(ws.send(Message::binary(b)))
            .map_err(e("send"))?;
        Ok(true)
    }
}
