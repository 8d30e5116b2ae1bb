//! Ping-pong latency: a message goes to an echo thread and back; criterion
//! reports the round trip (one-way = half). psyne's memory:// beside rtrb and
//! crossbeam-channel, busy-polling on both sides as latency-critical users do.
//!
//!   cargo bench --manifest-path benches/Cargo.toml --bench latency

#[path = "c_api.rs"]
mod c_api;
#[path = "workloads.rs"]
mod workloads;

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;
use workloads::{crossbeam_pingpong, psyne_pingpong, rtrb_pingpong};

fn pingpong(c: &mut Criterion) {
    for (name, run) in [
        ("pingpong_64B/psyne", psyne_pingpong as fn(u64) -> Duration),
        ("pingpong_64B/rtrb", rtrb_pingpong),
        ("pingpong_64B/crossbeam_channel", crossbeam_pingpong),
    ] {
        c.bench_function(name, |b| b.iter_custom(run));
    }
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
    targets = pingpong, c_pingpong
}
criterion_main!(benches);
