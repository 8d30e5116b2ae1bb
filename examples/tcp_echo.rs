//! An echo server and a client over tcp:// (or unix:// with `--unix`), in
//! one process for the example's sake: the server echoes every message back
//! with its type; the client sends a few, prints the echoes, and the server
//! reports what it saw.
//!
//!   cargo run --release --example tcp_echo
//!   cargo run --release --example tcp_echo -- --unix

use psyne::{Channel, ChannelType, Error, Mode};
use std::time::Duration;

fn main() -> Result<(), Error> {
    let unix = std::env::args().any(|a| a == "--unix");
    let listen_uri = if unix {
        format!(
            "unix:///tmp/psyne-echo-{}.sock?role=listen",
            std::process::id()
        )
    } else {
        "tcp://127.0.0.1:0?role=listen".to_string() // port 0: the system picks one
    };
    let server = Channel::open(&listen_uri, 1 << 20, Mode::Spsc, ChannelType::Multi)?;
    let addr = server.local_addr().expect("a socket end has an address");
    let scheme = if unix { "unix" } else { "tcp" };
    println!("server listening on {scheme}://{addr}");

    let echo = {
        let server = server.clone();
        std::thread::spawn(move || -> Result<u64, Error> {
            let mut echoed = 0;
            loop {
                match server.recv() {
                    Ok(msg) => {
                        server.send(&msg, msg.msg_type())?; // straight from the receive ring
                        echoed += 1;
                    }
                    Err(Error::ChannelStopped) => return Ok(echoed),
                    Err(e) => return Err(e),
                }
            }
        })
    };

    // The client could start before the server: it retries in the background.
    let client = Channel::open(
        &format!("{scheme}://{addr}"),
        1 << 20,
        Mode::Spsc,
        ChannelType::Multi,
    )?;
    for (i, word) in ["hello", "from", "psyne"].iter().enumerate() {
        client.send(word.as_bytes(), i as u32)?;
        let reply = client.recv_timeout(Duration::from_secs(10))?;
        println!(
            "client got {:?} (type {})",
            String::from_utf8_lossy(&reply),
            reply.msg_type()
        );
    }
    let m = client.metrics();
    println!(
        "client: {} sent, {} received, {} wire bytes out, {} connect(s)",
        m.messages_sent, m.messages_received, m.wire_bytes_sent, m.connects
    );
    server.stop();
    println!("server echoed {} messages", echo.join().unwrap()?);
    Ok(())
}
