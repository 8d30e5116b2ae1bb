//! Single-threaded unit tests of the ring algorithm in every mode. Concurrency
//! is covered by `tests/stress.rs` (threads) and `tests/loom.rs` (model checking).

use super::ahead::{write_ahead_lines, READ_AHEAD_AFTER, WRITE_AHEAD, WRITE_AHEAD_MIN};
use super::*;

const MODES: [Mode; 4] = [Mode::Spsc, Mode::Spmc, Mode::Mpsc, Mode::Mpmc];

use super::test_support::{try_recv as recv, try_send as send};

#[test]
fn round_trip_in_every_mode() {
    for mode in MODES {
        let r = Ring::new_heap(1024, mode).unwrap();
        assert!(recv(&r).is_none());
        assert!(send(&r, b"hello", 7));
        assert!(send(&r, b"", 8));
        assert_eq!(recv(&r), Some((b"hello".to_vec(), 7)), "{mode:?}");
        assert_eq!(recv(&r), Some((vec![], 8)), "{mode:?}");
        assert!(recv(&r).is_none());
    }
}

#[test]
fn fills_then_drains_in_order_across_many_laps() {
    for mode in MODES {
        let r = Ring::new_heap(256, mode).unwrap();
        let mut next_send = 0u32;
        let mut next_recv = 0u32;
        // Sizes chosen to force padding records at the end of laps.
        let size = |i: u32| (i * 37 % 90) as usize;
        for _round in 0..200 {
            while send(&r, &vec![next_send as u8; size(next_send)], next_send) {
                next_send += 1;
            }
            assert!(
                next_send > next_recv,
                "{mode:?}: a ring with no messages must accept one"
            );
            while let Some((v, t)) = recv(&r) {
                assert_eq!(t, next_recv, "{mode:?}");
                assert_eq!(v, vec![next_recv as u8; size(next_recv)], "{mode:?}");
                next_recv += 1;
            }
            assert_eq!(next_send, next_recv);
        }
        assert!(next_send > 400, "{mode:?}: {next_send}");
    }
}

#[test]
fn largest_message_fits_an_empty_ring_at_any_offset() {
    for mode in MODES {
        let r = Ring::new_heap(256, mode).unwrap();
        let max = r.max_message();
        assert_eq!(max, 112);
        for shift in 0..40 {
            // Move the write position, then send the largest message.
            assert!(send(&r, &vec![1; shift * 7 % 100], 1));
            assert_eq!(recv(&r).unwrap().0.len(), shift * 7 % 100);
            let big = vec![shift as u8; max];
            assert!(send(&r, &big, 2), "{mode:?} shift {shift}");
            assert_eq!(recv(&r), Some((big, 2)));
        }
    }
}

#[test]
fn too_big_for_the_buffer_stays_queued() {
    for mode in MODES {
        let r = Ring::new_heap(256, mode).unwrap();
        assert!(send(&r, &[9; 40], 3));
        assert_eq!(r.try_read(39).err(), Some(40));
        assert_eq!(r.try_read(39).err(), Some(40), "{mode:?}: still queued");
        let rec = r.try_read(40).unwrap().unwrap();
        assert_eq!(rec.len(), 40);
        r.release(rec);
    }
}

#[test]
fn cancelled_claims_are_skipped() {
    for mode in MODES {
        let r = Ring::new_heap(512, mode).unwrap();
        for i in 0..50u32 {
            let c = r.try_claim(30).unwrap();
            r.cancel(c);
            assert!(send(&r, &[i as u8; 10], i));
            assert_eq!(recv(&r), Some((vec![i as u8; 10], i)), "{mode:?}");
            assert!(recv(&r).is_none());
        }
    }
}

#[test]
fn out_of_order_commit_and_release_in_multi_modes() {
    let r = Ring::new_heap(1024, Mode::Mpmc).unwrap();
    let a = r.try_claim(10).unwrap();
    let b = r.try_claim(20).unwrap();
    assert!(r.commit(b, 2)); // the later claim commits first
    assert!(
        r.try_read(u32::MAX).unwrap().is_none(),
        "ring order: a comes first"
    );
    assert!(r.commit(a, 1));
    let ra = r.try_read(u32::MAX).unwrap().unwrap();
    let rb = r.try_read(u32::MAX).unwrap().unwrap();
    assert_eq!((ra.msg_type(), rb.msg_type()), (1, 2));
    let used = r.used_bytes();
    r.release(rb); // released out of order: nothing can be freed yet
    assert_eq!(r.used_bytes(), used);
    r.release(ra); // both could be freed; 80 bytes is below the batch, so they wait
    assert_eq!(r.used_bytes(), used);
    // A polling producer does not free: after a 480-byte record, another
    // 464 bytes plus the slack only fit once a and b are freed...
    let big = r.try_claim(464).unwrap();
    assert!(r.commit(big, 3));
    assert_eq!(r.used_bytes(), 80 + 480);
    let rc = r.try_read(u32::MAX).unwrap().unwrap();
    assert!(r.try_claim(448).is_none());
    // ...a producer about to wait does.
    r.free_for_waiting_producer();
    let last = r
        .try_claim(448)
        .expect("space of released records is reused");
    assert_eq!(r.used_bytes(), 480 + 464);
    r.cancel(last);
    r.release(rc);
}

#[test]
fn multi_consumer_frees_when_it_finds_the_ring_empty() {
    for mode in [Mode::Spmc, Mode::Mpmc] {
        let r = Ring::new_heap(1024, mode).unwrap(); // batch: 64 bytes
        assert!(send(&r, &[1; 10], 1));
        assert!(recv(&r).is_some());
        assert_eq!(r.used_bytes(), 32, "{mode:?}: a release of 32 bytes waits");
        assert!(recv(&r).is_none());
        assert_eq!(r.used_bytes(), 0, "{mode:?}: freed on drain");
    }
}

#[test]
fn multi_consumer_frees_in_batches_and_for_sleeping_producers() {
    let r = Ring::new_heap(1024, Mode::Spmc).unwrap(); // batch: 64 bytes
    assert!(send(&r, &[1; 10], 1)); // 32-byte records
    assert!(send(&r, &[2; 10], 2));
    assert!(send(&r, &[3; 10], 3));
    assert!(recv(&r).is_some());
    assert_eq!(r.used_bytes(), 96, "one release of 32 bytes waits");
    assert!(recv(&r).is_some());
    assert_eq!(r.used_bytes(), 32, "64 bytes released: freed");
    r.ctrl().space.0.sleepers.store(1, Ordering::SeqCst);
    assert!(recv(&r).is_some());
    assert_eq!(r.used_bytes(), 0, "a sleeping producer gets space at once");
}

#[test]
fn full_ring_reports_full_then_recovers() {
    for mode in MODES {
        let r = Ring::new_heap(128, mode).unwrap();
        let mut n = 0;
        while send(&r, &[0; 8], 0) {
            n += 1;
        }
        assert!(n >= 3, "{mode:?}");
        assert!(r.try_claim(8).is_none());
        recv(&r).unwrap();
        assert!(
            send(&r, &[0; 8], 0),
            "{mode:?}: space freed by a receive is reusable"
        );
    }
}

#[test]
fn counters_count_per_side() {
    let r = Ring::new_heap(1024, Mode::Spsc).unwrap();
    send(&r, b"abc", 0);
    send(&r, b"de", 0);
    recv(&r);
    assert_eq!(r.counters(), [2, 5, 1, 3, 0, 0]);
    r.set_metrics_enabled(false);
    send(&r, b"f", 0);
    assert_eq!(r.counters(), [2, 5, 1, 3, 0, 0]);
    r.reset_counters();
    assert_eq!(r.counters(), [0; 6]);
}

#[test]
fn single_consumer_publishes_freed_space_in_batches_and_when_drained() {
    let r = Ring::new_heap(1 << 12, Mode::Spsc).unwrap(); // batch: 256 bytes
    let mut sent = 0u32;
    while send(&r, &[1; 48], sent) {
        sent += 1;
    }
    // One 64-byte record freed: less than a batch, not yet visible to producers.
    assert_eq!(recv(&r).unwrap().1, 0);
    assert!(r.try_claim(48).is_none(), "published in batches");
    // Four more make a batch: visible.
    for i in 1..5 {
        assert_eq!(recv(&r).unwrap().1, i);
    }
    assert!(send(&r, &[2; 48], sent));
    // Draining publishes everything, so the whole ring is free again.
    while recv(&r).is_some() {}
    assert_eq!(r.used_bytes(), 0);
}

#[test]
fn a_sleeping_producer_gets_space_at_once() {
    let r = Ring::new_heap(1 << 12, Mode::Spsc).unwrap();
    while send(&r, &[1; 48], 0) {}
    // A producer announces it is asleep waiting for space ...
    r.ctrl().space.0.sleepers.store(1, Ordering::SeqCst);
    // ... so a single release is published immediately.
    recv(&r).unwrap();
    assert!(r.try_claim(48).is_some());
}

/// Polls `n` times the way a channel does after a failed attempt; returns
/// how often this thread yielded to a stalled peer.
fn yields_over(n: u32, note: impl Fn()) -> u64 {
    let before = super::stall::yields_on_this_thread();
    for _ in 0..n {
        note();
    }
    super::stall::yields_on_this_thread() - before
}

#[test]
fn receivers_yield_to_a_sender_that_does_not_publish_its_claim() {
    for mode in [Mode::Mpsc, Mode::Mpmc] {
        let r = Ring::new_heap(1024, mode).unwrap();
        let unfinished = r.try_claim(10).unwrap();
        assert!(send(&r, b"behind it", 2));
        assert!(recv(&r).is_none(), "{mode:?}: in order, so nothing to read");
        let n = 4 * super::stall::STALL_POLLS;
        assert!(yields_over(n, || r.note_receive_block()) >= 2, "{mode:?}");
        assert!(r.commit(unfinished, 1));
        assert_eq!(recv(&r).unwrap().1, 1, "{mode:?}");
        assert_eq!(recv(&r).unwrap().1, 2, "{mode:?}");
        // Drained: an idle ring has no stalled peer (and yields only by
        // chance, after stall::IDLE_POLLS failed polls).
        assert!(recv(&r).is_none());
        assert_eq!(yields_over(n, || r.note_receive_block()), 0, "{mode:?}");
    }
}

#[test]
fn senders_yield_to_a_receiver_that_does_not_release_the_oldest_record() {
    for mode in [Mode::Spmc, Mode::Mpmc] {
        let r = Ring::new_heap(256, mode).unwrap();
        assert!(send(&r, &[1; 10], 1));
        let held = r.try_read(u32::MAX).unwrap().unwrap();
        while send(&r, &[2; 10], 2) {}
        while recv(&r).is_some() {}
        assert!(
            r.try_claim(10).is_none(),
            "{mode:?}: full behind the held record"
        );
        let n = 4 * super::stall::STALL_POLLS;
        assert!(yields_over(n, || r.note_send_block()) >= 2, "{mode:?}");
        r.release(held);
        assert!(recv(&r).is_none()); // frees on drain
        assert!(send(&r, &[3; 10], 3), "{mode:?}");
    }
}

#[test]
fn single_producer_single_consumer_rings_never_find_a_stalled_peer() {
    let r = Ring::new_heap(256, Mode::Spsc).unwrap();
    while send(&r, &[1; 10], 1) {}
    let n = 4 * super::stall::STALL_POLLS;
    assert_eq!(yields_over(n, || r.note_send_block()), 0);
    while recv(&r).is_some() {}
    assert_eq!(yields_over(n, || r.note_receive_block()), 0);
}

#[test]
fn a_consumer_reads_ahead_only_after_a_streak_without_finding_the_ring_empty() {
    let streak = |r: &Ring| r.ctrl().consumer.0.streak.load(Ordering::Relaxed);
    let r = Ring::new_heap(1 << 16, Mode::Spsc).unwrap();
    for i in 0..READ_AHEAD_AFTER + 10 {
        r.read_ahead(u64::from(i) * 80);
    }
    assert_eq!(
        streak(&r),
        READ_AHEAD_AFTER,
        "counts up to the threshold, then stays"
    );
    r.note_receive_block();
    assert_eq!(streak(&r), 0, "finding the ring empty starts over");
    // Multi-producer or multi-consumer rings never read ahead.
    for mode in [Mode::Spmc, Mode::Mpsc, Mode::Mpmc] {
        let r = Ring::new_heap(1 << 16, mode).unwrap();
        r.read_ahead(0);
        assert_eq!(streak(&r), 0, "{mode:?}");
    }
}

#[test]
fn a_claim_asks_only_for_free_lines_of_a_next_record_as_long_as_itself() {
    let rec = 4096 + 16;
    let end = 10 * 4096 + 16; // the next header sits in the line at 40960
    let lines = write_ahead_lines(end, rec, u64::MAX);
    assert_eq!(lines.start, 10 * 4096 + 64, "skips the next header's line");
    assert_eq!(lines.end, end + rec, "a next record as long as this one");
    // Never past the space known to be free: a consumer may still read it.
    assert_eq!(write_ahead_lines(end, rec, end + 1000).end, end + 1000);
    let none = write_ahead_lines(end, rec, end);
    assert!(none.is_empty(), "{none:?}");
    // Long records: only the first WRITE_AHEAD bytes.
    assert_eq!(write_ahead_lines(0, 1 << 20, u64::MAX).end, WRITE_AHEAD);
    // Short records: nothing (the hardware prefetcher keeps up).
    assert!(write_ahead_lines(end, WRITE_AHEAD_MIN - 16, u64::MAX).is_empty());
    assert!(!write_ahead_lines(end, WRITE_AHEAD_MIN, u64::MAX).is_empty());
}

#[test]
fn only_single_producer_rings_write_ahead() {
    for mode in MODES {
        let r = Ring::new_heap(1 << 16, mode).unwrap();
        let expected = !mode.multi_producer() && super::ahead::cpu_prefetches_for_write();
        assert_eq!(r.writes_ahead, expected, "{mode:?}");
        // Claims that write ahead, across the wrap, stay correct.
        for i in 0..100u32 {
            let msg = vec![i as u8; 3000 + i as usize];
            assert!(send(&r, &msg, i), "{mode:?}");
            assert_eq!(recv(&r), Some((msg, i)), "{mode:?}");
        }
    }
}

#[test]
fn a_producer_with_a_stale_tail_behind_head_checks_room_without_underflow() {
    // Several producers: one loads `tail`, others claim past it and the
    // consumers free past it before it checks for room.
    for mode in [Mode::Mpsc, Mode::Mpmc] {
        let r = Ring::new_heap(1024, mode).unwrap();
        r.ctrl().head.0.store(4096, Ordering::SeqCst);
        r.ctrl().producer.0.head_cache.store(4096, Ordering::SeqCst);
        assert!(r.has_room(0, 64, true), "{mode:?}");
        assert!(r.has_room_slow(0, 64), "{mode:?}");
    }
}

#[test]
fn a_claim_that_does_not_refresh_trusts_the_cached_head() {
    for mode in MODES {
        let r = Ring::new_heap(1024, mode).unwrap();
        while send(&r, &[1; 100], 1) {} // full; the cached head is now fresh
        while recv(&r).is_some() {} // space comes back (the cache does not know)
                                    // Multi-consumer rings free in batches; hand everything back now.
        r.free_for_waiting_producer();
        assert!(r.try_claim_refreshing(100, false).is_none(), "{mode:?}");
        let c = r.try_claim_refreshing(100, true);
        assert!(c.is_some(), "{mode:?}: a refreshing claim reads head");
        r.cancel(c.unwrap());
        // Refreshed: now the cache knows too.
        assert!(r.try_claim_refreshing(100, false).is_some(), "{mode:?}");
    }
}

#[test]
fn only_multi_consumer_tracked_rings_move_head_per_message() {
    for mode in MODES {
        let r = Ring::new_heap(1024, mode).unwrap();
        assert!(!r.head_moves_per_message(), "{mode:?} untracked");
    }
}
