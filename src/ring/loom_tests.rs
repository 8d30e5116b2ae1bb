//! Model checks of the ring's claim/commit/read/release protocols with `loom`,
//! which runs every interleaving (up to a bounded number of preemptions) under
//! the C11 memory model.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --lib loom
//! ```
//!
//! Rings here are 64 bytes (the minimum): two or three records fill a lap, so
//! wrap padding, full-ring and recycled-header cases all occur within a few
//! operations.

use super::*;
use loom::sync::Arc;
use loom::thread;

fn send(r: &Ring, data: &[u8], t: u32) {
    loop {
        if let Some(c) = r.try_claim(data.len()) {
            // SAFETY: the claim owns data.len() bytes at its payload pointer.
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), r.payload_ptr(c.pos), data.len())
            };
            r.commit(c, t);
            return;
        }
        thread::yield_now();
    }
}

/// Receives one message, spinning (with yields) until there is one.
fn recv(r: &Ring) -> (Vec<u8>, u32) {
    loop {
        if let Some(rec) = r.try_read(u32::MAX).unwrap() {
            // SAFETY: the record is ours until released.
            let v = unsafe { std::slice::from_raw_parts(r.payload_ptr(rec.pos), rec.len as usize) }
                .to_vec();
            let t = rec.msg_type;
            r.release(rec);
            return (v, t);
        }
        thread::yield_now();
    }
}

/// loom's model runner; preemptions come from `LOOM_MAX_PREEMPTIONS`. Spinning
/// on a full 64-byte ring makes long paths, hence the raised branch limit.
fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.max_branches = 100_000;
    b.check(f);
}

fn payload(p: u32, i: u32) -> Vec<u8> {
    // Lengths 0..=12 so that records are 16 or 32 bytes: laps of 64 bytes
    // need padding and reuse slots quickly.
    vec![(p * 16 + i) as u8; ((p + i * 5) % 13) as usize]
}

/// One producer sends `n` messages, `consumers` threads take them; checks
/// exactly-once, content, and per-producer order per consumer.
fn model(mode: Mode, producers: u32, consumers: u32, n: u32) {
    check(move || {
        let ring = Arc::new(Ring::new_heap(64, mode).unwrap());
        let total = producers * n;
        let taken = Arc::new(loom::sync::atomic::AtomicU32::new(0));
        let mut handles = Vec::new();
        for p in 0..producers {
            let ring = ring.clone();
            handles.push(thread::spawn(move || {
                for i in 0..n {
                    send(&ring, &payload(p, i), p * 100 + i);
                }
                Vec::new()
            }));
        }
        for _ in 0..consumers {
            let ring = ring.clone();
            let taken = taken.clone();
            handles.push(thread::spawn(move || {
                let mut got = Vec::new();
                // Each consumer claims a ticket before receiving, so exactly
                // `total` receives happen in all.
                while taken.fetch_add(1, loom::sync::atomic::Ordering::Relaxed) < total {
                    got.push(recv(&ring));
                }
                got
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            let got = h.join().unwrap();
            let mut last = vec![None; producers as usize];
            for (data, t) in &got {
                let (p, i) = (t / 100, t % 100);
                assert_eq!(data, &payload(p, i), "content of {p}/{i}");
                if let Some(prev) = last[p as usize] {
                    assert!(i > prev, "order: {p}/{i} after {p}/{prev}");
                }
                last[p as usize] = Some(i);
            }
            all.extend(got.into_iter().map(|(_, t)| t));
        }
        all.sort_unstable();
        let want: Vec<u32> = (0..producers)
            .flat_map(|p| (0..n).map(move |i| p * 100 + i))
            .collect();
        assert_eq!(all, want, "every message exactly once");
    });
}

#[test]
fn loom_spsc() {
    model(Mode::Spsc, 1, 1, 4);
}

#[test]
fn loom_spmc() {
    model(Mode::Spmc, 1, 2, 3);
}

#[test]
fn loom_mpsc() {
    model(Mode::Mpsc, 2, 1, 2);
}

#[test]
fn loom_mpmc() {
    model(Mode::Mpmc, 2, 2, 1);
}

/// Out-of-order commit and cancel with two producers and one consumer.
#[test]
fn loom_mp_cancel_and_out_of_order_commit() {
    check(|| {
        let ring = Arc::new(Ring::new_heap(64, Mode::Mpmc).unwrap());
        let r2 = ring.clone();
        let a = thread::spawn(move || {
            // Holds a claim while the other producer commits, then cancels it.
            if let Some(c) = r2.try_claim(4) {
                thread::yield_now();
                r2.cancel(c);
            }
            send(&r2, b"a", 1);
        });
        let r3 = ring.clone();
        let b = thread::spawn(move || send(&r3, b"bb", 2));
        let mut got = vec![recv(&ring), recv(&ring)];
        a.join().unwrap();
        b.join().unwrap();
        got.sort();
        assert_eq!(got, vec![(b"a".to_vec(), 1), (b"bb".to_vec(), 2)]);
        assert!(
            ring.try_read(u32::MAX).unwrap().is_none(),
            "the cancelled claim never surfaces"
        );
    });
}

/// The sleep/wake handshake: a consumer about to sleep and a producer that
/// publishes must not both miss each other (the lost wake-up).
#[test]
fn loom_no_lost_wakeup() {
    use crate::sync::{heavy_barrier, light_barrier, Scope};
    use loom::sync::atomic::{AtomicU32, Ordering};
    check(|| {
        let data = Arc::new(AtomicU32::new(0));
        let sleepers = Arc::new(AtomicU32::new(0));
        let (d2, s2) = (data.clone(), sleepers.clone());
        let producer = thread::spawn(move || {
            d2.store(1, Ordering::Release);
            light_barrier();
            s2.load(Ordering::Relaxed) != 0 // true: it would wake the consumer
        });
        sleepers.store(1, Ordering::SeqCst);
        heavy_barrier(Scope::Process);
        let consumer_sees_data = data.load(Ordering::Acquire) != 0;
        let producer_wakes = producer.join().unwrap();
        assert!(consumer_sees_data || producer_wakes, "lost wake-up");
    });
}
