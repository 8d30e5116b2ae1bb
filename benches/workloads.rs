//! The workloads the benchmarks time: psyne's `memory://` ring and its
//! peers (rtrb, crossbeam-channel, crossbeam's `ArrayQueue`) doing the same
//! job, each as a function of a message count that returns the elapsed
//! time. Shared by the criterion benches (`throughput`, `latency`) and the
//! same-window comparison (`paired`).
#![allow(dead_code)] // each user takes some

use psyne::{Channel, ChannelType, Mode};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static NAME: AtomicU64 = AtomicU64::new(0);
pub const RING: usize = 1 << 20;

pub fn channel(mode: Mode) -> Channel {
    let n = NAME.fetch_add(1, Ordering::Relaxed);
    Channel::open(
        &format!("memory://bench-{n}"),
        RING,
        mode,
        ChannelType::Multi,
    )
    .unwrap()
}

/// Polls `attempt` until it succeeds, with a spin-wait hint between tries.
#[inline(always)]
fn retry(mut attempt: impl FnMut() -> bool) {
    while !attempt() {
        std::hint::spin_loop();
    }
}

/// `iters` messages from this thread (`send_one` each) to a consumer
/// thread (`receive_one` each); the time from the first send to the last
/// receive.
fn stream(
    iters: u64,
    mut receive_one: impl FnMut() + Send + 'static,
    mut send_one: impl FnMut(),
) -> Duration {
    let consumer = std::thread::spawn(move || {
        for _ in 0..iters {
            receive_one();
        }
    });
    let start = Instant::now();
    for _ in 0..iters {
        send_one();
    }
    consumer.join().unwrap();
    start.elapsed()
}

/// psyne, copying path, exclusive handles.
pub fn psyne_copy<const N: usize>(iters: u64) -> Duration {
    let ch = channel(Mode::Spsc);
    let (mut tx, mut rx) = (ch.producer().unwrap(), ch.consumer().unwrap());
    let (msg, mut buf) = ([7u8; N], [0u8; N]);
    stream(
        iters,
        move || {
            retry(|| match rx.try_recv_into(&mut buf) {
                Ok((n, _)) => {
                    black_box(&buf[..n]);
                    true
                }
                Err(_) => false,
            })
        },
        || retry(|| tx.try_send(&msg, 1).is_ok()),
    )
}

/// psyne, zero-copy path: reserve + write in place; receive a view + read it.
pub fn psyne_reserve<const N: usize>(iters: u64) -> Duration {
    let ch = channel(Mode::Spsc);
    let (mut tx, mut rx) = (ch.producer().unwrap(), ch.consumer().unwrap());
    let (src, mut sink) = ([7u8; N], [0u8; N]);
    stream(
        iters,
        move || {
            retry(|| match rx.try_recv() {
                Ok(m) => {
                    sink.copy_from_slice(&m);
                    black_box(&sink);
                    true
                }
                Err(_) => false,
            })
        },
        || {
            retry(|| match tx.try_reserve(N) {
                Ok(mut slot) => {
                    slot.copy_from_slice(&src);
                    slot.send(1).unwrap();
                    true
                }
                Err(_) => false,
            })
        },
    )
}

/// As `psyne_reserve`, written the way a retry loop usually is: the guard is
/// moved out of the loop before use. A guard larger than two words was copied
/// through memory here, with loads wider than the stores that built it, and
/// each such load waited for the payload stores into the ring (a cross-core
/// round trip per message). Kept to catch that coming back.
pub fn psyne_reserve_moved<const N: usize>(iters: u64) -> Duration {
    let ch = channel(Mode::Spsc);
    let (mut tx, mut rx) = (ch.producer().unwrap(), ch.consumer().unwrap());
    let src = [7u8; N];
    stream(
        iters,
        move || {
            let m = loop {
                if let Ok(m) = rx.try_recv() {
                    break m;
                }
                std::hint::spin_loop();
            };
            black_box((m.first(), m.last()));
        },
        || {
            let mut slot = loop {
                if let Ok(slot) = tx.try_reserve(N) {
                    break slot;
                }
                std::hint::spin_loop();
            };
            slot.copy_from_slice(&src);
            slot.send(1).unwrap();
        },
    )
}

pub fn rtrb_items<const N: usize>(iters: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<[u8; N]>::new(RING / N);
    let msg = [7u8; N];
    stream(
        iters,
        move || retry(|| rx.pop().map(black_box).is_ok()),
        || retry(|| tx.push(msg).is_ok()),
    )
}

/// rtrb's chunk API over bytes: the fair peer of psyne's reservation path.
pub fn rtrb_chunks<const N: usize>(iters: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u8>::new(RING);
    let (src, mut sink) = ([7u8; N], [0u8; N]);
    stream(
        iters,
        move || {
            retry(|| match rx.read_chunk(N) {
                Ok(chunk) => {
                    let (a, b) = chunk.as_slices();
                    sink[..a.len()].copy_from_slice(a);
                    sink[a.len()..].copy_from_slice(b);
                    chunk.commit_all();
                    black_box(&sink);
                    true
                }
                Err(_) => false,
            })
        },
        || {
            retry(|| match tx.write_chunk(N) {
                Ok(mut chunk) => {
                    let (a, b) = chunk.as_mut_slices();
                    let k = a.len();
                    a.copy_from_slice(&src[..k]);
                    b.copy_from_slice(&src[k..]);
                    chunk.commit_all();
                    true
                }
                Err(_) => false,
            })
        },
    )
}

pub fn crossbeam_bounded<const N: usize>(iters: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<[u8; N]>(RING / N);
    let msg = [7u8; N];
    stream(
        iters,
        move || {
            black_box(rx.recv().unwrap());
        },
        || tx.send(msg).unwrap(),
    )
}

/// Producers × consumers for the MPMC workloads.
const P: u64 = 2;

/// `iters` messages through `P` producer threads (each running a closure
/// from `sender` once per message) and `P` consumer threads (`receiver`);
/// the time until all are done.
fn mpmc<S, R>(
    iters: u64,
    mut sender: impl FnMut() -> S,
    mut receiver: impl FnMut() -> R,
) -> Duration
where
    S: FnMut() + Send + 'static,
    R: FnMut() + Send + 'static,
{
    let per = iters.div_ceil(P);
    let start = Instant::now();
    let threads: Vec<_> = (0..P)
        .flat_map(|_| {
            let (mut send_one, mut receive_one) = (sender(), receiver());
            [
                std::thread::spawn(move || (0..per).for_each(|_| send_one())),
                std::thread::spawn(move || (0..per).for_each(|_| receive_one())),
            ]
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    start.elapsed()
}

/// psyne MPMC, 2 producers × 2 consumers through `Channel` handles.
pub fn mpmc_psyne(iters: u64) -> Duration {
    let ch = channel(Mode::Mpmc);
    mpmc(
        iters,
        || {
            let tx = ch.clone();
            move || retry(|| tx.try_send(&[7u8; 64], 1).is_ok())
        },
        || {
            let rx = ch.clone();
            let mut buf = [0u8; 64];
            move || {
                retry(|| rx.try_recv_into(&mut buf).is_ok());
                black_box(&buf);
            }
        },
    )
}

/// crossbeam's `ArrayQueue`, 2 producers × 2 consumers.
pub fn mpmc_array_queue(iters: u64) -> Duration {
    let q = Arc::new(crossbeam_queue::ArrayQueue::<[u8; 64]>::new(RING / 64));
    mpmc(
        iters,
        || {
            let tx = q.clone();
            move || retry(|| tx.push([7u8; 64]).is_ok())
        },
        || {
            let rx = q.clone();
            move || retry(|| rx.pop().map(black_box).is_some())
        },
    )
}

/// Runs `round_trip` `iters` times against an echo thread made by
/// `start_echo` (which it stops through the flag), returning the time of
/// the round trips alone.
fn with_echo(
    iters: u64,
    start_echo: impl FnOnce(Arc<AtomicBool>) -> std::thread::JoinHandle<()>,
    mut round_trip: impl FnMut(),
) -> Duration {
    let done = Arc::new(AtomicBool::new(false));
    let echo = start_echo(done.clone());
    let start = Instant::now();
    for _ in 0..iters {
        round_trip();
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    echo.join().unwrap();
    elapsed
}

/// psyne ping-pong: 64 bytes to an echo thread and back, busy-polling on
/// both sides (exclusive handles).
pub fn psyne_pingpong(iters: u64) -> Duration {
    let n = NAME.fetch_add(1, Ordering::Relaxed);
    let open = |end: &str| {
        Channel::open(
            &format!("memory://lat-{end}-{n}"),
            1 << 16,
            Mode::Spsc,
            ChannelType::Multi,
        )
        .unwrap()
    };
    let (ping, pong) = (open("ping"), open("pong"));
    let (mut ping_rx, mut pong_tx) = (ping.consumer().unwrap(), pong.producer().unwrap());
    let (mut ping_tx, mut pong_rx) = (ping.producer().unwrap(), pong.consumer().unwrap());
    let msg = [1u8; 64];
    let mut buf = [0u8; 64];
    with_echo(
        iters,
        move |done| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while !done.load(Ordering::Relaxed) {
                    if let Ok((n, t)) = ping_rx.try_recv_into(&mut buf) {
                        while pong_tx.try_send(&buf[..n], t).is_err() {}
                    }
                }
            })
        },
        || {
            ping_tx.try_send(&msg, 1).unwrap();
            loop {
                if let Ok(r) = pong_rx.try_recv_into(&mut buf) {
                    black_box(r);
                    break;
                }
            }
        },
    )
}

/// rtrb ping-pong, as [`psyne_pingpong`].
pub fn rtrb_pingpong(iters: u64) -> Duration {
    let (mut ping_tx, mut ping_rx) = rtrb::RingBuffer::<[u8; 64]>::new(1024);
    let (mut pong_tx, mut pong_rx) = rtrb::RingBuffer::<[u8; 64]>::new(1024);
    with_echo(
        iters,
        move |done| {
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Ok(v) = ping_rx.pop() {
                        while pong_tx.push(v).is_err() {}
                    }
                }
            })
        },
        || {
            ping_tx.push([1u8; 64]).unwrap();
            loop {
                if let Ok(v) = pong_rx.pop() {
                    black_box(v);
                    break;
                }
            }
        },
    )
}

/// crossbeam-channel ping-pong: blocking `recv` on both sides (it parks
/// after a short spin).
pub fn crossbeam_pingpong(iters: u64) -> Duration {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<[u8; 64]>(1024);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<[u8; 64]>(1024);
    let echo = std::thread::spawn(move || {
        while let Ok(v) = ping_rx.recv() {
            pong_tx.send(v).unwrap();
        }
    });
    let start = Instant::now();
    for _ in 0..iters {
        ping_tx.send([1u8; 64]).unwrap();
        black_box(pong_rx.recv().unwrap());
    }
    let elapsed = start.elapsed();
    drop(ping_tx);
    echo.join().unwrap();
    elapsed
}

/// `iters` round trips of one cache line between two threads: each is two
/// transfers of the line (the unit the per-message bounds are stated in).
pub fn line_round_trips(iters: u64) -> Duration {
    #[repr(align(128))]
    struct Line(AtomicU64);
    let line = Arc::new(Line(AtomicU64::new(0)));
    let echo = line.clone();
    let t = std::thread::spawn(move || {
        for i in 0..iters {
            while echo.0.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            echo.0.store(2 * i + 2, Ordering::Release);
        }
    });
    let start = Instant::now();
    for i in 0..iters {
        line.0.store(2 * i + 1, Ordering::Release);
        while line.0.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let elapsed = start.elapsed();
    t.join().unwrap();
    elapsed
}
