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

/// psyne, copying path, exclusive handles.
pub fn psyne_copy<const N: usize>(iters: u64) -> Duration {
    let ch = channel(Mode::Spsc);
    let mut tx = ch.producer().unwrap();
    let mut rx = ch.consumer().unwrap();
    let consumer = std::thread::spawn(move || {
        let mut buf = [0u8; N];
        for _ in 0..iters {
            loop {
                if let Ok((n, _)) = rx.try_recv_into(&mut buf) {
                    black_box(&buf[..n]);
                    break;
                }
                std::hint::spin_loop();
            }
        }
    });
    let msg = [7u8; N];
    let start = Instant::now();
    for _ in 0..iters {
        while tx.try_send(&msg, 1).is_err() {
            std::hint::spin_loop();
        }
    }
    consumer.join().unwrap();
    start.elapsed()
}

/// psyne, zero-copy path: reserve + write in place; receive a view + read it.
pub fn psyne_reserve<const N: usize>(iters: u64) -> Duration {
    let ch = channel(Mode::Spsc);
    let mut tx = ch.producer().unwrap();
    let mut rx = ch.consumer().unwrap();
    let consumer = std::thread::spawn(move || {
        let mut sink = [0u8; N];
        for _ in 0..iters {
            loop {
                if let Ok(m) = rx.try_recv() {
                    sink.copy_from_slice(&m);
                    black_box(&sink);
                    break;
                }
                std::hint::spin_loop();
            }
        }
    });
    let src = [7u8; N];
    let start = Instant::now();
    for _ in 0..iters {
        loop {
            if let Ok(mut slot) = tx.try_reserve(N) {
                slot.copy_from_slice(&src);
                slot.send(1).unwrap();
                break;
            }
            std::hint::spin_loop();
        }
    }
    consumer.join().unwrap();
    start.elapsed()
}

/// As `psyne_reserve`, written the way a retry loop usually is: the guard is
/// moved out of the loop before use. A guard larger than two words was copied
/// through memory here, with loads wider than the stores that built it, and
/// each such load waited for the payload stores into the ring (a cross-core
/// round trip per message). Kept to catch that coming back.
pub fn psyne_reserve_moved<const N: usize>(iters: u64) -> Duration {
    let ch = channel(Mode::Spsc);
    let mut tx = ch.producer().unwrap();
    let mut rx = ch.consumer().unwrap();
    let consumer = std::thread::spawn(move || {
        for _ in 0..iters {
            let m = loop {
                if let Ok(m) = rx.try_recv() {
                    break m;
                }
                std::hint::spin_loop();
            };
            black_box((m.first(), m.last()));
        }
    });
    let src = [7u8; N];
    let start = Instant::now();
    for _ in 0..iters {
        let mut slot = loop {
            if let Ok(slot) = tx.try_reserve(N) {
                break slot;
            }
            std::hint::spin_loop();
        };
        slot.copy_from_slice(&src);
        slot.send(1).unwrap();
    }
    consumer.join().unwrap();
    start.elapsed()
}

pub fn rtrb_items<const N: usize>(iters: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<[u8; N]>::new(RING / N);
    let consumer = std::thread::spawn(move || {
        for _ in 0..iters {
            loop {
                if let Ok(v) = rx.pop() {
                    black_box(&v);
                    break;
                }
                std::hint::spin_loop();
            }
        }
    });
    let msg = [7u8; N];
    let start = Instant::now();
    for _ in 0..iters {
        while tx.push(msg).is_err() {
            std::hint::spin_loop();
        }
    }
    consumer.join().unwrap();
    start.elapsed()
}

/// rtrb's chunk API over bytes: the fair peer of psyne's reservation path.
pub fn rtrb_chunks<const N: usize>(iters: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u8>::new(RING);
    let consumer = std::thread::spawn(move || {
        let mut sink = [0u8; N];
        for _ in 0..iters {
            loop {
                if let Ok(chunk) = rx.read_chunk(N) {
                    let (a, b) = chunk.as_slices();
                    sink[..a.len()].copy_from_slice(a);
                    sink[a.len()..].copy_from_slice(b);
                    chunk.commit_all();
                    black_box(&sink);
                    break;
                }
                std::hint::spin_loop();
            }
        }
    });
    let src = [7u8; N];
    let start = Instant::now();
    for _ in 0..iters {
        loop {
            if let Ok(mut chunk) = tx.write_chunk(N) {
                let (a, b) = chunk.as_mut_slices();
                let k = a.len();
                a.copy_from_slice(&src[..k]);
                b.copy_from_slice(&src[k..]);
                chunk.commit_all();
                break;
            }
            std::hint::spin_loop();
        }
    }
    consumer.join().unwrap();
    start.elapsed()
}

pub fn crossbeam_bounded<const N: usize>(iters: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<[u8; N]>(RING / N);
    let consumer = std::thread::spawn(move || {
        for _ in 0..iters {
            black_box(rx.recv().unwrap());
        }
    });
    let msg = [7u8; N];
    let start = Instant::now();
    for _ in 0..iters {
        tx.send(msg).unwrap();
    }
    consumer.join().unwrap();
    start.elapsed()
}

/// Producers × consumers for the MPMC workloads.
const P: u64 = 2;

/// psyne MPMC, 2 producers × 2 consumers through `Channel` handles.
pub fn mpmc_psyne(iters: u64) -> Duration {
    let ch = channel(Mode::Mpmc);
    let per = iters.div_ceil(P);
    let start = Instant::now();
    let threads: Vec<_> = (0..P)
        .flat_map(|_| {
            let tx = ch.clone();
            let rx = ch.clone();
            [
                std::thread::spawn(move || {
                    let msg = [7u8; 64];
                    for _ in 0..per {
                        while tx.try_send(&msg, 1).is_err() {
                            std::hint::spin_loop();
                        }
                    }
                }),
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    for _ in 0..per {
                        while rx.try_recv_into(&mut buf).is_err() {
                            std::hint::spin_loop();
                        }
                        black_box(&buf);
                    }
                }),
            ]
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    start.elapsed()
}

/// crossbeam's `ArrayQueue`, 2 producers × 2 consumers.
pub fn mpmc_array_queue(iters: u64) -> Duration {
    let q = std::sync::Arc::new(crossbeam_queue::ArrayQueue::<[u8; 64]>::new(RING / 64));
    let per = iters.div_ceil(P);
    let start = Instant::now();
    let threads: Vec<_> = (0..P)
        .flat_map(|_| {
            let tx = q.clone();
            let rx = q.clone();
            [
                std::thread::spawn(move || {
                    for _ in 0..per {
                        while tx.push([7u8; 64]).is_err() {
                            std::hint::spin_loop();
                        }
                    }
                }),
                std::thread::spawn(move || {
                    for _ in 0..per {
                        loop {
                            if let Some(v) = rx.pop() {
                                black_box(v);
                                break;
                            }
                            std::hint::spin_loop();
                        }
                    }
                }),
            ]
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    start.elapsed()
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
