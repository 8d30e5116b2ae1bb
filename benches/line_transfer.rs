//! The cost of moving one cache line between the two CPUs the benchmarks
//! run on: two threads bounce a counter in one line, and each round trip is
//! two transfers. The unit the per-message bounds in
//! docs/PERFORMANCE-CORE.md are stated in.
//!
//!   cargo run --release --manifest-path benches/Cargo.toml --bin line_transfer

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Instant;

#[repr(align(128))]
struct Line(AtomicU64);

fn main() {
    const ROUND_TRIPS: u64 = 200_000;
    for _ in 0..5 {
        let line = Arc::new(Line(AtomicU64::new(0)));
        let echo = line.clone();
        let t = std::thread::spawn(move || {
            for i in 0..ROUND_TRIPS {
                while echo.0.load(Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                echo.0.store(2 * i + 2, Release);
            }
        });
        let start = Instant::now();
        for i in 0..ROUND_TRIPS {
            line.0.store(2 * i + 1, Release);
            while line.0.load(Acquire) != 2 * i + 2 {
                std::hint::spin_loop();
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / ROUND_TRIPS as f64;
        t.join().unwrap();
        println!(
            "round trip {ns:.1} ns: one line transfer {:.1} ns",
            ns / 2.0
        );
    }
}
