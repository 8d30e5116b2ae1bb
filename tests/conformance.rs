//! The same semantic tests over every transport: a message sent on one end
//! arrives at the other in order, exactly once, byte-exact, with its type;
//! reservations, views, timeouts, stop, metrics and size limits behave the
//! same on `memory://`, `ipc://`, `tcp://`, `unix://` and `ws://`.
//!
//! Each transport provides a pair `(tx, rx)`: on memory and ipc two handles
//! on one ring, on sockets a connector and the listener it connected to.

use psyne::{Channel, ChannelType, Error, Mode};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(20);
const RING: usize = 1 << 16;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    format!(
        "conf-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Opens a connected pair on `scheme`.
fn pair(scheme: &str, mode: Mode, ty: ChannelType) -> (Channel, Channel) {
    match scheme {
        "memory" | "ipc" => {
            let uri = format!("{scheme}://{}", unique(scheme));
            let tx = Channel::open(&uri, RING, mode, ty).unwrap();
            let rx = Channel::open(&uri, 0, mode, ty).unwrap();
            (tx, rx)
        }
        "tcp" | "unix" | "ws" => {
            let (listen_uri, path) = match scheme {
                "tcp" => ("tcp://127.0.0.1:0?role=listen".to_string(), ""),
                "ws" => ("ws://127.0.0.1:0/c?role=listen".to_string(), "/c"),
                _ => (format!("unix:///tmp/{}.sock?role=listen", unique("u")), ""),
            };
            let rx = Channel::open(&listen_uri, RING, mode, ty).unwrap();
            let addr = rx.local_addr().unwrap();
            let tx = Channel::open(&format!("{scheme}://{addr}{path}"), RING, mode, ty).unwrap();
            let t = Instant::now();
            while tx.metrics().peers == 0 || rx.metrics().peers == 0 {
                assert!(t.elapsed() < LONG, "{scheme}: no connection");
                std::thread::sleep(Duration::from_millis(1));
            }
            (tx, rx)
        }
        _ => unreachable!(),
    }
}

fn order_and_exactly_once(scheme: &str) {
    for mode in [Mode::Spsc, Mode::Spmc, Mode::Mpsc, Mode::Mpmc] {
        let (tx, rx) = pair(scheme, mode, ChannelType::Multi);
        let n = 20_000u32;
        let sender = std::thread::spawn(move || {
            for i in 0..n {
                let len = (i % 200) as usize;
                let payload: Vec<u8> = (0..len).map(|k| (i as usize + k) as u8).collect();
                tx.send_timeout(&payload, i, LONG).unwrap();
            }
            tx
        });
        for i in 0..n {
            let m = rx.recv_timeout(LONG).unwrap();
            assert_eq!(m.msg_type(), i, "{scheme} {mode:?}: order");
            let len = (i % 200) as usize;
            assert_eq!(m.len(), len);
            assert!(m
                .iter()
                .enumerate()
                .all(|(k, &b)| b == (i as usize + k) as u8));
        }
        let tx = sender.join().unwrap();
        assert_eq!(
            rx.try_recv().err(),
            Some(Error::NoMessage),
            "{scheme}: a duplicate"
        );
        assert_eq!(tx.metrics().messages_sent, n as u64);
        assert_eq!(rx.metrics().messages_received, n as u64);
    }
}

fn reservation_and_views(scheme: &str) {
    let (tx, rx) = pair(scheme, Mode::Spsc, ChannelType::Multi);
    let mut w = tx.reserve_timeout(1000, LONG).unwrap();
    w.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    w.send(9).unwrap();
    tx.try_reserve(10).unwrap().cancel(); // cancelled: never delivered
    let mut w = tx.try_reserve(0).unwrap();
    assert!(w.is_empty());
    w.iter_mut().for_each(|b| *b = 1);
    w.send(10).unwrap();
    let v = rx.recv_timeout(LONG).unwrap();
    assert_eq!((v.len(), v.msg_type()), (1000, 9));
    assert!(v.iter().enumerate().all(|(i, &b)| b == i as u8));
    drop(v);
    let v = rx.recv_timeout(LONG).unwrap();
    assert_eq!((v.len(), v.msg_type()), (0, 10));
    drop(v);
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(50)).err(),
        Some(Error::Timeout)
    );
}

fn timeouts_and_empty(scheme: &str) {
    let (tx, rx) = pair(scheme, Mode::Spsc, ChannelType::Multi);
    assert_eq!(rx.try_recv().err(), Some(Error::NoMessage));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(30)).err(),
        Some(Error::Timeout)
    );
    let mut buf = [0u8; 8];
    assert_eq!(
        rx.recv_into_timeout(&mut buf, Duration::from_millis(30))
            .err(),
        Some(Error::Timeout)
    );
    tx.try_send(b"x", 1).unwrap();
    assert_eq!(rx.recv_into_timeout(&mut buf, LONG).unwrap(), (1, 1));
}

fn sizes(scheme: &str) {
    let (tx, rx) = pair(scheme, Mode::Spsc, ChannelType::Multi);
    let max = tx.max_message_size();
    assert!(matches!(
        tx.try_send(&vec![0; max + 1], 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        tx.try_reserve(max + 1),
        Err(Error::InvalidArgument(_))
    ));
    tx.send_timeout(&[5u8; 100], 3, LONG).unwrap();
    // Too small a buffer: the error names the size, the message stays.
    let mut small = [0u8; 10];
    let t = Instant::now();
    let e = loop {
        match rx.recv_into_timeout(&mut small, LONG) {
            Err(Error::Timeout) => assert!(t.elapsed() < LONG),
            other => break other,
        }
    };
    match e {
        Err(Error::BufferTooSmall { capacity, needed }) => {
            assert_eq!((capacity, needed), (10, 100))
        }
        other => panic!("{scheme}: {other:?}"),
    }
    let mut big = [0u8; 200];
    assert_eq!(rx.recv_into_timeout(&mut big, LONG).unwrap(), (100, 3));
    // The largest message goes through.
    tx.send_timeout(&vec![7u8; max], 4, LONG).unwrap();
    let v = rx.recv_timeout(LONG).unwrap();
    assert_eq!((v.len(), v.msg_type()), (max, 4));
    assert!(v.iter().all(|&b| b == 7));
}

fn stop_drains_then_stops(scheme: &str) {
    let (tx, rx) = pair(scheme, Mode::Spsc, ChannelType::Multi);
    for i in 0..10u32 {
        tx.send_timeout(&i.to_le_bytes(), i, LONG).unwrap();
    }
    // Wait until all ten are on the receiving side, then stop it.
    let t = Instant::now();
    while rx.queued_bytes() < 10 * 32 {
        assert!(t.elapsed() < LONG);
        std::thread::sleep(Duration::from_millis(1));
    }
    rx.stop();
    assert!(rx.is_stopped());
    for i in 0..10u32 {
        assert_eq!(
            rx.recv_timeout(LONG).unwrap().msg_type(),
            i,
            "{scheme}: drain"
        );
    }
    assert_eq!(rx.recv_timeout(LONG).err(), Some(Error::ChannelStopped));
    assert_eq!(rx.try_send(b"late", 0).err(), Some(Error::ChannelStopped));
    // Stop wakes a blocked receiver.
    let (tx2, rx2) = pair(scheme, Mode::Spsc, ChannelType::Multi);
    let r2 = rx2.clone();
    let waiter = std::thread::spawn(move || r2.recv().map(|m| m.len()));
    std::thread::sleep(Duration::from_millis(20));
    rx2.stop();
    assert_eq!(waiter.join().unwrap(), Err(Error::ChannelStopped));
    drop(tx2);
    drop(tx);
}

fn metrics_count_both_ends(scheme: &str) {
    let (tx, rx) = pair(scheme, Mode::Spsc, ChannelType::Multi);
    for _ in 0..5 {
        tx.send_timeout(&[1u8; 40], 1, LONG).unwrap();
    }
    for _ in 0..5 {
        rx.recv_timeout(LONG).unwrap();
    }
    // A socket end's writer counts its wire bytes once its write returned,
    // which may be just after the peer received them.
    let t = Instant::now();
    while tx.metrics().wire_bytes_sent < 200 {
        assert!(t.elapsed() < LONG, "{:?}", tx.metrics());
        std::thread::sleep(Duration::from_millis(1));
    }
    let (mt, mr) = (tx.metrics(), rx.metrics());
    assert_eq!((mt.messages_sent, mt.bytes_sent), (5, 200));
    assert_eq!((mr.messages_received, mr.bytes_received), (5, 200));
    assert!(mr.high_water_bytes >= mr.queued_bytes, "{mr:?}");
    tx.reset_metrics();
    assert_eq!(tx.metrics().messages_sent, 0);
    assert_eq!(rx.try_recv().err(), Some(Error::NoMessage));
    assert!(rx.metrics().receive_blocks >= 1);
}

fn single_type(scheme: &str) {
    let (tx, rx) = pair(scheme, Mode::Spsc, ChannelType::Single);
    assert!(matches!(
        tx.try_send(b"a", 3),
        Err(Error::InvalidArgument(_))
    ));
    tx.send_timeout(b"a", 0, LONG).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap().msg_type(), 0);
}

macro_rules! conformance {
    ($($scheme:ident),*) => {$(
        mod $scheme {
            #[test] fn order_and_exactly_once() { super::order_and_exactly_once(stringify!($scheme)) }
            #[test] fn reservation_and_views() { super::reservation_and_views(stringify!($scheme)) }
            #[test] fn timeouts_and_empty() { super::timeouts_and_empty(stringify!($scheme)) }
            #[test] fn sizes() { super::sizes(stringify!($scheme)) }
            #[test] fn stop_drains_then_stops() { super::stop_drains_then_stops(stringify!($scheme)) }
            #[test] fn metrics_count_both_ends() { super::metrics_count_both_ends(stringify!($scheme)) }
            #[test] fn single_type() { super::single_type(stringify!($scheme)) }
        }
    )*};
}

conformance!(memory, ipc, tcp, unix, ws);
