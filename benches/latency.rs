//! Ping-pong latency: a message goes to an echo thread and back; criterion
//! reports the round trip (one-way = half). psyne's memory:// beside rtrb and
//! crossbeam-channel, busy-polling on both sides as latency-critical users do.
//!
//!   cargo bench --manifest-path benches/Cargo.toml --bench latency

#[path = "c_api.rs"]
mod c_api;

use criterion::{criterion_group, criterion_main, Criterion};
use psyne::{Channel, ChannelType, Mode};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn psyne_pingpong(c: &mut Criterion) {
    let ping = Channel::open("memory://lat-ping", 1 << 16, Mode::Spsc, ChannelType::Multi).unwrap();
    let pong = Channel::open("memory://lat-pong", 1 << 16, Mode::Spsc, ChannelType::Multi).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let (mut ping_rx, mut pong_tx) = (ping.consumer().unwrap(), pong.producer().unwrap());
    let d = done.clone();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while !d.load(Ordering::Relaxed) {
            if let Ok((n, t)) = ping_rx.try_recv_into(&mut buf) {
                while pong_tx.try_send(&buf[..n], t).is_err() {}
            }
        }
    });
    let (mut ping_tx, mut pong_rx) = (ping.producer().unwrap(), pong.consumer().unwrap());
    let msg = [1u8; 64];
    let mut buf = [0u8; 64];
    c.bench_function("pingpong_64B/psyne", |b| {
        b.iter(|| {
            ping_tx.try_send(&msg, 1).unwrap();
            loop {
                if let Ok(r) = pong_rx.try_recv_into(&mut buf) {
                    black_box(r);
                    break;
                }
            }
        })
    });
    done.store(true, Ordering::Relaxed);
    echo.join().unwrap();
}

fn rtrb_pingpong(c: &mut Criterion) {
    let (mut ping_tx, mut ping_rx) = rtrb::RingBuffer::<[u8; 64]>::new(1024);
    let (mut pong_tx, mut pong_rx) = rtrb::RingBuffer::<[u8; 64]>::new(1024);
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let echo = std::thread::spawn(move || {
        while !d.load(Ordering::Relaxed) {
            if let Ok(v) = ping_rx.pop() {
                while pong_tx.push(v).is_err() {}
            }
        }
    });
    c.bench_function("pingpong_64B/rtrb", |b| {
        b.iter(|| {
            ping_tx.push([1u8; 64]).unwrap();
            loop {
                if let Ok(v) = pong_rx.pop() {
                    black_box(v);
                    break;
                }
            }
        })
    });
    done.store(true, Ordering::Relaxed);
    echo.join().unwrap();
}

fn crossbeam_pingpong(c: &mut Criterion) {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<[u8; 64]>(1024);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<[u8; 64]>(1024);
    let echo = std::thread::spawn(move || {
        while let Ok(v) = ping_rx.recv() {
            pong_tx.send(v).unwrap();
        }
    });
    c.bench_function("pingpong_64B/crossbeam_channel", |b| {
        b.iter(|| {
            ping_tx.send([1u8; 64]).unwrap();
            black_box(pong_rx.recv().unwrap());
        })
    });
    drop(ping_tx);
    echo.join().unwrap();
}

/// The same round trip through the C API (c/bench_c.c), both ends in C.
fn c_pingpong(c: &mut Criterion) {
    for (name, path) in [
        ("pingpong_64B/c_side_copy", c_api::Path::SideCopy),
        ("pingpong_64B/c_side_reserve", c_api::Path::SideReserve),
        ("pingpong_64B/c_side_fused", c_api::Path::SideFused),
        ("pingpong_64B/c_channel_copy", c_api::Path::ChannelCopy),
        (
            "pingpong_64B/c_channel_reserve",
            c_api::Path::ChannelReserve,
        ),
    ] {
        let mut echo = c_api::Echo::start(path);
        c.bench_function(name, |b| b.iter_custom(|n| echo.round_trips(n)));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = psyne_pingpong, rtrb_pingpong, crossbeam_pingpong, c_pingpong
}
criterion_main!(benches);
