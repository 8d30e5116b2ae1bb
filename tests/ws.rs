//! ws:// with a third-party WebSocket client (psyne connector -> psyne
//! listener: echo, 128 peers, broadcast, reconnect and 16 MiB messages are
//! tests/net.rs's ws_* tests, the semantic tests tests/conformance.rs's ws
//! module): a third-party WebSocket client
//! (`tungstenite`, used directly, not through psyne) speaking PROTOCOL.md
//! to a psyne listener: well-formed frames get replies, malformed ones get
//! the documented close codes. (Python's `websockets` does the same in
//! tests/suites/70-web.sh.)

use psyne::{Channel, ChannelType, Error, Mode};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::{ClientRequestBuilder, Message, WebSocket};

const LONG: Duration = Duration::from_secs(30);

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < LONG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A listener on a fresh port and the URI its connectors use.
fn listen(opts: &str, size: usize, mode: Mode) -> (Channel, String) {
    let sep = if opts.is_empty() { "" } else { "&" };
    let uri = format!("ws://127.0.0.1:0/feed?role=listen{sep}{opts}");
    let l = Channel::open(&uri, size, mode, ChannelType::Multi).unwrap();
    let addr = l.local_addr().unwrap();
    (l, format!("ws://{addr}/feed"))
}

fn connect(uri: &str, size: usize, mode: Mode) -> Channel {
    Channel::open(uri, size, mode, ChannelType::Multi).unwrap()
}

#[test]
fn bad_uris() {
    let open = |u: &str| Channel::open(u, 1 << 16, Mode::Spsc, ChannelType::Multi).err();
    assert!(matches!(
        open("wss://127.0.0.1:9/x"),
        Some(Error::Unsupported(_))
    ));
    assert!(matches!(
        open("ws://127.0.0.1:0/x?role=connect"),
        Some(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        open("ws://127.0.0.1:0/a b?role=listen"),
        Some(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        open("tcp://127.0.0.1:0?role=listen&ping_interval=100"),
        Some(Error::InvalidArgument(_))
    ));
}

// ---------------------------------------------------------------------
// A third-party client (tungstenite, directly) against a psyne listener
// ---------------------------------------------------------------------

/// A HELLO of a connector as PROTOCOL.md describes it (MULTI, SPSC).
fn hello(max_frame: u32) -> Vec<u8> {
    let mut h = vec![0u8; 32];
    h[..4].copy_from_slice(b"PSYN");
    h[4..6].copy_from_slice(&1u16.to_le_bytes());
    h[6..8].copy_from_slice(&32u16.to_le_bytes());
    h[10] = 1;
    h[16..20].copy_from_slice(&max_frame.to_le_bytes());
    h
}

/// A message frame: header and payload.
fn frame(msg_type: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(16 + payload.len());
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&msg_type.to_le_bytes());
    f.extend_from_slice(&[0u8; 8]);
    f.extend_from_slice(payload);
    f
}

type Client = WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

/// A raw WebSocket client at `uri` offering the subprotocol `sub` (or none).
/// Its reads time out, so that a test fails rather than hangs.
fn upgraded(uri: &str, sub: Option<&str>) -> Client {
    let ws = match sub {
        Some(p) => {
            let req = ClientRequestBuilder::new(uri.parse().unwrap()).with_sub_protocol(p);
            let (ws, resp) = tungstenite::connect(req).unwrap();
            assert_eq!(resp.headers().get("Sec-WebSocket-Protocol").unwrap(), p);
            ws
        }
        None => tungstenite::connect(uri).unwrap().0,
    };
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(LONG)).unwrap();
    }
    ws
}

/// A client with the psyne subprotocol, its HELLO sent and the listener's
/// read.
fn client(uri: &str) -> (Client, Vec<u8>) {
    let mut ws = upgraded(uri, Some("psyne.v1"));
    ws.send(Message::binary(hello(1 << 20))).unwrap();
    let theirs = next_binary(&mut ws);
    (ws, theirs)
}

fn next_binary(ws: &mut Client) -> Vec<u8> {
    loop {
        match ws.read().unwrap() {
            Message::Binary(b) => return b.to_vec(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}

/// Reads until the listener closes; its close code and reason.
fn close_of(ws: &mut Client) -> (u16, String) {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
            Ok(Message::Close(None)) => return (1005, String::new()),
            Ok(_) => {}
            Err(e) => panic!("connection ended without a close frame: {e}"),
        }
    }
}

#[test]
fn tungstenite_client_talks_to_a_listener() {
    let (l, uri) = listen("", 1 << 16, Mode::Spsc);
    let (mut ws, theirs) = client(&uri);
    assert_eq!(&theirs[..4], b"PSYN");
    assert_eq!(theirs[8], 1, "the listener says it is the listener");
    let max_frame = u32::from_le_bytes(theirs[16..20].try_into().unwrap());
    assert_eq!(max_frame as usize, l.max_message_size());
    for i in 0..100u32 {
        ws.send(Message::binary(frame(i, format!("hello {i}").as_bytes())))
            .unwrap();
        let m = l.recv_timeout(LONG).unwrap();
        assert_eq!((&m[..], m.msg_type()), (format!("hello {i}").as_bytes(), i));
        l.send_timeout(&m, i + 1, LONG).unwrap();
        drop(m);
        let back = next_binary(&mut ws);
        assert_eq!(back, frame(i + 1, format!("hello {i}").as_bytes()));
    }
    ws.close(None).unwrap();
    wait_for("the peer to go", || l.metrics().peers == 0);
    assert_eq!(l.metrics().frames_refused, 0);
}

/// Each malformed input gets its documented close code, counts one
/// refused frame, and leaves the listener serving the next client.
#[test]
fn malformed_input_gets_the_documented_close_code() {
    let (l, uri) = listen("", 1 << 16, Mode::Spsc);
    let max = l.max_message_size();
    let mut bad_flags = frame(1, b"x");
    bad_flags[8] = 1 << 3; // a reserved flag bit
    let mut bad_checksum = frame(1, b"abc");
    bad_checksum[8] = 1; // CHECKSUM, with a checksum of 0
    let mut short = frame(1, b"abcd");
    short.pop(); // the header says 4 bytes, the message holds 3
    let cases: Vec<(&str, Message, u16, &str)> = vec![
        ("text", Message::text("hi"), 1003, "not-binary"),
        (
            "oversized",
            Message::binary(vec![0u8; 16 + max + 1]),
            1009,
            "frame-too-long",
        ),
        ("bad flags", Message::binary(bad_flags), 1008, "bad-flags"),
        (
            "bad checksum",
            Message::binary(bad_checksum),
            1008,
            "checksum-mismatch",
        ),
        ("short", Message::binary(short), 1002, "bad-message"),
        (
            "two frames",
            Message::binary([frame(1, b"a"), frame(2, b"b")].concat()),
            1002,
            "bad-message",
        ),
    ];
    for (n, (what, msg, code, tag)) in cases.into_iter().enumerate() {
        let (mut ws, _) = client(&uri);
        ws.send(msg).unwrap();
        let (got, reason) = close_of(&mut ws);
        assert_eq!(got, code, "{what}: close code (reason {reason:?})");
        assert!(reason.starts_with(tag), "{what}: reason {reason:?}");
        wait_for("the count", || l.metrics().frames_refused == n as u64 + 1);
        assert!(l.last_peer_error().unwrap().starts_with(tag));
    }
    // A first message that is not a HELLO.
    let mut ws = upgraded(&uri, Some("psyne.v1"));
    ws.send(Message::binary(b"PSYN".to_vec())).unwrap();
    assert_eq!(close_of(&mut ws).0, 1002);
    // A HELLO of the wrong role (two listeners).
    let mut ws = upgraded(&uri, Some("psyne.v1"));
    let mut h = hello(1 << 16);
    h[8] = 1;
    ws.send(Message::binary(h)).unwrap();
    let (code, reason) = close_of(&mut ws);
    assert_eq!((code, &reason[..8]), (1008, "bad-hell"));
    // The listener still serves.
    let c = connect(&uri, 1 << 16, Mode::Spsc);
    c.send_timeout(b"after", 1, LONG).unwrap();
    assert_eq!(&l.recv_timeout(LONG).unwrap()[..], b"after");
}

#[test]
fn wrong_path_and_subprotocol_are_refused_at_the_upgrade() {
    let (l, uri) = listen("", 1 << 16, Mode::Spsc);
    let other = uri.replace("/feed", "/other");
    match tungstenite::connect(other.as_str()) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 404),
        other => panic!("expected HTTP 404, got {other:?}"),
    }
    let req = ClientRequestBuilder::new(uri.parse().unwrap()).with_sub_protocol("chat");
    match tungstenite::connect(req) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    wait_for("the count", || l.metrics().frames_refused == 2);
    // A client that offers no subprotocol is served.
    let mut ws = upgraded(&uri, None);
    ws.send(Message::binary(hello(1 << 16))).unwrap();
    assert_eq!(&next_binary(&mut ws)[..4], b"PSYN");
}

/// A peer that stops answering (never reads, so never answers a ping) is
/// dropped after about two ping intervals, and counted.
#[test]
fn a_silent_peer_is_dropped_and_counted() {
    let (l, uri) = listen("ping_interval=100", 1 << 16, Mode::Spsc);
    let (_ws, _) = client(&uri); // completes its HELLO, then never reads
    wait_for("the peer", || l.metrics().peers == 1);
    wait_for("the drop", || l.metrics().peers == 0);
    assert_eq!(l.metrics().frames_refused, 1);
    assert!(l.last_peer_error().unwrap().starts_with("ping-timeout"));
    // A peer that answers pings stays: a psyne connector.
    let c = connect(&format!("{uri}?ping_interval=100"), 1 << 16, Mode::Spsc);
    wait_for("the peer", || l.metrics().peers == 1);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(l.metrics().peers, 1);
    c.send_timeout(b"alive", 1, LONG).unwrap();
    assert_eq!(&l.recv_timeout(LONG).unwrap()[..], b"alive");
}

#[test]
fn one_peer_too_many_gets_1013() {
    let (l, uri) = listen("max_peers=1", 1 << 16, Mode::Spsc);
    let (_first, _) = client(&uri);
    wait_for("the peer", || l.metrics().peers == 1);
    let mut ws = upgraded(&uri, Some("psyne.v1"));
    let (code, reason) = close_of(&mut ws);
    assert_eq!(code, 1013);
    assert!(reason.starts_with("too-many-peers"), "{reason}");
}

/// A WebSocket frame header announcing a terabyte is refused from the
/// header (close 1009), before any payload is read or buffered; bytes that
/// are not an HTTP upgrade at all are refused too; the listener serves on.
#[test]
fn huge_headers_and_garbage_are_refused_before_buffering() {
    use std::io::Write;
    let (l, uri) = listen("", 1 << 16, Mode::Spsc);
    let (mut ws, _) = client(&uri);
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
        // FIN + binary, masked, 64-bit length 2^40, mask key; no payload.
        let mut h = vec![0x82, 0x80 | 127];
        h.extend_from_slice(&(1u64 << 40).to_be_bytes());
        h.extend_from_slice(&[1, 2, 3, 4]);
        s.write_all(&h).unwrap();
    }
    let (code, reason) = close_of(&mut ws);
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.starts_with("frame-too-long"), "{reason}");
    wait_for("the count", || l.metrics().frames_refused == 1);

    let addr = uri.trim_start_matches("ws://").trim_end_matches("/feed");
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.write_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        .unwrap();
    wait_for("the count", || l.metrics().frames_refused == 2);
    assert!(l.last_peer_error().unwrap().starts_with("bad-upgrade"));

    let c = Channel::open(&uri, 1 << 16, Mode::Spsc, ChannelType::Multi).unwrap();
    c.send_timeout(b"after", 1, LONG).unwrap();
    assert_eq!(&l.recv_timeout(LONG).unwrap()[..], b"after");
}

/// Compression (and checksums) work over ws as over tcp: the frames are the
/// same, only carried in WebSocket messages.
#[test]
fn compression_over_ws() {
    let (l, uri) = listen("compression=lz4&checksum=on", 1 << 20, Mode::Spsc);
    let c = Channel::open(
        &format!("{uri}?compression=zstd&level=3"),
        1 << 20,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap();
    let text: Vec<u8> = b"psyne over websocket, compressed. "
        .iter()
        .copied()
        .cycle()
        .take(100_000)
        .collect();
    for i in 0..20u32 {
        c.send_timeout(&text, i, LONG).unwrap();
        let m = l.recv_timeout(LONG).unwrap();
        assert_eq!((&m[..], m.msg_type()), (&text[..], i));
        l.send_timeout(&m, i + 100, LONG).unwrap();
        drop(m);
        let m = c.recv_timeout(LONG).unwrap();
        assert_eq!((&m[..], m.msg_type()), (&text[..], i + 100));
    }
    // A writer counts once its write returned, maybe just after the peer
    // received the bytes.
    wait_for("the counts", || {
        (
            c.metrics().messages_compressed,
            l.metrics().messages_compressed,
        ) == (20, 20)
    });
    let (mc, ml) = (c.metrics(), l.metrics());
    assert!(mc.wire_bytes_sent < mc.bytes_sent / 10, "{mc:?}");
    assert!(ml.wire_bytes_sent < ml.bytes_sent / 10, "{ml:?}");
    assert_eq!((mc.frames_refused, ml.frames_refused), (0, 0));
    assert_eq!((mc.checksum_failures, ml.checksum_failures), (0, 0));
}
