//! The cost of moving one cache line between the two CPUs the benchmarks
//! run on: two threads bounce a counter in one line, and each round trip is
//! two transfers. The unit the per-message bounds in
//! docs/PERFORMANCE-CORE.md are stated in.
//!
//!   cargo run --release --manifest-path benches/Cargo.toml --bin line_transfer

#[path = "workloads.rs"]
mod workloads;

fn main() {
    const ROUND_TRIPS: u64 = 200_000;
    for _ in 0..5 {
        let ns = workloads::line_round_trips(ROUND_TRIPS).as_nanos() as f64 / ROUND_TRIPS as f64;
        println!(
            "round trip {ns:.1} ns: one line transfer {:.1} ns",
            ns / 2.0
        );
    }
}
