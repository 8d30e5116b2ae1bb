//! Stress tests: many threads, every mode, both the copying and the
//! reservation (zero-copy) paths, message sizes from 0 bytes up, blocking and
//! non-blocking calls. Every message must arrive exactly once, byte-exact, and
//! each receiver must see each producer's messages in the order they were sent.
//!
//! Run in release mode (`cargo test --release --test stress`); the message
//! count is `PSYNE_STRESS_MESSAGES` (default 1,000,000 per mode in release,
//! 20,000 in debug builds).

use psyne::{Channel, ChannelType, Error, Mode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn total_messages() -> usize {
    std::env::var("PSYNE_STRESS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            20_000
        } else {
            1_000_000
        })
}

/// Size of producer `p`'s message `seq`: mostly small, some 0, some large.
fn size_of(p: u32, seq: u32) -> usize {
    match (seq.wrapping_mul(2654435761) ^ p) % 16 {
        0 => 0,
        1 => 1000 + (seq as usize % 3000),
        _ => 8 + (seq as usize % 120),
    }
}

/// Fills a message: its first 8 bytes say who and which, the rest is a
/// pattern derived from both, so any torn or misplaced byte is detected.
fn fill(buf: &mut [u8], p: u32, seq: u32) {
    let head = [p.to_le_bytes(), seq.to_le_bytes()].concat();
    for (i, b) in buf.iter_mut().enumerate() {
        *b = if i < 8 {
            head[i]
        } else {
            (i as u32).wrapping_mul(31).wrapping_add(seq ^ (p << 7)) as u8
        };
    }
}

/// Checks a received message and returns (producer, seq).
fn check(data: &[u8], msg_type: u32) -> (u32, u32) {
    if data.is_empty() {
        // Empty messages carry (producer, seq) in the type: producer in the top byte.
        return (msg_type >> 24, msg_type & 0x00ff_ffff);
    }
    assert!(data.len() >= 8, "message of {} bytes", data.len());
    let p = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let seq = u32::from_le_bytes(data[4..8].try_into().unwrap());
    assert_eq!(
        data.len(),
        size_of(p, seq).max(8),
        "length of message {p}/{seq}"
    );
    let mut want = vec![0u8; data.len()];
    fill(&mut want, p, seq);
    assert!(data == &want[..], "bytes of message {p}/{seq} differ");
    assert_eq!(msg_type, (p << 24) | seq, "type of message {p}/{seq}");
    (p, seq)
}

fn run(mode: Mode, producers: u32, consumers: u32, buffer: usize) {
    let total = total_messages();
    let per_producer = (total / producers as usize) as u32;
    let name = format!("memory://stress-{mode:?}-{producers}x{consumers}-{buffer}");
    let ch = Channel::open(&name, buffer, mode, ChannelType::Multi).unwrap();
    let seen: Arc<Mutex<Vec<Vec<bool>>>> =
        Arc::new(Mutex::new(vec![
            vec![false; per_producer as usize];
            producers as usize
        ]));
    let received = Arc::new(AtomicUsize::new(0));
    let expected = per_producer as usize * producers as usize;

    let mut threads = Vec::new();
    for p in 0..producers {
        let ch = Channel::open(&name, 0, mode, ChannelType::Multi).unwrap();
        threads.push(std::thread::spawn(move || {
            let mut scratch = vec![0u8; 5000];
            for seq in 0..per_producer {
                let len = size_of(p, seq);
                let len = if len == 0 { 0 } else { len.max(8) };
                let t = (p << 24) | seq;
                // Alternate paths: copy (blocking / non-blocking retry) and reservation.
                match seq % 3 {
                    0 => {
                        fill(&mut scratch[..len], p, seq);
                        ch.send(&scratch[..len], t).unwrap();
                    }
                    1 => loop {
                        fill(&mut scratch[..len], p, seq);
                        match ch.try_send(&scratch[..len], t) {
                            Ok(()) => break,
                            Err(Error::ChannelFull) => std::thread::yield_now(),
                            Err(e) => panic!("{e}"),
                        }
                    },
                    _ => {
                        let mut slot = ch.reserve(len).unwrap();
                        fill(&mut slot, p, seq);
                        // Sometimes cancel and redo: cancelled space must never surface.
                        if seq % 7 == 0 {
                            slot.cancel();
                            slot = ch.reserve(len).unwrap();
                            fill(&mut slot, p, seq);
                        }
                        slot.send(t).unwrap();
                    }
                }
            }
        }));
    }
    for c in 0..consumers {
        let ch = Channel::open(&name, 0, mode, ChannelType::Multi).unwrap();
        let seen = seen.clone();
        let received = received.clone();
        threads.push(std::thread::spawn(move || {
            let mut last: Vec<Option<u32>> = vec![None; producers as usize];
            let mut buf = vec![0u8; 5000];
            let mut mine = Vec::new();
            let mut n = 0u64;
            loop {
                n += 1;
                let got = if (n + c as u64) % 2 == 0 {
                    match ch.recv_timeout(Duration::from_millis(50)) {
                        Ok(m) => Some(check(&m, m.msg_type())),
                        Err(Error::Timeout) => None,
                        Err(e) => panic!("{e}"),
                    }
                } else {
                    match ch.recv_into_until(&mut buf, Some(Duration::from_millis(50)), None) {
                        Ok((len, t)) => Some(check(&buf[..len], t)),
                        Err(Error::Timeout) => None,
                        Err(e) => panic!("{e}"),
                    }
                };
                match got {
                    Some((p, seq)) => {
                        if let Some(prev) = last[p as usize] {
                            assert!(seq > prev, "producer {p}: {seq} after {prev}");
                        }
                        last[p as usize] = Some(seq);
                        mine.push((p, seq));
                        if received.fetch_add(1, Ordering::SeqCst) + 1 == expected {
                            break;
                        }
                    }
                    None if received.load(Ordering::SeqCst) == expected => break,
                    None => {}
                }
            }
            let mut seen = seen.lock().unwrap();
            for (p, seq) in mine {
                assert!(
                    !seen[p as usize][seq as usize],
                    "message {p}/{seq} delivered twice"
                );
                seen[p as usize][seq as usize] = true;
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    for (p, v) in seen.iter().enumerate() {
        if let Some(seq) = v.iter().position(|s| !s) {
            panic!("{mode:?}: message {p}/{seq} never arrived");
        }
    }
    let m = ch.metrics();
    assert_eq!(m.messages_sent, expected as u64);
    assert_eq!(m.messages_received, expected as u64);
    assert_eq!(m.bytes_sent, m.bytes_received);
}

#[test]
fn spsc_1x1() {
    run(Mode::Spsc, 1, 1, 1 << 16);
}

#[test]
fn spmc_1x4() {
    run(Mode::Spmc, 1, 4, 1 << 16);
}

#[test]
fn mpsc_4x1() {
    run(Mode::Mpsc, 4, 1, 1 << 16);
}

#[test]
fn mpmc_4x4() {
    run(Mode::Mpmc, 4, 4, 1 << 16);
}

#[test]
fn mpmc_4x4_tiny_ring_wraps_constantly() {
    // 16 KiB ring, messages up to 4 KiB: padding records and full-ring waits all the time.
    run(Mode::Mpmc, 4, 4, 1 << 14);
}

/// The exclusive handles (no per-call side lock) on the SPSC fast path.
#[test]
fn spsc_exclusive_handles() {
    let total = total_messages() as u32;
    let ch = Channel::open(
        "memory://stress-exclusive",
        1 << 12,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap();
    let mut tx = ch.producer().unwrap();
    assert!(
        matches!(ch.try_send(b"x", 0), Err(Error::InvalidArgument(_))),
        "the side is taken"
    );
    let mut rx = ch.consumer().unwrap();
    let consumer = std::thread::spawn(move || {
        for seq in 0..total {
            let m = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(m.msg_type(), seq);
            assert_eq!(&m[..], &seq.to_le_bytes()[..(seq % 5) as usize]);
        }
    });
    for seq in 0..total {
        let data = &seq.to_le_bytes()[..(seq % 5) as usize];
        if seq % 2 == 0 {
            tx.send(data, seq).unwrap();
        } else {
            let mut slot = tx.reserve_until(data.len(), None, None).unwrap();
            slot.copy_from_slice(data);
            slot.send(seq).unwrap();
        }
    }
    consumer.join().unwrap();
}

/// More sending threads than counter lines (8 per side): some count on lines
/// of their own with plain stores, the rest share the overflow line with
/// `fetch_add`. Every message and byte must still be counted exactly once.
#[test]
fn metrics_stay_exact_with_more_threads_than_counter_lines() {
    const THREADS: u64 = 12;
    const EACH: u64 = 20_000;
    let ch = Channel::open(
        "memory://stress-metrics",
        1 << 16,
        Mode::Mpmc,
        ChannelType::Multi,
    )
    .unwrap();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let rx = ch.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                // Until stopped and drained.
                while rx.recv_into_until(&mut buf, None, None).is_ok() {}
            })
        })
        .collect();
    let producers: Vec<_> = (0..THREADS)
        .map(|p| {
            let tx = ch.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    tx.send(&[p as u8; 64][..(i % 64) as usize], 1).unwrap();
                }
            })
        })
        .collect();
    producers.into_iter().for_each(|t| t.join().unwrap());
    ch.stop();
    consumers.into_iter().for_each(|t| t.join().unwrap());
    let per_thread_bytes: u64 = (0..EACH).map(|i| i % 64).sum();
    let m = ch.metrics();
    assert_eq!(m.messages_sent, THREADS * EACH);
    assert_eq!(m.bytes_sent, THREADS * per_thread_bytes);
    assert_eq!(m.messages_received, THREADS * EACH);
    assert_eq!(m.bytes_received, THREADS * per_thread_bytes);
}
