//! A browser talking to a psyne channel: this program serves one static
//! page over HTTP (the standard library's TcpListener, nothing else) and
//! publishes on a `ws://` listener. The page (index.html) speaks the psyne
//! protocol in JavaScript: it shows the live messages and the channel's
//! metrics, and sends what you type back, which this program prints and
//! echoes to every page.
//!
//!   cargo run --release --example web            # then open http://127.0.0.1:8080/
//!   cargo run --release --example web -- --http 0.0.0.0:8080 --ws 9000
//!
//! Message types on the channel: 1 text for the page, 2 the channel's
//! metrics as JSON, 3 text from a page.

use psyne::{Channel, ChannelType, Error, Mode};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const PAGE: &str = include_str!("index.html");
const TEXT: u32 = 1;
const METRICS: u32 = 2;
const FROM_PAGE: u32 = 3;

fn main() -> Result<(), Error> {
    let mut http = "127.0.0.1:8080".to_string();
    let mut ws_port = "9000".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--http", Some(v)) => http = v,
            ("--ws", Some(v)) => ws_port = v,
            _ => {
                eprintln!("usage: web [--http HOST:PORT] [--ws PORT]");
                std::process::exit(2);
            }
        }
    }
    // Every page gets every message (broadcast); pages send back to us.
    let channel = Channel::open(
        &format!("ws://0.0.0.0:{ws_port}/feed?broadcast=on"),
        1 << 20,
        Mode::Mpmc,
        ChannelType::Multi,
    )?;
    let ws_addr = channel.local_addr().expect("a listener has an address");
    let ws_port: u16 = ws_addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let server = TcpListener::bind(&http).map_err(|e| Error::Io(format!("{http}: {e}")))?;
    let http_addr = server.local_addr().map_err(|e| Error::Io(e.to_string()))?;
    println!("page:    http://{http_addr}/");
    println!("channel: ws://{ws_addr}/feed");
    let page = PAGE.replace("{{WS_PORT}}", &ws_port.to_string());
    std::thread::spawn(move || {
        for conn in server.incoming().flatten() {
            let page = page.clone();
            std::thread::spawn(move || serve_http(conn, &page));
        }
    });

    // Publisher: a tick every half second and the metrics every second,
    // while a page is connected (with none, nothing is queued).
    let publisher = channel.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        for n in 0u64.. {
            std::thread::sleep(Duration::from_millis(500));
            if publisher.metrics().peers == 0 {
                continue;
            }
            let tick = format!("tick {n} at {:.1} s", start.elapsed().as_secs_f64());
            let _ = publisher.try_send(tick.as_bytes(), TEXT);
            if n % 2 == 0 {
                let _ = publisher.try_send(metrics_json(&publisher).as_bytes(), METRICS);
            }
        }
    });

    // What the pages send: printed, and echoed to every page.
    loop {
        let msg = channel.recv()?;
        if msg.msg_type() == FROM_PAGE {
            let text = String::from_utf8_lossy(&msg).into_owned();
            drop(msg);
            println!("from page: {text}");
            let _ = std::io::stdout().flush();
            let _ = channel.try_send(format!("echo: {text}").as_bytes(), TEXT);
        }
    }
}

fn metrics_json(ch: &Channel) -> String {
    let m = ch.metrics();
    format!(
        concat!(
            "{{\"messages_sent\":{},\"bytes_sent\":{},\"messages_received\":{},",
            "\"bytes_received\":{},\"wire_bytes_sent\":{},\"wire_bytes_received\":{},",
            "\"peers\":{},\"connects\":{},\"frames_refused\":{},\"queued_bytes\":{}}}"
        ),
        m.messages_sent,
        m.bytes_sent,
        m.messages_received,
        m.bytes_received,
        m.wire_bytes_sent,
        m.wire_bytes_received,
        m.peers,
        m.connects,
        m.frames_refused,
        m.queued_bytes
    )
}

/// Answers one HTTP request: the page at `/`, 404 elsewhere.
fn serve_http(mut conn: TcpStream, page: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if path == "/" || path.starts_with("/?") {
        ("200 OK", page)
    } else {
        ("404 Not Found", "not found\n")
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
