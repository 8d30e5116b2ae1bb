//! Throughput of psyne's memory:// ring beside rtrb, crossbeam-channel and
//! crossbeam's ArrayQueue, in the same run, interleaved per message size.
//!
//! Each iteration moves `iters` messages from a producer (the bench thread)
//! to a consumer thread; criterion reports messages per second.
//!
//!   cargo bench --manifest-path benches/Cargo.toml --bench throughput

#[path = "c_api.rs"]
mod c_api;
#[path = "workloads.rs"]
mod workloads;

use c_api::Path;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use psyne::Mode;
use std::hint::black_box;
use std::time::Duration;
use workloads::*;

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
    let mut g = c.benchmark_group("mpmc_2x2_64B");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::from_parameter("psyne"), |b| {
        b.iter_custom(mpmc_psyne)
    });
    g.bench_function(BenchmarkId::from_parameter("crossbeam_array_queue"), |b| {
        b.iter_custom(mpmc_array_queue)
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = same_thread, spsc, mpmc
}
criterion_main!(benches);
