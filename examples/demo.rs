//! The psyne demo: moves messages through every mode of every transport this
//! build has, and prints a table of throughput and latency.
//!
//!   cargo run --release --example demo            # default: 2,000,000 messages per row
//!   cargo run --release --example demo -- 200000  # fewer
//!
//! Throughput rows: producers and consumers in threads, 64-byte messages
//! through the copying API, blocking calls (threads sleep when idle).
//! Latency rows: one message bounced between two threads over two SPSC
//! channels; one-way = round trip / 2, percentiles over every round trip.

use psyne::{Channel, ChannelType, Error, Mode};
use std::time::{Duration, Instant};

const MSG: usize = 64;

fn throughput(
    uri: &str,
    mode: Mode,
    producers: usize,
    consumers: usize,
    total: usize,
) -> Result<(f64, f64), Error> {
    let ch = Channel::open(uri, 1 << 20, mode, ChannelType::Multi)?;
    let per_producer = total / producers;
    let total = per_producer * producers;
    let start = Instant::now();
    let mut threads = Vec::new();
    for _ in 0..producers {
        let tx = ch.clone();
        threads.push(std::thread::spawn(move || {
            let msg = [0x5au8; MSG];
            for i in 0..per_producer {
                tx.send(&msg, i as u32).unwrap();
            }
        }));
    }
    let per_consumer = total / consumers;
    for c in 0..consumers {
        let rx = ch.clone();
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
            let uri = match scheme {
                "memory" | "ipc" => format!("{scheme}://demo-{mode:?}"),
                "unix" => "unix:///tmp/psyne-demo.sock".to_string(),
                "ws" => "ws://127.0.0.1:47001/demo".to_string(),
                _ => "tcp://127.0.0.1:47000".to_string(),
            };
            match throughput(&uri, mode, p, c, total) {
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
    for scheme in ["memory", "ipc"] {
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
