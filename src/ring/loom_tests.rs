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

use super::test_support::{try_recv, try_send};

/// Sends, retrying (with yields) until there is room.
fn send(r: &Ring, data: &[u8], t: u32) {
    while !try_send(r, data, t) {
        thread::yield_now();
    }
}

/// Receives one message, retrying (with yields) until there is one.
fn recv(r: &Ring) -> (Vec<u8>, u32) {
    loop {
        if let Some(m) = try_recv(r) {
            return m;
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

/// `producers` threads each try to send `n` messages, `consumers` threads
/// each make `n` receive attempts; every thread's work is bounded (no spinning),
/// which keeps the state space small enough to explore with preemptions.
/// Afterwards the main thread drains the rest. Checks: every message that was
/// sent is received exactly once with its bytes, nothing else is received, and
/// each consumer saw each producer's messages in order.
fn model(mode: Mode, producers: u32, consumers: u32, n: u32, capacity: usize) {
    check(move || {
        let ring = Arc::new(Ring::new_heap(capacity, mode).unwrap());
        let mut senders = Vec::new();
        for p in 0..producers {
            let ring = ring.clone();
            senders.push(thread::spawn(move || {
                // A producer stops at its first full ring, so what it sent is a prefix.
                (0..n)
                    .take_while(|&i| try_send(&ring, &payload(p, i), p * 100 + i))
                    .map(|i| p * 100 + i)
                    .collect::<Vec<_>>()
            }));
        }
        let mut receivers = Vec::new();
        for _ in 0..consumers {
            let ring = ring.clone();
            receivers.push(thread::spawn(move || {
                (0..n).filter_map(|_| try_recv(&ring)).collect::<Vec<_>>()
            }));
        }
        let mut sent: Vec<u32> = senders
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let mut batches: Vec<Vec<(Vec<u8>, u32)>> =
            receivers.into_iter().map(|h| h.join().unwrap()).collect();
        batches.push(std::iter::from_fn(|| try_recv(&ring)).collect());
        let mut got = Vec::new();
        for batch in &batches {
            let mut last = vec![None; producers as usize];
            for (data, t) in batch {
                let (p, i) = (t / 100, t % 100);
                assert_eq!(data, &payload(p, i), "content of {p}/{i}");
                if let Some(prev) = last[p as usize] {
                    assert!(i > prev, "order: {p}/{i} after {p}/{prev}");
                }
                last[p as usize] = Some(i);
                got.push(*t);
            }
        }
        sent.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, sent, "every sent message exactly once");
    });
}

#[test]
fn loom_spsc() {
    model(Mode::Spsc, 1, 1, 4, 64);
}

#[test]
fn loom_spmc() {
    model(Mode::Spmc, 1, 2, 3, 64);
}

#[test]
fn loom_mpsc() {
    model(Mode::Mpsc, 2, 1, 2, 64);
}

#[test]
fn loom_mpmc() {
    model(Mode::Mpmc, 2, 2, 1, 64);
}

/// Out-of-order commit and cancel: producer A holds a claim while producer B
/// claims after it and commits first; A then cancels. The consumer must get
/// B's message exactly once and never see A's cancelled space.
#[test]
fn loom_mp_cancel_and_out_of_order_commit() {
    check(|| {
        let ring = Arc::new(Ring::new_heap(128, Mode::Mpsc).unwrap());
        let held = ring.try_claim(4).unwrap();
        let r2 = ring.clone();
        let b = thread::spawn(move || send(&r2, b"bb", 2));
        let r3 = ring.clone();
        let consumer = thread::spawn(move || recv(&r3));
        thread::yield_now();
        ring.cancel(held);
        assert_eq!(consumer.join().unwrap(), (b"bb".to_vec(), 2));
        b.join().unwrap();
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

/// Deferred freeing must never strand space. A full ring (three 16-byte
/// records in 64 bytes); two consumers take and release one record each
/// (releases of less than half the ring defer the freeing) while a producer
/// tries to send, freeing for itself. Afterwards, with everything drained,
/// the whole ring must be usable again: released space that nobody frees
/// would make those sends fail. (No thread spins, which keeps the model small.)
#[test]
fn loom_mc_deferred_free_strands_no_space() {
    for mode in [Mode::Spmc, Mode::Mpmc] {
        check(move || {
            let ring = Arc::new(Ring::new_heap(64, mode).unwrap());
            for i in 0..3 {
                assert!(try_send(&ring, &[], i));
            }
            let consumers: Vec<_> = (0..2)
                .map(|_| {
                    let ring = ring.clone();
                    thread::spawn(move || try_recv(&ring).map(|m| m.1))
                })
                .collect();
            let sent_late = try_send(&ring, &[9], 3);
            let mut got: Vec<u32> = consumers
                .into_iter()
                .filter_map(|c| c.join().unwrap())
                .collect();
            got.extend(std::iter::from_fn(|| try_recv(&ring)).map(|m| m.1));
            got.sort_unstable();
            let expected: Vec<u32> = if sent_late {
                vec![0, 1, 2, 3]
            } else {
                vec![0, 1, 2]
            };
            assert_eq!(got, expected, "every sent message exactly once");
            for i in 0..3 {
                assert!(
                    try_send(&ring, &[], 10 + i),
                    "drained ring has room for #{i}"
                );
            }
        });
    }
}

/// A stop racing sends: a send whose commit succeeded is received before the
/// consumer is told the ring stopped, a refused one never is, and nothing is
/// left queued once the consumer saw the stop.
fn stop_model(mode: Mode, producers: u32) {
    check(move || {
        let ring = Arc::new(Ring::new_heap(128, mode).unwrap());
        let senders: Vec<_> = (0..producers)
            .map(|p| {
                let ring = ring.clone();
                thread::spawn(move || match ring.try_claim(4) {
                    Some(c) => ring.commit(c, p + 1).then_some(p + 1),
                    None => None,
                })
            })
            .collect();
        let stopper = {
            let ring = ring.clone();
            thread::spawn(move || ring.stop())
        };
        let consumer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    if let Some(rec) = ring.try_read(u32::MAX).unwrap() {
                        got.push(rec.msg_type());
                        ring.release(rec);
                    } else if ring.drained_after_stop() {
                        // What read_slow does: one more look, then the stop.
                        match ring.try_read(u32::MAX).unwrap() {
                            Some(rec) => {
                                got.push(rec.msg_type());
                                ring.release(rec);
                            }
                            None => return got,
                        }
                    } else {
                        thread::yield_now();
                    }
                }
            })
        };
        let mut sent: Vec<u32> = senders
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        stopper.join().unwrap();
        let mut got = consumer.join().unwrap();
        assert!(
            ring.try_read(u32::MAX).unwrap().is_none(),
            "a message published after the consumer saw the stop"
        );
        sent.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, sent, "sent (commit succeeded) vs received");
    });
}

#[test]
fn loom_stop_spsc() {
    stop_model(Mode::Spsc, 1);
}

#[test]
fn loom_stop_mpsc() {
    stop_model(Mode::Mpsc, 2);
}
