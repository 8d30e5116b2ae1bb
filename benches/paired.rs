//! Same-window comparisons against the peers, for the speed targets.
//!
//! On a virtual machine the cost of moving a cache line between the two
//! CPUs a benchmark runs on is not fixed: the hypervisor places the vCPUs,
//! and here one transfer measured 15–18 ns, 35–45 ns or 210–230 ns from
//! one second to the next. A criterion run of several seconds per
//! contender therefore compares contenders measured under different
//! placements. This binary instead runs each target's two contenders back
//! to back in short slices (tens of milliseconds, order alternating by
//! round), probes the line-transfer cost before and after each slice, and
//! compares only the pairs whose four probes fell into the same regime.
//!
//!   cargo run --release --manifest-path benches/Cargo.toml --bin paired [ROUNDS]
//!
//! For each target and regime it prints the pairs, the median of the
//! per-pair ratios (peer time ÷ psyne time: above 1 psyne is faster) and
//! how many pairs met the target.

#[path = "c_api.rs"]
mod c_api;
#[path = "cpu_model.rs"]
mod cpu_model;
#[path = "workloads.rs"]
mod workloads;

use std::time::Duration;
use workloads::*;

/// One contender: a workload and the message (round-trip) count of a slice.
#[derive(Clone, Copy)]
struct Contender {
    name: &'static str,
    run: fn(u64) -> Duration,
    iters: u64,
}

/// A target: `peer`'s time ÷ `ours`' time should be at least `want` (None:
/// shown for information).
struct Target {
    label: &'static str,
    peer: Contender,
    ours: Contender,
    want: Option<f64>,
}

/// The line-transfer regimes seen on this host's VMs (ns per transfer).
const REGIMES: [(&str, f64, f64); 3] = [
    ("near (< 27 ns)", 0.0, 27.0),
    ("core (27-100 ns)", 27.0, 100.0),
    ("far (> 100 ns)", 100.0, f64::INFINITY),
];

fn regime(line_ns: f64) -> usize {
    REGIMES
        .iter()
        .position(|&(_, lo, hi)| line_ns >= lo && line_ns < hi)
        .unwrap_or(REGIMES.len() - 1)
}

/// One cache-line transfer now, in ns (a short probe).
fn probe() -> f64 {
    const N: u64 = 2_000;
    line_round_trips(N).as_nanos() as f64 / N as f64 / 2.0
}

/// A timed slice: ns per message, and the regime if the probes before and
/// after agree.
fn slice(c: Contender) -> (f64, Option<usize>) {
    let before = regime(probe());
    let ns = (c.run)(c.iters).as_nanos() as f64 / c.iters as f64;
    let after = regime(probe());
    (ns, (before == after).then_some(before))
}

fn c_side_copy_pingpong(iters: u64) -> Duration {
    c_api::Echo::start(c_api::Path::SideCopy).round_trips(iters)
}

fn c_side_copy_stream(iters: u64) -> Duration {
    c_api::stream(c_api::Path::SideCopy, iters, 64)
}

fn c_side_fused_stream(iters: u64) -> Duration {
    c_api::stream(c_api::Path::SideFused, iters, 64)
}

fn c_side_reserve_stream(iters: u64) -> Duration {
    c_api::stream(c_api::Path::SideReserve, iters, 64)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let c = |name, run, iters| Contender { name, run, iters };
    let copy64 = c(
        "psyne copy",
        psyne_copy::<64> as fn(u64) -> Duration,
        300_000,
    );
    let pp = c("psyne", psyne_pingpong as fn(u64) -> Duration, 20_000);
    let targets = [
        Target {
            label: "SPSC 64 B >= 1.5x rtrb",
            peer: c("rtrb", rtrb_items::<64>, 300_000),
            ours: copy64,
            want: Some(1.5),
        },
        Target {
            label: "SPSC 64 B >= 3x crossbeam-channel",
            peer: c("crossbeam-channel", crossbeam_bounded::<64>, 300_000),
            ours: copy64,
            want: Some(3.0),
        },
        Target {
            label: "SPSC 4 KiB >= 1.2x rtrb chunk",
            peer: c("rtrb chunk", rtrb_chunks::<4096>, 30_000),
            ours: c("psyne reserve", psyne_reserve::<4096>, 30_000),
            want: Some(1.2),
        },
        Target {
            label: "ping-pong <= rtrb",
            peer: c("rtrb", rtrb_pingpong, 20_000),
            ours: pp,
            want: Some(1.0),
        },
        Target {
            label: "MPMC 2x2 >= ArrayQueue",
            peer: c("ArrayQueue", mpmc_array_queue, 300_000),
            ours: c("psyne", mpmc_psyne, 300_000),
            want: Some(1.0),
        },
        Target {
            label: "C ping-pong <= 1.1x Rust (C side copy)",
            peer: pp,
            ours: c("C side copy", c_side_copy_pingpong, 20_000),
            want: Some(1.0 / 1.1),
        },
        Target {
            label: "C SPSC 64 B: Rust copy / C side copy",
            peer: copy64,
            ours: c("C side copy", c_side_copy_stream, 300_000),
            want: None,
        },
        Target {
            label: "C SPSC 64 B: C side copy / C side reserve",
            peer: c("C side copy", c_side_copy_stream, 300_000),
            ours: c("C side reserve", c_side_reserve_stream, 300_000),
            want: None,
        },
        Target {
            label: "C SPSC 64 B: C side copy / C side fused",
            peer: c("C side copy", c_side_copy_stream, 300_000),
            ours: c("C side fused", c_side_fused_stream, 300_000),
            want: None,
        },
    ];

    println!("CPU: {}", cpu_model::cpu_model());
    println!("{rounds} rounds; each target's two contenders back to back, order alternating\n");
    // [target][regime] -> (peer ns, ours ns) per matched pair
    let mut pairs: Vec<Vec<Vec<(f64, f64)>>> = targets
        .iter()
        .map(|_| vec![Vec::new(); REGIMES.len()])
        .collect();
    let mut unmatched = vec![0usize; targets.len()];
    for round in 0..rounds {
        for (i, t) in targets.iter().enumerate() {
            let (first, second) = if round % 2 == 0 {
                (t.peer, t.ours)
            } else {
                (t.ours, t.peer)
            };
            let (a, ra) = slice(first);
            let (b, rb) = slice(second);
            let (peer, ours) = if round % 2 == 0 { (a, b) } else { (b, a) };
            match (ra, rb) {
                (Some(x), Some(y)) if x == y => pairs[i][x].push((peer, ours)),
                _ => unmatched[i] += 1,
            }
        }
        eprint!("\rround {}/{rounds}", round + 1);
    }
    eprintln!();

    for (i, t) in targets.iter().enumerate() {
        println!(
            "{} ({} vs {}; {} pairs left out: the placement changed during the pair)",
            t.label, t.peer.name, t.ours.name, unmatched[i]
        );
        println!(
            "  {:<18} {:>5} {:>12} {:>12} {:>14} {:>8}",
            "regime", "pairs", "peer ns", "psyne ns", "median ratio", "met"
        );
        for (r, &(name, _, _)) in REGIMES.iter().enumerate() {
            let p = &pairs[i][r];
            if p.is_empty() {
                continue;
            }
            let mut ratios: Vec<f64> = p.iter().map(|&(a, b)| a / b).collect();
            let met = t.want.map_or("-".to_string(), |w| {
                format!("{}/{}", ratios.iter().filter(|&&x| x >= w).count(), p.len())
            });
            let mut peer: Vec<f64> = p.iter().map(|x| x.0).collect();
            let mut ours: Vec<f64> = p.iter().map(|x| x.1).collect();
            println!(
                "  {:<18} {:>5} {:>12.1} {:>12.1} {:>13.2}x {:>8}",
                name,
                p.len(),
                median(&mut peer),
                median(&mut ours),
                median(&mut ratios),
                met
            );
        }
        println!();
    }
}
