//! The psyne demo: moves messages through every mode of every transport this
//! build has, and prints a table of throughput and latency.
//!
//!   cargo run --release --example demo            # default: 2,000,000 messages per row
//!   cargo run --release --example demo -- 200000  # fewer
//!
//! Throughput rows: producers and consumers in threads, 64-byte messages
//! through the copying API, blocking calls (threads sleep when idle). On
//! tcp://, unix:// and ws:// the producers send on a connector and the consumers
//! receive on the listener it connected to (loopback), in one process.
//! Latency rows: one message bounced between two threads (over two SPSC
//! channels on memory/ipc; back and forth over one connection on sockets);
//! one-way = round trip / 2, percentiles over every round trip.

use psyne::{Channel, ChannelType, Error, Mode};
use std::time::{Duration, Instant};

const MSG: usize = 64;

/// Two connected ends: what is sent on the first arrives on the second (on
/// memory and ipc, two handles on one ring).
fn pair(scheme: &str, name: &str, mode: Mode) -> Result<(Channel, Channel), Error> {
    let open = |uri: &str| Channel::open(uri, 1 << 20, mode, ChannelType::Multi);
    match scheme {
        "memory" | "ipc" => {
            let a = open(&format!("{scheme}://demo-{name}"))?;
            Ok((a.clone(), a))
        }
        _ => {
            let listen = match scheme {
                "unix" => format!(
                    "unix:///tmp/psyne-demo-{}-{name}.sock?role=listen",
                    std::process::id()
                ),
                "ws" => "ws://127.0.0.1:0/demo?role=listen".to_string(),
                _ => "tcp://127.0.0.1:0?role=listen".to_string(),
            };
            let rx = open(&listen)?;
            let addr = rx.local_addr().unwrap_or_default();
            let path = if scheme == "ws" { "/demo" } else { "" };
            let tx = open(&format!("{scheme}://{addr}{path}"))?;
            let t = Instant::now();
            while tx.metrics().peers == 0 {
                if t.elapsed() > Duration::from_secs(10) {
                    return Err(Error::Timeout);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok((tx, rx))
        }
    }
}

fn throughput(
    scheme: &str,
    mode: Mode,
    producers: usize,
    consumers: usize,
    total: usize,
) -> Result<(f64, f64), Error> {
    let (tx_end, rx_end) = pair(scheme, &format!("{mode:?}"), mode)?;
    let per_producer = total / producers;
    let total = per_producer * producers;
    let start = Instant::now();
    let mut threads = Vec::new();
    for _ in 0..producers {
        let tx = tx_end.clone();
        threads.push(std::thread::spawn(move || {
            let msg = [0x5au8; MSG];
            for i in 0..per_producer {
                tx.send(&msg, i as u32).unwrap();
            }
        }));
    }
    let per_consumer = total / consumers;
    for c in 0..consumers {
        let rx = rx_end.clone();
        // The last consumer takes the remainder.
        let n = if c == consumers - 1 {
            total - per_consumer * (consumers - 1)
        } else {
            per_consumer
        };
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; MSG];
            for _ in 0..n {
                rx.recv_into(&mut buf).unwrap();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((total as f64 / secs, (total * MSG) as f64 / secs))
}

fn latency(scheme: &str, rounds: usize) -> Result<(Duration, Duration, Duration), Error> {
    if !matches!(scheme, "memory" | "ipc") {
        return socket_latency(scheme, rounds);
    }
    let ping = Channel::open(
        &format!("{scheme}://demo-ping"),
        1 << 16,
        Mode::Spsc,
        ChannelType::Multi,
    )?;
    let pong = Channel::open(
        &format!("{scheme}://demo-pong"),
        1 << 16,
        Mode::Spsc,
        ChannelType::Multi,
    )?;
    let (mut ping_rx, mut pong_tx) = (ping.consumer()?, pong.producer()?);
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; MSG];
        for _ in 0..rounds {
            let (n, t) = ping_rx.recv_into(&mut buf).unwrap();
            pong_tx.send(&buf[..n], t).unwrap();
        }
    });
    let (mut ping_tx, mut pong_rx) = (ping.producer()?, pong.consumer()?);
    let mut samples = Vec::with_capacity(rounds);
    let mut buf = [0u8; MSG];
    for i in 0..rounds {
        let t0 = Instant::now();
        ping_tx.send(&[1u8; MSG], i as u32)?;
        pong_rx.recv_into(&mut buf)?;
        samples.push(t0.elapsed() / 2);
    }
    echo.join().unwrap();
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    Ok((pct(0.50), pct(0.99), pct(0.999)))
}

/// Ping-pong over one connection: the connector sends, the listener
/// echoes on the same channel.
fn socket_latency(scheme: &str, rounds: usize) -> Result<(Duration, Duration, Duration), Error> {
    let (client, server) = pair(scheme, "latency", Mode::Spsc)?;
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; MSG];
        for _ in 0..rounds {
            let (n, t) = server.recv_into(&mut buf).unwrap();
            server.send(&buf[..n], t).unwrap();
        }
    });
    let mut samples = Vec::with_capacity(rounds);
    let mut buf = [0u8; MSG];
    for i in 0..rounds {
        let t0 = Instant::now();
        client.send(&[1u8; MSG], i as u32)?;
        client.recv_into(&mut buf)?;
        samples.push(t0.elapsed() / 2);
    }
    echo.join().unwrap();
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    Ok((pct(0.50), pct(0.99), pct(0.999)))
}

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    println!(
        "psyne {} demo — {total} messages of {MSG} bytes per row\n",
        psyne::VERSION
    );
    println!(
        "{:<10} {:<6} {:>9} {:>14} {:>10}",
        "transport", "mode", "threads", "messages/s", "MB/s"
    );
    println!("{}", "-".repeat(53));
    let rows = [
        (Mode::Spsc, 1, 1),
        (Mode::Spmc, 1, 2),
        (Mode::Mpsc, 2, 1),
        (Mode::Mpmc, 2, 2),
    ];
    for scheme in ["memory", "ipc", "tcp", "unix", "ws"] {
        for (mode, p, c) in rows {
            match throughput(scheme, mode, p, c, total) {
                Ok((mps, bps)) => {
                    println!(
                        "{scheme:<10} {:<6} {:>9} {:>14.0} {:>10.0}",
                        format!("{mode:?}"),
                        format!("{p}→{c}"),
                        mps,
                        bps / 1e6
                    )
                }
                Err(Error::Unsupported(_)) => {
                    println!(
                        "{scheme:<10} {:<6} {:>9} {:>25}",
                        format!("{mode:?}"),
                        "",
                        "not built yet"
                    );
                    break;
                }
                Err(e) => println!("{scheme:<10} {:<6} error: {e}", format!("{mode:?}")),
            }
        }
    }
    println!(
        "\n{:<10} {:>12} {:>12} {:>12}",
        "latency", "p50", "p99", "p99.9"
    );
    println!("{}", "-".repeat(49));
    for scheme in ["memory", "ipc", "tcp", "unix", "ws"] {
        match latency(scheme, (total / 20).clamp(1000, 100_000)) {
            Ok((p50, p99, p999)) => {
                println!("{scheme:<10} {:>12?} {:>12?} {:>12?}", p50, p99, p999)
            }
            Err(Error::Unsupported(_)) => println!("{scheme:<10} {:>38}", "not built yet"),
            Err(e) => println!("{scheme:<10} error: {e}"),
        }
    }
    println!("\n(one-way latency = round trip / 2, blocking receive: threads sleep when idle)");
}
