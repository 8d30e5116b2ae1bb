//! Throughput of psyne's memory:// ring beside rtrb, crossbeam-channel and
//! crossbeam's ArrayQueue, in the same run, interleaved per message size.
//!
//! Each iteration moves `iters` messages from a producer (the bench thread)
//! to a consumer thread; criterion reports messages per second.
//!
//!   cargo bench --manifest-path benches/Cargo.toml --bench throughput

#[path = "c_api.rs"]
mod c_api;

use c_api::Path;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use psyne::{Channel, ChannelType, Mode};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static NAME: AtomicU64 = AtomicU64::new(0);
const RING: usize = 1 << 20;

fn channel(mode: Mode) -> Channel {
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
fn psyne_copy<const N: usize>(iters: u64) -> Duration {
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
fn psyne_reserve<const N: usize>(iters: u64) -> Duration {
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
fn psyne_reserve_moved<const N: usize>(iters: u64) -> Duration {
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

fn rtrb_items<const N: usize>(iters: u64) -> Duration {
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
fn rtrb_chunks<const N: usize>(iters: u64) -> Duration {
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

fn crossbeam_bounded<const N: usize>(iters: u64) -> Duration {
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

fn spsc(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_64B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("psyne_copy", |b| b.iter_custom(psyne_copy::<64>));
    g.bench_function("psyne_reserve", |b| b.iter_custom(psyne_reserve::<64>));
    g.bench_function("psyne_reserve_moved", |b| {
        b.iter_custom(psyne_reserve_moved::<64>)
    });
    g.bench_function("rtrb_push_pop", |b| b.iter_custom(rtrb_items::<64>));
    g.bench_function("crossbeam_channel_bounded", |b| {
        b.iter_custom(crossbeam_bounded::<64>)
    });
    // The same stream through the C API (c/bench_c.c).
    for (name, path) in [
        ("c_side_reserve", Path::SideReserve),
        ("c_side_copy", Path::SideCopy),
        ("c_side_fused", Path::SideFused),
        ("c_channel_reserve", Path::ChannelReserve),
        ("c_channel_copy", Path::ChannelCopy),
    ] {
        g.bench_function(name, |b| b.iter_custom(|n| c_api::stream(path, n, 64)));
    }
    g.finish();

    let mut g = c.benchmark_group("spsc_4KiB");
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("psyne_copy", |b| b.iter_custom(psyne_copy::<4096>));
    g.bench_function("psyne_reserve", |b| b.iter_custom(psyne_reserve::<4096>));
    g.bench_function("rtrb_chunk", |b| b.iter_custom(rtrb_chunks::<4096>));
    g.bench_function("c_side_reserve", |b| {
        b.iter_custom(|n| c_api::stream(Path::SideReserve, n, 4096))
    });
    g.bench_function("crossbeam_channel_bounded", |b| {
        b.iter_custom(crossbeam_bounded::<4096>)
    });
    g.finish();
}

/// Send then receive on one thread: the per-message path cost of each queue,
/// without cross-core cache traffic or scheduling. Robust on noisy machines,
/// and the lower bound of what the two-thread benches can reach.
fn same_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("same_thread_64B");
    g.throughput(Throughput::Elements(1));
    let ch = channel(Mode::Spsc);
    let (mut tx, mut rx) = (ch.producer().unwrap(), ch.consumer().unwrap());
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    g.bench_function("psyne_copy", |b| {
        b.iter(|| {
            tx.try_send(black_box(&msg), 1).unwrap();
            black_box(rx.try_recv_into(&mut buf).unwrap());
        })
    });
    g.bench_function("psyne_reserve", |b| {
        b.iter(|| {
            let mut slot = tx.try_reserve(64).unwrap();
            slot.copy_from_slice(black_box(&msg));
            slot.send(1).unwrap();
            let m = rx.try_recv().unwrap();
            buf.copy_from_slice(&m);
            black_box(&buf);
        })
    });
    let shared = channel(Mode::Spsc);
    g.bench_function("psyne_channel_per_call_lock", |b| {
        b.iter(|| {
            shared.try_send(black_box(&msg), 1).unwrap();
            black_box(shared.try_recv_into(&mut buf).unwrap());
        })
    });
    let (mut rt_tx, mut rt_rx) = rtrb::RingBuffer::<[u8; 64]>::new(RING / 64);
    g.bench_function("rtrb_push_pop", |b| {
        b.iter(|| {
            rt_tx.push(black_box(msg)).unwrap();
            black_box(rt_rx.pop().unwrap());
        })
    });
    let (cb_tx, cb_rx) = crossbeam_channel::bounded::<[u8; 64]>(RING / 64);
    g.bench_function("crossbeam_channel_bounded", |b| {
        b.iter(|| {
            cb_tx.try_send(black_box(msg)).unwrap();
            black_box(cb_rx.try_recv().unwrap());
        })
    });
    let q = crossbeam_queue::ArrayQueue::<[u8; 64]>::new(RING / 64);
    g.bench_function("crossbeam_array_queue", |b| {
        b.iter(|| {
            q.push(black_box(msg)).unwrap();
            black_box(q.pop().unwrap());
        })
    });
    g.finish();
}

/// 2 producers × 2 consumers, 64-byte messages.
fn mpmc(c: &mut Criterion) {
    const P: u64 = 2;
    let mut g = c.benchmark_group("mpmc_2x2_64B");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::from_parameter("psyne"), |b| {
        b.iter_custom(|iters| {
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
        })
    });
    g.bench_function(BenchmarkId::from_parameter("crossbeam_array_queue"), |b| {
        b.iter_custom(|iters| {
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
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = same_thread, spsc, mpmc
}
criterion_main!(benches);
