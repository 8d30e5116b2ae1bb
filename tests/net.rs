//! tcp://, unix:// (and ws://, where the test is the same) end to end over
//! loopback: roles, many peers,
//! round-robin and broadcast, reconnects, large messages, backpressure,
//! shutdown. (Protocol violations from raw sockets: tests/net_protocol.rs.
//! Semantics shared with every transport: tests/conformance.rs.)

use psyne::{Channel, ChannelType, Error, Mode};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

static NEXT: AtomicU32 = AtomicU32::new(0);

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < LONG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A listener URI on a fresh address (tcp/ws port 0, or a new unix path)
/// and the URI its connectors use once it is open.
fn listen(scheme: &str, opts: &str, size: usize, mode: Mode) -> (Channel, String) {
    let sep = if opts.is_empty() { "" } else { "&" };
    let uri = match scheme {
        "tcp" | "ws" => format!(
            "{scheme}://127.0.0.1:0{}?role=listen{sep}{opts}",
            path(scheme)
        ),
        _ => format!("unix://{}?role=listen{sep}{opts}", sock_path()),
    };
    let l = Channel::open(&uri, size, mode, ChannelType::Multi).unwrap();
    let addr = l.local_addr().unwrap();
    (l, format!("{scheme}://{addr}{}", path(scheme)))
}

/// The request path of the ws tests' listeners.
fn path(scheme: &str) -> &'static str {
    if scheme == "ws" {
        "/t"
    } else {
        ""
    }
}

fn sock_path() -> String {
    format!(
        "/tmp/psyne-net-test-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn connect(uri: &str, size: usize, mode: Mode) -> Channel {
    Channel::open(uri, size, mode, ChannelType::Multi).unwrap()
}

fn echo_both_ways(scheme: &str) {
    let (l, uri) = listen(scheme, "", 1 << 16, Mode::Spsc);
    let c = connect(&uri, 1 << 16, Mode::Spsc);
    for i in 0..1000u32 {
        c.send_timeout(&i.to_le_bytes(), i, LONG).unwrap();
        let m = l.recv_timeout(LONG).unwrap();
        assert_eq!((&m[..], m.msg_type()), (&i.to_le_bytes()[..], i));
        drop(m);
        l.send_timeout(&(i * 2).to_le_bytes(), 7, LONG).unwrap();
        let m = c.recv_timeout(LONG).unwrap();
        assert_eq!((&m[..], m.msg_type()), (&(i * 2).to_le_bytes()[..], 7));
    }
    // Wire bytes are counted once a write returned (maybe after the peer
    // received them).
    let wire = 32 + 1000 * (16 + 4); // HELLO + frames
    wait_for("the wire count", || c.metrics().wire_bytes_sent == wire);
    let (mc, ml) = (c.metrics(), l.metrics());
    assert_eq!((mc.connects, mc.peers, ml.connects, ml.peers), (1, 1, 1, 1));
    assert_eq!(ml.wire_bytes_received, mc.wire_bytes_sent);
}

#[test]
fn tcp_echo_both_ways() {
    echo_both_ways("tcp");
}

#[test]
fn unix_echo_both_ways() {
    echo_both_ways("unix");
}

#[test]
fn ws_echo_both_ways() {
    echo_both_ways("ws");
}

/// A connector started before its listener keeps its messages and delivers
/// them once the listener is up.
fn connector_before_listener(scheme: &str) {
    let (uri_listen, uri_connect) = match scheme {
        "tcp" | "ws" => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let p = path(scheme);
            (
                format!("{scheme}://127.0.0.1:{port}{p}?role=listen"),
                format!("{scheme}://127.0.0.1:{port}{p}"),
            )
        }
        _ => {
            let p = sock_path();
            (format!("unix://{p}?role=listen"), format!("unix://{p}"))
        }
    };
    let c = connect(
        &format!("{uri_connect}?reconnect_max=50"),
        1 << 16,
        Mode::Spsc,
    );
    for i in 0..10u32 {
        c.try_send(&[i as u8; 10], i).unwrap();
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(c.metrics().connects, 0);
    let l = Channel::open(&uri_listen, 1 << 16, Mode::Spsc, ChannelType::Multi).unwrap();
    for i in 0..10u32 {
        let m = l.recv_timeout(LONG).unwrap();
        assert_eq!((&m[..], m.msg_type()), (&[i as u8; 10][..], i));
    }
    assert_eq!(c.metrics().connects, 1);
}

#[test]
fn tcp_connector_before_listener() {
    connector_before_listener("tcp");
}

#[test]
fn unix_connector_before_listener() {
    connector_before_listener("unix");
}

#[test]
fn ws_connector_before_listener() {
    connector_before_listener("ws");
}

/// 128 peers on one listener, each sending 200 numbered messages: every one
/// arrives exactly once, each peer's in order.
fn many_peers_exactly_once(scheme: &str) {
    const PEERS: u32 = 128;
    const EACH: u32 = 200;
    let (l, uri) = listen(scheme, "", 1 << 20, Mode::Mpsc);
    let senders: Vec<_> = (0..PEERS)
        .map(|p| {
            let uri = uri.clone();
            std::thread::spawn(move || {
                let c = connect(&uri, 1 << 14, Mode::Spsc);
                for s in 0..EACH {
                    let mut m = [0u8; 8];
                    m[..4].copy_from_slice(&p.to_le_bytes());
                    m[4..].copy_from_slice(&s.to_le_bytes());
                    c.send_timeout(&m, p, LONG).unwrap();
                }
                // Keep the connection until everything is through.
                wait_for("the connector's ring to drain", || c.queued_bytes() == 0);
                c
            })
        })
        .collect();
    let mut next = vec![0u32; PEERS as usize];
    for _ in 0..PEERS * EACH {
        let m = l.recv_timeout(LONG).unwrap();
        let p = u32::from_le_bytes(m[..4].try_into().unwrap());
        let s = u32::from_le_bytes(m[4..].try_into().unwrap());
        assert_eq!(m.msg_type(), p);
        assert_eq!(s, next[p as usize], "peer {p}: out of order or duplicated");
        next[p as usize] += 1;
    }
    assert_eq!(l.try_recv().err(), Some(Error::NoMessage));
    assert!(l.metrics().connects >= PEERS as u64);
    let conns: Vec<Channel> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    drop(conns);
}

#[test]
fn tcp_many_peers_exactly_once() {
    many_peers_exactly_once("tcp");
}

#[test]
fn ws_many_peers_exactly_once() {
    many_peers_exactly_once("ws");
}

/// A listener sends each message to exactly one of its peers.
#[test]
fn listener_sends_each_message_to_one_peer() {
    let (l, uri) = listen("unix", "", 1 << 16, Mode::Spsc);
    let peers: Vec<Channel> = (0..3).map(|_| connect(&uri, 1 << 16, Mode::Spsc)).collect();
    wait_for("3 peers", || l.metrics().peers == 3);
    let n = 3000u32;
    for i in 0..n {
        l.send_timeout(&i.to_le_bytes(), 0, LONG).unwrap();
    }
    let mut seen = HashSet::new();
    let t = Instant::now();
    while seen.len() < n as usize {
        assert!(t.elapsed() < LONG, "only {} of {n} arrived", seen.len());
        for p in &peers {
            let mut last = None;
            while let Ok(m) = p.try_recv() {
                let i = u32::from_le_bytes(m[..].try_into().unwrap());
                assert!(seen.insert(i), "message {i} delivered twice");
                assert!(
                    last.map_or(true, |l| i > l),
                    "a peer got messages out of order"
                );
                last = Some(i);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        peers.iter().all(|p| p.try_recv().is_err()),
        "a duplicate arrived late"
    );
}

/// With broadcast=on every peer gets every message, in order.
fn broadcast_reaches_every_peer(scheme: &str) {
    let (l, uri) = listen(scheme, "broadcast=on", 1 << 16, Mode::Spsc);
    let peers: Vec<Channel> = (0..3).map(|_| connect(&uri, 1 << 16, Mode::Spsc)).collect();
    wait_for("3 peers", || l.metrics().peers == 3);
    for i in 0..500u32 {
        l.send_timeout(&i.to_le_bytes(), i, LONG).unwrap();
    }
    for p in &peers {
        for i in 0..500u32 {
            let m = p.recv_timeout(LONG).unwrap();
            assert_eq!((&m[..], m.msg_type()), (&i.to_le_bytes()[..], i));
        }
    }
    // Peers still send to the broadcaster.
    peers[1].send_timeout(b"up", 1, LONG).unwrap();
    assert_eq!(&l.recv_timeout(LONG).unwrap()[..], b"up");
}

#[test]
fn tcp_broadcast_reaches_every_peer() {
    broadcast_reaches_every_peer("tcp");
}

#[test]
fn ws_broadcast_reaches_every_peer() {
    broadcast_reaches_every_peer("ws");
}

/// The listener goes away and comes back on the same address: the
/// connector reconnects by itself and messages flow again.
fn reconnect_after_listener_restart(scheme: &str) {
    let (l, uri) = listen(scheme, "", 1 << 16, Mode::Spsc);
    let listen_uri = format!(
        "{scheme}://{}{}?role=listen",
        l.local_addr().unwrap(),
        path(scheme)
    );
    let c = connect(&format!("{uri}?reconnect_max=50"), 1 << 16, Mode::Spsc);
    c.send_timeout(b"one", 1, LONG).unwrap();
    assert_eq!(&l.recv_timeout(LONG).unwrap()[..], b"one");
    drop(l);
    wait_for("the connector to see the drop", || c.metrics().peers == 0);
    let l = Channel::open(&listen_uri, 1 << 16, Mode::Spsc, ChannelType::Multi).unwrap();
    wait_for("the reconnect", || c.metrics().peers == 1);
    c.send_timeout(b"two", 2, LONG).unwrap();
    let m = l.recv_timeout(LONG).unwrap();
    assert_eq!((&m[..], m.msg_type()), (&b"two"[..], 2));
    let mc = c.metrics();
    assert_eq!((mc.connects, mc.reconnects), (2, 1));
}

#[test]
fn tcp_reconnect_after_listener_restart() {
    reconnect_after_listener_restart("tcp");
}

#[test]
fn unix_reconnect_after_listener_restart() {
    reconnect_after_listener_restart("unix");
}

#[test]
fn ws_reconnect_after_listener_restart() {
    reconnect_after_listener_restart("ws");
}

/// 16 MiB messages both ways, byte-exact, through reservations.
fn sixteen_mib_messages(scheme: &str) {
    const SIZE: usize = 16 << 20;
    let (l, uri) = listen(scheme, "checksum=on", 64 << 20, Mode::Spsc);
    let c = connect(&format!("{uri}?checksum=on"), 64 << 20, Mode::Spsc);
    let pattern = |i: usize, k: usize| (k.wrapping_mul(31) ^ i) as u8;
    for i in 0..3 {
        let mut w = c.reserve_timeout(SIZE, LONG).unwrap();
        w.iter_mut()
            .enumerate()
            .for_each(|(k, b)| *b = pattern(i, k));
        w.send(i as u32).unwrap();
    }
    for i in 0..3 {
        let m = l.recv_timeout(LONG).unwrap();
        assert_eq!((m.len(), m.msg_type()), (SIZE, i as u32));
        assert!(m.iter().enumerate().all(|(k, &b)| b == pattern(i, k)));
        l.send_timeout(&m, 100 + i as u32, LONG).unwrap();
    }
    for i in 0..3 {
        let m = c.recv_timeout(LONG).unwrap();
        assert_eq!((m.len(), m.msg_type()), (SIZE, 100 + i as u32));
        assert!(m.iter().enumerate().all(|(k, &b)| b == pattern(i, k)));
    }
    assert_eq!(l.metrics().checksum_failures, 0);
}

#[test]
fn unix_sixteen_mib_messages() {
    sixteen_mib_messages("unix");
}

#[test]
fn ws_sixteen_mib_messages() {
    sixteen_mib_messages("ws");
}

/// A receiver that does not receive slows its sender down to CHANNEL_FULL:
/// nothing queues without bound on either side; once it receives, every
/// message arrives.
#[test]
fn slow_receiver_bounds_the_sender() {
    let (l, uri) = listen("tcp", "", 1 << 16, Mode::Spsc);
    let c = connect(&uri, 1 << 16, Mode::Spsc);
    wait_for("the connection", || c.metrics().peers == 1);
    let msg = [9u8; 1000];
    let mut sent = 0u64;
    let t = Instant::now();
    loop {
        match c.try_send(&msg, 0) {
            Ok(()) => sent += 1,
            Err(Error::ChannelFull) => {
                // Full may be momentary while the writer drains the ring:
                // wait until it stays full.
                std::thread::sleep(Duration::from_millis(20));
                if c.try_send(&msg, 0) == Err(Error::ChannelFull) {
                    break;
                }
                sent += 1;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(
            t.elapsed() < LONG,
            "the sender never filled up ({sent} sent)"
        );
    }
    // Two 64 KiB rings and the kernel's socket buffers hold it all.
    assert!(sent < 20_000, "{sent} messages were accepted");
    assert!(l.queued_bytes() <= 1 << 16);
    for _ in 0..sent {
        assert_eq!(l.recv_timeout(LONG).unwrap().len(), 1000);
    }
    assert_eq!(
        l.recv_timeout(Duration::from_millis(50)).err(),
        Some(Error::Timeout)
    );
}

/// Dropping a channel in the middle of a transfer closes its sockets and
/// stops its threads promptly; the peer sees the connection go.
#[test]
fn drop_mid_transfer_is_prompt() {
    let (l, uri) = listen("tcp", "", 1 << 16, Mode::Spsc);
    let c = connect(&uri, 1 << 16, Mode::Spsc);
    wait_for("the connection", || l.metrics().peers == 1);
    let c2 = c.clone();
    let sender = std::thread::spawn(move || {
        // Blocks once the listener's side is full (it never receives).
        let r = loop {
            if let Err(e) = c2.send(&[1u8; 4000], 0) {
                break e;
            }
        };
        drop(c2);
        r
    });
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    drop(l);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "drop took {:?}",
        t.elapsed()
    );
    wait_for("the connector to see the drop", || c.metrics().peers == 0);
    c.stop();
    assert_eq!(sender.join().unwrap(), Error::ChannelStopped);
}

/// Stopping a connected connector sends what was queued first, then
/// closes. (Stopped before it ever connected, it stops trying.)
#[test]
fn stop_flushes_then_closes() {
    let (l, uri) = listen("unix", "", 1 << 20, Mode::Spsc);
    let c = connect(&uri, 1 << 20, Mode::Spsc);
    wait_for("the connection", || c.metrics().peers == 1);
    for i in 0..1000u32 {
        c.send_timeout(&i.to_le_bytes(), i, LONG).unwrap();
    }
    c.stop();
    for i in 0..1000u32 {
        assert_eq!(l.recv_timeout(LONG).unwrap().msg_type(), i);
    }
    wait_for("the listener to see the close", || l.metrics().peers == 0);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.metrics().connects, 1, "a stopped connector reconnected");
}

#[test]
fn bad_configurations_are_refused() {
    let inv =
        |uri: &str, size: usize| match Channel::open(uri, size, Mode::Spsc, ChannelType::Multi) {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{uri}: {other:?}"),
        };
    assert!(inv("tcp://127.0.0.1:1?broadcast=on", 1024).contains("broadcast"));
    assert!(inv("tcp://127.0.0.1:1", 0).contains("ring size"));
    assert!(inv("tcp://127.0.0.1:1?max_peers=0", 1024).contains("max_peers"));
    assert!(inv("tcp://127.0.0.1:1?handshake_timeout=x", 1024).contains("handshake_timeout"));
    assert!(inv("unix:///tmp/x.sock?reconnect_max=1", 1024).contains("reconnect_max"));
    assert!(inv("tcp://:0?role=connect", 1024).contains("connecting"));

    // An address in use.
    let (l, _) = listen("tcp", "", 1024, Mode::Spsc);
    let taken = format!("tcp://{}?role=listen", l.local_addr().unwrap());
    assert!(matches!(
        Channel::open(&taken, 1024, Mode::Spsc, ChannelType::Multi),
        Err(Error::Io(_))
    ));
    // A unix path where a live listener accepts, and one that is a file.
    let (u, _) = listen("unix", "", 1024, Mode::Spsc);
    let live = format!("unix://{}?role=listen", u.local_addr().unwrap());
    assert!(matches!(
        Channel::open(&live, 1024, Mode::Spsc, ChannelType::Multi),
        Err(Error::Io(_))
    ));
    let file = sock_path();
    std::fs::write(&file, b"not a socket").unwrap();
    match Channel::open(
        &format!("unix://{file}?role=listen"),
        1024,
        Mode::Spsc,
        ChannelType::Multi,
    ) {
        Err(Error::Io(m)) => assert!(m.contains("not a socket"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"not a socket",
        "the file was replaced"
    );
    std::fs::remove_file(&file).unwrap();
}

/// A unix listener removes a stale socket file left by a dead listener,
/// and its own file when it closes.
#[test]
fn unix_socket_files_are_cleaned_up() {
    let path = sock_path();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // a stale file
    assert!(std::path::Path::new(&path).exists());
    let l = Channel::open(
        &format!("unix://{path}?role=listen"),
        1024,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap();
    let c = connect(&format!("unix://{path}"), 1024, Mode::Spsc);
    c.send_timeout(b"hi", 0, LONG).unwrap();
    assert_eq!(&l.recv_timeout(LONG).unwrap()[..], b"hi");
    drop(l);
    assert!(
        !std::path::Path::new(&path).exists(),
        "the socket file was left behind"
    );
}

/// A message larger than the peer accepts is dropped and counted on the
/// sending side; the connection stays up.
#[test]
fn message_too_large_for_the_peer_is_dropped_and_counted() {
    let (l, uri) = listen("tcp", "", 1 << 10, Mode::Spsc); // accepts up to 496 bytes
    let c = connect(&uri, 1 << 16, Mode::Spsc);
    c.send_timeout(&[1u8; 2000], 1, LONG).unwrap();
    c.send_timeout(&[2u8; 400], 2, LONG).unwrap();
    let m = l.recv_timeout(LONG).unwrap();
    assert_eq!((m.len(), m.msg_type()), (400, 2));
    assert_eq!(c.metrics().frames_refused, 1);
    assert!(c.last_peer_error().unwrap().contains("2000"));
    assert_eq!(c.metrics().peers, 1);
}

/// Ping-pong with blocking calls, the echo in a thread of its own that owns
/// the listener (the demo's latency row).
#[test]
fn blocking_ping_pong() {
    for scheme in ["tcp", "unix"] {
        let (server, uri) = listen(scheme, "", 1 << 16, Mode::Spsc);
        let client = connect(&uri, 1 << 16, Mode::Spsc);
        wait_for("the connection", || client.metrics().peers == 1);
        let rounds = 5000;
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            for _ in 0..rounds {
                let (n, t) = server.recv_into_timeout(&mut buf, LONG).unwrap();
                server.send_timeout(&buf[..n], t, LONG).unwrap();
            }
        });
        let mut buf = [0u8; 64];
        for i in 0..rounds {
            client.send_timeout(&[1u8; 64], i, LONG).unwrap();
            let got = client.recv_into_timeout(&mut buf, LONG);
            assert_eq!(
                got,
                Ok((64, i)),
                "{scheme}: round {i}, {:?}",
                client.metrics()
            );
        }
        echo.join().unwrap();
    }
}

/// Out of file descriptors: the listener neither crashes nor spins while
/// `accept` fails, and takes peers again once descriptors are free. Runs in
/// a child process (the limit is process-wide).
#[test]
fn out_of_file_descriptors() {
    if std::env::var_os("PSYNE_TEST_EMFILE_CHILD").is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "out_of_file_descriptors",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PSYNE_TEST_EMFILE_CHILD", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let (l, uri) = listen("tcp", "handshake_timeout=2000", 1 << 16, Mode::Mpsc);
    let addr = l.local_addr().unwrap();
    // Leave a handful of descriptors, then use them up with raw connections
    // (each takes one here, and the listener's accept needs one more).
    let open_fds = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let lim = libc::rlimit {
        rlim_cur: open_fds + 8,
        rlim_max: 4096.max(open_fds + 8),
    };
    // SAFETY: plain system call on a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let mut raw = Vec::new();
    while let Ok(s) = std::net::TcpStream::connect(&addr) {
        raw.push(s);
        if raw.len() > 64 {
            break;
        }
    }
    // Accept now fails for want of descriptors: measure the CPU the
    // process burns meanwhile (a busy loop would take a whole CPU).
    let cpu = || {
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: plain system call on a valid struct.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
        let t = |v: libc::timeval| Duration::new(v.tv_sec as u64, v.tv_usec as u32 * 1000);
        t(u.ru_utime) + t(u.ru_stime)
    };
    let before = cpu();
    std::thread::sleep(Duration::from_secs(1));
    let burnt = cpu() - before;
    assert!(
        burnt < Duration::from_millis(500),
        "{burnt:?} of CPU in 1 s"
    );
    drop(raw);
    let lim = libc::rlimit {
        rlim_cur: 4096.min(lim.rlim_max),
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let c = connect(&uri, 1 << 16, Mode::Spsc);
    c.send_timeout(b"after", 1, LONG).unwrap();
    assert_eq!(&l.recv_timeout(LONG).unwrap()[..], b"after");
    assert!(l.last_peer_error().is_some());
}

/// A HELLO of a connector as PROTOCOL.md describes it (MULTI, SPSC).
fn raw_hello(max_frame: u32) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(b"PSYN");
    h[4..6].copy_from_slice(&1u16.to_le_bytes());
    h[6..8].copy_from_slice(&32u16.to_le_bytes());
    h[10] = 1;
    h[16..20].copy_from_slice(&max_frame.to_le_bytes());
    h
}

/// A peer that stalls in the middle of a frame does not hold up what the
/// other peers of the listener send.
#[test]
fn a_stalled_frame_does_not_hold_up_other_peers() {
    use std::io::Write;
    let (l, uri) = listen("tcp", "", 1 << 16, Mode::Mpsc);
    let mut raw = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    raw.write_all(&raw_hello(1 << 16)).unwrap();
    let mut header = [0u8; 16];
    header[..4].copy_from_slice(&100u32.to_le_bytes());
    raw.write_all(&header).unwrap();
    raw.write_all(&[0u8; 10]).unwrap(); // 10 of 100 bytes, then silence
    wait_for("the raw peer", || l.metrics().peers == 1);
    let good = connect(&uri, 1 << 16, Mode::Spsc);
    for i in 0..100u32 {
        good.send_timeout(&i.to_le_bytes(), i, LONG).unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(l.recv_timeout(LONG).unwrap().msg_type(), i);
    }
    // The stalled frame completes later and arrives whole.
    raw.write_all(&[7u8; 90]).unwrap();
    let m = l.recv_timeout(LONG).unwrap();
    assert_eq!(m.len(), 100);
    assert!(m[10..].iter().all(|&b| b == 7));
}

/// Small and large messages interleaved (small ones are copied into the
/// writer's staging buffer, large ones written from the ring), checksummed,
/// arrive byte-exact and in order.
#[test]
fn mixed_sizes_in_one_run() {
    let sizes = [0usize, 10, 1024, 1025, 5000, 70_000, 3, 65_536, 1];
    let (l, uri) = listen("unix", "", 1 << 20, Mode::Spsc);
    let c = connect(&format!("{uri}?checksum=on"), 1 << 20, Mode::Spsc);
    wait_for("the connection", || c.metrics().peers == 1);
    let body = |i: usize, len: usize| -> Vec<u8> { (0..len).map(|k| (k * 7 + i) as u8).collect() };
    let n = 300;
    let sender = std::thread::spawn(move || {
        for i in 0..n {
            let len = sizes[i % sizes.len()];
            c.send_timeout(&body(i, len), i as u32, LONG).unwrap();
        }
        c
    });
    for i in 0..n {
        let m = l.recv_timeout(LONG).unwrap();
        assert_eq!(m.msg_type(), i as u32);
        assert_eq!(&m[..], &body(i, sizes[i % sizes.len()])[..], "message {i}");
    }
    let c = sender.join().unwrap();
    assert_eq!(l.metrics().checksum_failures, 0);
    drop(c);
}

/// A peer that goes away while the writer writes is an error on that
/// connection, never a SIGPIPE: C and Go programs keep SIGPIPE's default
/// action (death), unlike Rust programs, so the child process restores it.
#[test]
fn a_vanished_peer_never_raises_sigpipe() {
    if std::env::var_os("PSYNE_TEST_SIGPIPE_CHILD").is_none() {
        for _ in 0..3 {
            let exe = std::env::current_exe().unwrap();
            let out = std::process::Command::new(exe)
                .args([
                    "--exact",
                    "a_vanished_peer_never_raises_sigpipe",
                    "--nocapture",
                ])
                .env("PSYNE_TEST_SIGPIPE_CHILD", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "child ended with {:?}:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        return;
    }
    // SAFETY: restoring a signal's default disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    for scheme in ["tcp", "unix"] {
        let (l, uri) = listen(scheme, "", 1 << 16, Mode::Spsc);
        let c = connect(&format!("{uri}?linger=0"), 1 << 16, Mode::Spsc);
        wait_for("the connection", || c.metrics().peers == 1);
        let sender = {
            let c = c.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(500) {
                    let _ = c.send_timeout(&[3u8; 100], 1, Duration::from_millis(10));
                }
            })
        };
        for _ in 0..100 {
            l.recv_timeout(LONG).unwrap();
        }
        drop(l); // the peer vanishes while the connector keeps writing
        sender.join().unwrap();
        wait_for("the connector to see the drop", || c.metrics().peers == 0);
    }
}

/// The smallest ring a socket end takes is 256 bytes (smaller sizes are
/// rounded up), so that it accepts frames of the protocol's minimum size.
#[test]
fn tiny_rings_are_rounded_up() {
    let (l, uri) = listen("tcp", "", 64, Mode::Spsc);
    let c = connect(&uri, 64, Mode::Spsc);
    assert_eq!((l.buffer_size(), c.buffer_size()), (256, 256));
    c.send_timeout(&[1u8; 100], 1, LONG).unwrap();
    assert_eq!(l.recv_timeout(LONG).unwrap().len(), 100);
    assert_eq!(c.metrics().frames_refused + l.metrics().frames_refused, 0);
}
