//! An echo server on a ws:// listener: every message comes back to the peer
//! pool with its type (to the one peer of a lone client). Any WebSocket
//! client speaking docs/PROTOCOL.md can talk to it — psyne's own connector,
//! a browser, Python's `websockets`. It prints its address, and a line each
//! time it refuses something from a peer.
//!
//!   cargo run --release --example ws_echo                 # ws://127.0.0.1:9000/echo
//!   cargo run --release --example ws_echo -- ws://0.0.0.0:0/echo

use psyne::{Channel, ChannelType, Error, Mode};
use std::io::Write;
use std::time::Duration;

fn main() -> Result<(), Error> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9000/echo?role=listen".to_string());
    let server = Channel::open(&uri, 1 << 20, Mode::Spsc, ChannelType::Multi)?;
    let addr = server.local_addr().expect("a listener has an address");
    let path = uri
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    println!("listening on ws://{addr}{path}");
    let _ = std::io::stdout().flush();

    let watcher = server.clone();
    std::thread::spawn(move || {
        let mut seen = 0;
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let refused = watcher.metrics().frames_refused;
            if refused != seen {
                seen = refused;
                let why = watcher.last_peer_error().unwrap_or_default();
                println!("refused {refused}: {why}");
                let _ = std::io::stdout().flush();
            }
        }
    });
    loop {
        let msg = server.recv()?;
        server.send(&msg, msg.msg_type())?;
    }
}
