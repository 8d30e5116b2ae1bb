//! Round-trip latency of 64-byte ping-pong between two threads with blocking
//! calls on both sides, for several polling budgets (`spin`) and gaps between
//! pings, beside the same ping-pong busy-polling with `try_recv_into`.
//!
//!   cargo run --release --example blocking_latency
//!
//! A gap longer than the budget puts the echo thread to sleep between pings,
//! and each ping then pays a futex wake-up.

use psyne::{Channel, Mode};
use std::time::{Duration, Instant};

const ROUNDS: usize = 20_000;

/// Round trips (ns) of `ROUNDS` pings, `gap` apart; `spin` = None busy-polls.
fn ping_pong(spin: Option<Duration>, gap: Duration) -> Vec<u64> {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let open = |side: &str| {
        let b = Channel::builder(format!("memory://blocking-latency-{side}-{n}"))
            .buffer_size(1 << 16)
            .mode(Mode::Spsc);
        match spin {
            Some(s) => b.spin(s),
            None => b,
        }
        .build()
        .expect("open")
    };
    let (ping, pong) = (open("ping"), open("pong"));
    let (mut rx, mut tx) = (ping.consumer().unwrap(), pong.producer().unwrap());
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..ROUNDS {
            let (n, t) = match spin {
                Some(_) => rx.recv_into(&mut buf).unwrap(),
                None => loop {
                    if let Ok(r) = rx.try_recv_into(&mut buf) {
                        break r;
                    }
                    std::hint::spin_loop();
                },
            };
            tx.send(&buf[..n], t).unwrap();
        }
    });
    let (mut tx, mut rx) = (ping.producer().unwrap(), pong.consumer().unwrap());
    let (msg, mut buf) = ([1u8; 64], [0u8; 64]);
    let mut rtt = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let idle = Instant::now();
        while idle.elapsed() < gap {
            std::hint::spin_loop();
        }
        let t = Instant::now();
        tx.send(&msg, 1).unwrap();
        match spin {
            Some(_) => {
                rx.recv_into(&mut buf).unwrap();
            }
            None => {
                while rx.try_recv_into(&mut buf).is_err() {
                    std::hint::spin_loop();
                }
            }
        }
        rtt.push(t.elapsed().as_nanos() as u64);
    }
    echo.join().unwrap();
    rtt.sort_unstable();
    rtt
}

fn main() {
    println!("64 B ping-pong between two threads, round trip p50 / p99 ({ROUNDS} rounds)");
    println!(
        "{:<22} {:>18} {:>18} {:>18}",
        "receive", "gap 0", "gap 2 µs", "gap 20 µs"
    );
    let rows: [(&str, Option<Duration>); 4] = [
        ("try_recv (polling)", None),
        ("blocking, spin=0", Some(Duration::ZERO)),
        ("blocking, default", Some(Duration::from_micros(20))),
        ("blocking, spin=100", Some(Duration::from_micros(100))),
    ];
    for (name, spin) in rows {
        print!("{name:<22}");
        for gap_us in [0, 2, 20] {
            let r = ping_pong(spin, Duration::from_micros(gap_us));
            let us = |q: usize| r[r.len() * q / 100] as f64 / 1e3;
            print!(" {:>8.1} / {:>5.1} µs", us(50), us(99));
        }
        println!();
    }
}
