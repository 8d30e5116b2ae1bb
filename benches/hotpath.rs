//! A fixed number of same-thread 64-byte messages through a `memory://`
//! channel with no compression settings, for counting instructions per
//! message under callgrind (deterministic, unlike wall-clock time on a
//! loaded machine). docs/COMPRESSION.md, "What it costs when off":
//!
//!   cargo build --release --manifest-path benches/Cargo.toml --bin hotpath
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!       benches/target/release/hotpath copy 100000      # and 200000
//!
//! The difference of the two totals over 100000 is the cost of one message.

use psyne::{Channel, ChannelType, Mode};
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let ch = Channel::open("memory://hotpath", 1 << 20, Mode::Spsc, ChannelType::Multi).unwrap();
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    match what.as_str() {
        // Exclusive sides: copying send, copying receive.
        "copy" => {
            let (mut tx, mut rx) = (ch.producer().unwrap(), ch.consumer().unwrap());
            for _ in 0..n {
                tx.try_send(black_box(&msg), 1).unwrap();
                black_box(rx.try_recv_into(&mut buf).unwrap());
            }
        }
        // Exclusive sides: reservation written in place, view read.
        "reserve" => {
            let (mut tx, mut rx) = (ch.producer().unwrap(), ch.consumer().unwrap());
            for _ in 0..n {
                let mut slot = tx.try_reserve(64).unwrap();
                slot.copy_from_slice(black_box(&msg));
                slot.send(1).unwrap();
                let m = rx.try_recv().unwrap();
                buf.copy_from_slice(&m);
                black_box(&buf);
            }
        }
        // The Channel handle itself (a side lock per call).
        "channel" => {
            for _ in 0..n {
                ch.try_send(black_box(&msg), 1).unwrap();
                black_box(ch.try_recv_into(&mut buf).unwrap());
            }
        }
        _ => {
            eprintln!("usage: hotpath copy|reserve|channel [N]");
            std::process::exit(2);
        }
    }
}
