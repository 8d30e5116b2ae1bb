//! psyne `ipc://` beside baselines, in one run: `memory://` (the same ring
//! between two threads), a Unix stream socket, and iceoryx2 publish-subscribe
//! (built with the default `iceoryx2` feature).
//!
//!   cargo run --release --manifest-path benches/ipc-baselines/Cargo.toml
//!   cargo run --release --manifest-path benches/ipc-baselines/Cargo.toml --no-default-features  # without iceoryx2
//!
//! Every cross-process case runs the peer as a child process (this binary
//! again, with `child ...` arguments).
//!
//! * throughput: one producer, one consumer; the producer copies a prepared
//!   payload into each message (psyne: into the reservation; iceoryx2: into the
//!   loan; socket: into the stream), the consumer takes each message and reads
//!   its first and last byte (psyne and iceoryx2: a view of the shared memory;
//!   socket: `read_exact` into a buffer, which is where the copy happens).
//!   psyne waits with its blocking calls (`PSYNE_BENCH_SPIN=1`: busy-poll
//!   `try_reserve`/`try_recv` instead; `PSYNE_BENCH_SPIN_US=N`: blocking
//!   calls poll N µs before sleeping, the URI option `spin`); iceoryx2's
//!   subscriber busy-polls and its publisher retries until delivered (its own
//!   adaptive wait); the socket is a buffered stream (64 KiB batches per
//!   system call).
//! * ping-pong: 64-byte messages to an echo peer and back; both sides
//!   busy-poll (psyne: `try_recv`; iceoryx2: `receive`); the socket blocks in
//!   `read`. One-way latency = round trip / 2.
//! * 10 MiB transfer: the producer writes 10 MiB into a reservation and sends
//!   it; the consumer reads every byte (sums it) and answers with 8 bytes; the
//!   time is from the start of the reservation to the answer. Both sides wait
//!   with blocking calls (they sleep rather than spin).

use psyne::{Channel, ChannelType, Mode};
use std::hint::black_box;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PING_ROUNDS: usize = 100_000;
const PING_WARMUP: usize = 10_000;
const XFER: usize = 10 << 20;
const XFER_REPS: usize = 20;

fn count_for(size: usize) -> u64 {
    match size {
        0..=64 => 5_000_000,
        65..=4096 => 1_000_000,
        _ => 3_000,
    }
}

fn ring_for(size: usize) -> usize {
    (size * 16).max(1 << 20).next_power_of_two()
}

// ---------------------------------------------------------------------------
// Peers: a child process (ipc, socket, iceoryx2) or a thread (memory://)
// ---------------------------------------------------------------------------

enum Peer {
    Proc(
        Child,
        BufReader<std::process::ChildStdout>,
        Option<std::process::ChildStdin>,
    ),
    Thread(std::thread::JoinHandle<()>),
}

impl Peer {
    fn child(args: &[String]) -> Peer {
        let mut c = Command::new(std::env::current_exe().unwrap())
            .arg("child")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let out = BufReader::new(c.stdout.take().unwrap());
        let stdin = c.stdin.take();
        let mut p = Peer::Proc(c, out, stdin);
        p.wait_line("READY");
        p
    }

    fn thread(args: Vec<String>) -> Peer {
        Peer::Thread(std::thread::spawn(move || child(&args, &mut |_| {})))
    }

    fn wait_line(&mut self, want: &str) {
        if let Peer::Proc(_, out, _) = self {
            let mut l = String::new();
            loop {
                l.clear();
                if out.read_line(&mut l).unwrap() == 0 {
                    panic!("child exited before {want}");
                }
                if l.trim() == want {
                    return;
                }
            }
        }
    }

    fn join(self) {
        match self {
            Peer::Proc(mut c, _, stdin) => {
                drop(stdin); // EOF: a child waiting for it may exit
                let st = c.wait().unwrap();
                assert!(st.success(), "child failed: {st}");
            }
            Peer::Thread(t) => t.join().unwrap(),
        }
    }
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

/// psyne peers open their channels by URI; `memory://` peers are threads.
fn psyne_peer(scheme: &str, args: Vec<String>) -> Peer {
    if scheme == "ipc" {
        Peer::child(&args)
    } else {
        Peer::thread(args)
    }
}

/// Opens a psyne channel; `PSYNE_BENCH_SPIN_US=N` adds `?spin=N` (how long
/// blocking calls poll before they sleep) to every psyne URI.
fn open(uri: &str, size: usize) -> Channel {
    let uri = match std::env::var("PSYNE_BENCH_SPIN_US") {
        Ok(us) => format!("{uri}?spin={us}"),
        Err(_) => uri.to_string(),
    };
    Channel::open(&uri, size, Mode::Spsc, ChannelType::Multi).unwrap()
}

// ---------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------

fn child(args: &[String], ready: &mut dyn FnMut(&str)) {
    let n = |i: usize| args[i].parse::<usize>().unwrap();
    match args[0].as_str() {
        "psyne-tp" => {
            let ch = open(&args[1], 0);
            let mut tx = ch.producer().unwrap();
            let (size, count) = (n(2), n(3));
            let src = vec![0xabu8; size];
            ready("READY");
            let spin = std::env::var("PSYNE_BENCH_SPIN").is_ok();
            for _ in 0..count {
                let mut m = if spin {
                    loop {
                        if let Ok(m) = tx.try_reserve(size) {
                            break m;
                        }
                        std::hint::spin_loop();
                    }
                } else {
                    tx.reserve_until(size, None, None).unwrap()
                };
                m.copy_from_slice(&src);
                m.send(1).unwrap();
            }
        }
        "psyne-echo" => {
            let ping = open(&args[1], 0);
            let pong = open(&args[2], 0);
            let (mut rx, mut tx) = (ping.consumer().unwrap(), pong.producer().unwrap());
            ready("READY");
            for _ in 0..n(3) {
                let m = loop {
                    if let Ok(m) = rx.try_recv() {
                        break m;
                    }
                    std::hint::spin_loop();
                };
                let mut out = loop {
                    if let Ok(o) = tx.try_reserve(m.len()) {
                        break o;
                    }
                };
                out.copy_from_slice(&m);
                out.send(m.msg_type()).unwrap();
            }
        }
        "psyne-xfer" => {
            let data = open(&args[1], 0);
            let ack = open(&args[2], 0);
            let (mut rx, mut tx) = (data.consumer().unwrap(), ack.producer().unwrap());
            ready("READY");
            for _ in 0..n(3) {
                let m = rx.recv_until(None, None).unwrap();
                let sum = m.chunks_exact(8).fold(0u64, |a, c| {
                    a.wrapping_add(u64::from_le_bytes(c.try_into().unwrap()))
                });
                drop(m);
                tx.send(&sum.to_le_bytes(), 0).unwrap();
            }
        }
        "uds-tp" => {
            let mut w = BufWriter::with_capacity(1 << 16, UnixStream::connect(&args[1]).unwrap());
            let (size, count) = (n(2), n(3));
            let src = vec![0xabu8; size];
            ready("READY");
            for _ in 0..count {
                w.write_all(&src).unwrap();
            }
            w.flush().unwrap();
        }
        "uds-echo" => {
            let mut sock = UnixStream::connect(&args[1]).unwrap();
            let mut buf = [0u8; 64];
            ready("READY");
            for _ in 0..n(2) {
                sock.read_exact(&mut buf).unwrap();
                sock.write_all(&buf).unwrap();
            }
        }
        #[cfg(feature = "iceoryx2")]
        "ice-tp" => ice::producer(&args[1], n(2), n(3), ready),
        #[cfg(feature = "iceoryx2")]
        "ice-echo" => ice::echo(&args[1], &args[2], n(3), ready),
        other => panic!("unknown child role {other}"),
    }
}

// ---------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------

struct Tp {
    msgs_per_s: f64,
    bytes_per_s: f64,
}

fn tp_result(count: u64, size: usize, d: Duration) -> Tp {
    let m = count as f64 / d.as_secs_f64();
    Tp {
        msgs_per_s: m,
        bytes_per_s: m * size as f64,
    }
}

fn psyne_tp(scheme: &str, size: usize) -> Tp {
    let uri = format!("{scheme}://bench-tp-{}-{size}", std::process::id());
    let ch = open(&uri, ring_for(size));
    let mut rx = ch.consumer().unwrap();
    let count = count_for(size);
    let peer = psyne_peer(scheme, vec![s("psyne-tp"), uri.clone(), s(size), s(count)]);
    let mut t0 = None;
    let spin = std::env::var("PSYNE_BENCH_SPIN").is_ok();
    for _ in 0..count {
        let m = if spin {
            loop {
                if let Ok(m) = rx.try_recv() {
                    break m;
                }
                std::hint::spin_loop();
            }
        } else {
            rx.recv_until(None, None).unwrap()
        };
        black_box((m.first(), m.last()));
        t0.get_or_insert_with(Instant::now);
    }
    let d = t0.unwrap().elapsed();
    peer.join();
    tp_result(count - 1, size, d)
}

fn uds_path(tag: &str) -> String {
    format!("/tmp/psyne-bench-{}-{tag}.sock", std::process::id())
}

fn uds_tp(size: usize) -> Tp {
    let path = uds_path("tp");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let count = count_for(size);
    let peer = Peer::child(&[s("uds-tp"), path.clone(), s(size), s(count)]);
    let mut r = BufReader::with_capacity(1 << 16, l.accept().unwrap().0);
    let mut buf = vec![0u8; size];
    let mut t0 = None;
    for _ in 0..count {
        r.read_exact(&mut buf).unwrap();
        black_box((buf.first(), buf.last()));
        t0.get_or_insert_with(Instant::now);
    }
    let d = t0.unwrap().elapsed();
    peer.join();
    let _ = std::fs::remove_file(&path);
    tp_result(count - 1, size, d)
}

struct Lat {
    p50: Duration,
    p99: Duration,
}

fn lat_result(mut rtt: Vec<Duration>) -> Lat {
    rtt.sort();
    Lat {
        p50: rtt[rtt.len() / 2] / 2,
        p99: rtt[rtt.len() * 99 / 100] / 2,
    }
}

fn psyne_ping(scheme: &str) -> Lat {
    let pid = std::process::id();
    let (a, b) = (
        format!("{scheme}://bench-ping-{pid}"),
        format!("{scheme}://bench-pong-{pid}"),
    );
    let ping = open(&a, 1 << 16);
    let pong = open(&b, 1 << 16);
    let (mut tx, mut rx) = (ping.producer().unwrap(), pong.consumer().unwrap());
    let total = PING_ROUNDS + PING_WARMUP;
    let peer = psyne_peer(scheme, vec![s("psyne-echo"), a, b, s(total)]);
    let msg = [7u8; 64];
    let mut rtt = Vec::with_capacity(PING_ROUNDS);
    for i in 0..total {
        let t0 = Instant::now();
        while tx.try_send(&msg, 1).is_err() {}
        loop {
            if let Ok(m) = rx.try_recv() {
                black_box(m.len());
                break;
            }
            std::hint::spin_loop();
        }
        if i >= PING_WARMUP {
            rtt.push(t0.elapsed());
        }
    }
    peer.join();
    lat_result(rtt)
}

fn uds_ping() -> Lat {
    let path = uds_path("ping");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let total = PING_ROUNDS + PING_WARMUP;
    let peer = Peer::child(&[s("uds-echo"), path.clone(), s(total)]);
    let mut sock = l.accept().unwrap().0;
    let mut buf = [7u8; 64];
    let mut rtt = Vec::with_capacity(PING_ROUNDS);
    for i in 0..total {
        let t0 = Instant::now();
        sock.write_all(&buf).unwrap();
        sock.read_exact(&mut buf).unwrap();
        if i >= PING_WARMUP {
            rtt.push(t0.elapsed());
        }
    }
    peer.join();
    let _ = std::fs::remove_file(&path);
    lat_result(rtt)
}

fn psyne_xfer(scheme: &str) -> Duration {
    let pid = std::process::id();
    let (a, b) = (
        format!("{scheme}://bench-xfer-{pid}"),
        format!("{scheme}://bench-ack-{pid}"),
    );
    let data = open(&a, 4 * XFER);
    let ack = open(&b, 4096);
    let (mut tx, mut rx) = (data.producer().unwrap(), ack.consumer().unwrap());
    let peer = psyne_peer(scheme, vec![s("psyne-xfer"), a, b, s(XFER_REPS + 2)]);
    let src: Vec<u8> = (0..XFER).map(|i| i as u8).collect();
    let mut times = Vec::new();
    for i in 0..XFER_REPS + 2 {
        let t0 = Instant::now();
        let mut m = tx.reserve_until(XFER, None, None).unwrap();
        m.copy_from_slice(&src);
        m.send(1).unwrap();
        black_box(&rx.recv_until(None, None).unwrap()[..]);
        // The first laps fault the segment's pages in.
        if i >= 2 {
            times.push(t0.elapsed());
        }
    }
    peer.join();
    times.sort();
    times[times.len() / 2]
}

#[cfg(feature = "iceoryx2")]
mod ice {
    use super::*;
    use iceoryx2::port::backpressure_strategy::BackpressureStrategy;
    use iceoryx2::port::update_connections::UpdateConnections;
    use iceoryx2::prelude::*;

    type Svc = iceoryx2::service::ipc::Service;

    fn node() -> Node<Svc> {
        NodeBuilder::new().create::<Svc>().unwrap()
    }

    fn service(
        node: &Node<Svc>,
        name: &str,
        buffer: usize,
    ) -> iceoryx2::service::port_factory::publish_subscribe::PortFactory<Svc, [u8], ()> {
        node.service_builder(&name.try_into().unwrap())
            .publish_subscribe::<[u8]>()
            .enable_safe_overflow(false)
            .subscriber_max_buffer_size(buffer)
            .subscriber_max_borrowed_samples(2)
            .history_size(0)
            .max_publishers(1)
            .max_subscribers(1)
            .open_or_create()
            .unwrap()
    }

    /// Subscriber buffer (samples); `PSYNE_BENCH_ICE_BUFFER` overrides it.
    fn buffer_for(size: usize) -> usize {
        if let Some(n) = std::env::var("PSYNE_BENCH_ICE_BUFFER")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            return n;
        }
        // The sizes that gave iceoryx2 its best rates on the project's VM
        // (larger buffers help it: its publisher sleeps when one is full).
        match size {
            0..=64 => 8192,
            65..=4096 => 4096,
            _ => 16,
        }
    }

    pub(super) fn producer(name: &str, size: usize, count: usize, ready: &mut dyn FnMut(&str)) {
        let node = node();
        let svc = service(&node, name, buffer_for(size));
        let publisher = svc
            .publisher_builder()
            .initial_max_slice_len(size)
            .max_loaned_samples(1)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .unwrap();
        let src = vec![0xabu8; size];
        publisher.update_connections().unwrap();
        ready("READY");
        for _ in 0..count {
            let m = publisher.loan_slice_uninit(size).unwrap();
            m.write_from_slice(&src).send().unwrap();
        }
        // Samples live in the publisher's data segment: stay until the
        // subscriber has taken them all (the parent closes our stdin).
        let _ = std::io::stdin().read_line(&mut String::new());
    }

    pub(super) fn echo(ping: &str, pong: &str, count: usize, ready: &mut dyn FnMut(&str)) {
        let node = node();
        let sub = service(&node, ping, 256)
            .subscriber_builder()
            .create()
            .unwrap();
        let publisher = service(&node, pong, 256)
            .publisher_builder()
            .initial_max_slice_len(64)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .unwrap();
        ready("READY");
        let mut connected = false;
        for _ in 0..count {
            let m = loop {
                if let Some(m) = sub.receive().unwrap() {
                    break m;
                }
                std::hint::spin_loop();
            };
            if !connected {
                publisher.update_connections().unwrap();
                connected = true;
            }
            let out = publisher.loan_slice_uninit(m.payload().len()).unwrap();
            out.write_from_slice(m.payload()).send().unwrap();
        }
        // Keep the last answer's sample alive until the parent has it.
        let _ = std::io::stdin().read_line(&mut String::new());
    }

    pub(super) fn tp(size: usize) -> Tp {
        let name = format!("psyne-bench/tp-{}-{size}", std::process::id());
        let node = node();
        let svc = service(&node, &name, buffer_for(size));
        let sub = svc
            .subscriber_builder()
            .buffer_size(buffer_for(size))
            .create()
            .unwrap();
        let count = count_for(size);
        let peer = Peer::child(&[s("ice-tp"), name, s(size), s(count)]);
        let mut t0 = None;
        let deadline = Instant::now() + Duration::from_secs(120);
        for _ in 0..count {
            let m = loop {
                if let Some(m) = sub.receive().unwrap() {
                    break m;
                }
                assert!(Instant::now() < deadline, "iceoryx2: messages lost");
                std::hint::spin_loop();
            };
            black_box((m.payload().first(), m.payload().last()));
            t0.get_or_insert_with(Instant::now);
        }
        let d = t0.unwrap().elapsed();
        peer.join();
        tp_result(count - 1, size, d)
    }

    pub(super) fn ping() -> Lat {
        let pid = std::process::id();
        let (a, b) = (
            format!("psyne-bench/ping-{pid}"),
            format!("psyne-bench/pong-{pid}"),
        );
        let node = node();
        let publisher = service(&node, &a, 256)
            .publisher_builder()
            .initial_max_slice_len(64)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .unwrap();
        let sub = service(&node, &b, 256)
            .subscriber_builder()
            .create()
            .unwrap();
        let total = PING_ROUNDS + PING_WARMUP;
        let peer = Peer::child(&[s("ice-echo"), a, b, s(total)]);
        publisher.update_connections().unwrap();
        let msg = [7u8; 64];
        let mut rtt = Vec::with_capacity(PING_ROUNDS);
        for i in 0..total {
            let t0 = Instant::now();
            let m = publisher.loan_slice_uninit(64).unwrap();
            m.write_from_slice(&msg).send().unwrap();
            loop {
                if let Some(m) = sub.receive().unwrap() {
                    black_box(m.payload().len());
                    break;
                }
                std::hint::spin_loop();
            }
            if i >= PING_WARMUP {
                rtt.push(t0.elapsed());
            }
        }
        peer.join();
        lat_result(rtt)
    }
}

// ---------------------------------------------------------------------------

/// Runs one case, noting on stderr how long it took.
fn progress<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let v = f();
    eprintln!("  ({name}: {:.1} s)", t0.elapsed().as_secs_f64());
    v
}

fn fmt_rate(t: &Tp) -> String {
    format!(
        "{:>8.2} M msg/s {:>8.2} GB/s",
        t.msgs_per_s / 1e6,
        t.bytes_per_s / 1e9
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        let mut out = std::io::stdout();
        child(&args[1..], &mut |l| {
            writeln!(out, "{l}").unwrap();
            out.flush().unwrap();
        });
        return;
    }
    let only = args.first().cloned().unwrap_or_default();
    let want = |k: &str| only.is_empty() || only == k;
    println!("CPU: {}", cpu_model());

    if want("tp") {
        println!(
            "SPSC throughput (producer copies the payload in, consumer reads first/last byte)"
        );
        println!("{:<8} {:<28} {:>34}", "size", "transport", "rate");
        let sizes: Vec<usize> = match args.get(1) {
            Some(x) => vec![x.parse().expect("size in bytes")],
            None => vec![64, 4096, 1 << 20],
        };
        for size in sizes {
            let mut rows: Vec<(&str, Tp)> = vec![
                (
                    "ipc:// (2 processes)",
                    progress("ipc", || psyne_tp("ipc", size)),
                ),
                (
                    "memory:// (2 threads)",
                    progress("memory", || psyne_tp("memory", size)),
                ),
                (
                    "unix socket (2 processes)",
                    progress("unix", || uds_tp(size)),
                ),
            ];
            #[cfg(feature = "iceoryx2")]
            rows.push((
                "iceoryx2 pub-sub (2 proc.)",
                progress("iceoryx2", || ice::tp(size)),
            ));
            let ipc = rows[0].1.msgs_per_s;
            for (name, t) in &rows {
                println!(
                    "{:<8} {:<28} {}   ipc/this {:>6.2}×",
                    size,
                    name,
                    fmt_rate(t),
                    ipc / t.msgs_per_s
                );
            }
        }
        println!();
    }
    if want("ping") {
        println!("ping-pong, 64 B, one-way latency = round trip / 2 ({PING_ROUNDS} rounds)");
        let mut rows: Vec<(&str, Lat)> = vec![
            ("ipc:// (2 processes)", psyne_ping("ipc")),
            ("memory:// (2 threads)", psyne_ping("memory")),
            ("unix socket (2 processes)", uds_ping()),
        ];
        #[cfg(feature = "iceoryx2")]
        rows.push(("iceoryx2 pub-sub (2 proc.)", ice::ping()));
        let ipc = rows[0].1.p50.as_nanos() as f64;
        for (name, l) in &rows {
            println!(
                "{:<28} p50 {:>8.0} ns  p99 {:>8.0} ns   ipc/this {:>5.2}×",
                name,
                l.p50.as_nanos(),
                l.p99.as_nanos(),
                ipc / l.p50.as_nanos() as f64
            );
        }
        println!();
    }
    if want("xfer") {
        println!("10 MiB transfer: write into the reservation → consumer reads every byte → 8-byte answer (median of {XFER_REPS})");
        for (name, scheme) in [
            ("ipc:// (2 processes)", "ipc"),
            ("memory:// (2 threads)", "memory"),
        ] {
            let d = psyne_xfer(scheme);
            println!("{:<28} {:>8.2} ms", name, d.as_secs_f64() * 1e3);
        }
    }
}

#[path = "../../cpu_model.rs"]
mod cpu;
use cpu::cpu_model;
