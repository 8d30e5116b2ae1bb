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
//!
//! The `c_*` paths make the very calls a C program makes (the exported
//! `psyne_*` functions), and `rtrb` / `crossbeam` are the peers' same-thread
//! push+pop, for the instruction budget docs/PERFORMANCE.md compares.

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
        "c_copy" | "c_channel" | "c_side" | "c_side_copy" => c_api(&what, n),
        // A receive that finds the channel empty (a poller's loop).
        "poll" => {
            let mut rx = ch.consumer().unwrap();
            for _ in 0..n {
                black_box(rx.try_recv_into(&mut buf).is_err());
            }
        }
        "c_poll" => c_poll(n),
        "c_fused" => c_fused(n),
        "rtrb" => {
            let (mut tx, mut rx) = rtrb::RingBuffer::<[u8; 64]>::new((1 << 20) / 64);
            for _ in 0..n {
                tx.push(*black_box(&msg)).unwrap();
                black_box(rx.pop().unwrap());
            }
        }
        // MPMC through a Channel handle (no side lock: both sides multi).
        "mpmc" => {
            let ch = Channel::open(
                "memory://hotpath-mpmc",
                1 << 20,
                Mode::Mpmc,
                ChannelType::Multi,
            )
            .unwrap();
            for _ in 0..n {
                ch.try_send(black_box(&msg), 1).unwrap();
                black_box(ch.try_recv_into(&mut buf).unwrap());
            }
        }
        "array_queue" => {
            let q = crossbeam_queue::ArrayQueue::<[u8; 64]>::new((1 << 20) / 64);
            for _ in 0..n {
                q.push(*black_box(&msg)).unwrap();
                black_box(q.pop().unwrap());
            }
        }
        "crossbeam" => {
            let (tx, rx) = crossbeam_channel::bounded::<[u8; 64]>((1 << 20) / 64);
            for _ in 0..n {
                tx.try_send(*black_box(&msg)).unwrap();
                black_box(rx.try_recv().unwrap());
            }
        }
        _ => {
            eprintln!(
                "usage: hotpath copy|reserve|channel|c_copy|c_channel|c_side|c_side_copy|c_fused|poll|c_poll|rtrb|crossbeam|mpmc|array_queue [N]"
            );
            std::process::exit(2);
        }
    }
}

/// An SPSC MULTI channel of `size` bytes made through the C ABI.
fn c_channel(uri: &std::ffi::CStr, size: usize) -> *mut psyne::ffi::psyne_channel_t {
    use psyne::ffi::*;
    let mut ch = std::ptr::null_mut();
    // SAFETY: a NUL-terminated URI and a local out-pointer.
    let rc = unsafe {
        psyne_channel_create(
            uri.as_ptr(),
            size,
            PSYNE_MODE_SPSC,
            PSYNE_TYPE_MULTI,
            &mut ch,
        )
    };
    assert_eq!(rc, psyne_error_t::PSYNE_OK);
    ch
}

/// Zero-copy 64-byte messages through side handles, one call per message
/// and side: `psyne_producer_send_and_reserve` sends the frame filled last
/// round and reserves the next; `psyne_consumer_release_and_receive`
/// releases the view read last round and takes the next.
fn c_fused(n: u64) {
    use psyne::ffi::*;
    use std::ptr::null_mut;
    let ok = |rc: psyne_error_t| assert_eq!(rc, psyne_error_t::PSYNE_OK);
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    let (mut len, mut ty) = (0usize, 0u32);
    let (mut out, mut view) = (null_mut::<std::ffi::c_void>(), std::ptr::null());
    let (mut tm, mut rm) = (null_mut::<psyne_message_t>(), null_mut::<psyne_message_t>());
    // SAFETY: every pointer passed is a live handle made here or a local.
    unsafe {
        let ch = c_channel(c"memory://hotpath-fused", 1 << 20);
        let (mut p, mut c) = (null_mut(), null_mut());
        ok(psyne_producer_new(ch, &mut p));
        ok(psyne_consumer_new(ch, &mut c));
        ok(psyne_producer_reserve(p, 64, &mut tm, &mut out));
        for _ in 0..n {
            std::ptr::copy_nonoverlapping(black_box(&msg).as_ptr().cast(), out, 64);
            ok(psyne_producer_send_and_reserve(
                p,
                1,
                64,
                0,
                null_mut(),
                &mut tm,
                &mut out,
            ));
            ok(psyne_consumer_release_and_receive(
                c,
                0,
                null_mut(),
                &mut rm,
                &mut view,
                &mut len,
                &mut ty,
            ));
            std::ptr::copy_nonoverlapping(view, buf.as_mut_ptr().cast(), 64);
            black_box(&buf);
        }
        ok(psyne_message_cancel(tm));
        ok(psyne_message_release(rm));
        ok(psyne_producer_free(p));
        ok(psyne_consumer_free(c));
        ok(psyne_channel_destroy(ch));
    }
}

/// Receives through a C consumer side handle that find the channel empty.
fn c_poll(n: u64) {
    use psyne::ffi::*;
    use std::ptr::null_mut;
    let mut buf = [0u8; 64];
    let (mut len, mut ty) = (0usize, 0u32);
    // SAFETY: every pointer passed is a live handle made here or a local.
    unsafe {
        let ch = c_channel(c"memory://hotpath-poll", 4096);
        let mut c = null_mut();
        assert_eq!(psyne_consumer_new(ch, &mut c), psyne_error_t::PSYNE_OK);
        for _ in 0..n {
            let rc = psyne_consumer_receive_data(
                c,
                buf.as_mut_ptr().cast(),
                64,
                &mut len,
                &mut ty,
                0,
                null_mut(),
            );
            black_box(rc);
        }
        psyne_consumer_free(c);
        psyne_channel_destroy(ch);
    }
}

/// 64-byte messages through the C ABI: `c_copy` (psyne_send_data /
/// psyne_receive_data on a channel handle), `c_channel` (zero copy through the
/// channel handle), `c_side` (zero copy through side handles), `c_side_copy`
/// (copying through side handles).
fn c_api(what: &str, n: u64) {
    use psyne::ffi::*;
    use std::ptr::null_mut;
    let ok = |rc: psyne_error_t| assert_eq!(rc, psyne_error_t::PSYNE_OK);
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    let (mut len, mut ty) = (0usize, 0u32);
    let (mut data, mut m) = (
        null_mut::<std::ffi::c_void>(),
        null_mut::<psyne_message_t>(),
    );
    // SAFETY: every pointer passed is a live handle made here or a local.
    unsafe {
        let ch = c_channel(c"memory://hotpath-c", 1 << 20);
        let (mut p, mut c) = (null_mut(), null_mut());
        // Decided once: string compares in the loop would be counted.
        let (copy, side) = (what.ends_with("copy"), what.starts_with("c_side"));
        if side {
            ok(psyne_producer_new(ch, &mut p));
            ok(psyne_consumer_new(ch, &mut c));
        }
        for _ in 0..n {
            let src = black_box(&msg).as_ptr().cast();
            match (copy, side) {
                (true, false) => {
                    ok(psyne_send_data(ch, src, 64, 1));
                    ok(psyne_receive_data(
                        ch,
                        buf.as_mut_ptr().cast(),
                        64,
                        &mut len,
                        &mut ty,
                        0,
                    ));
                }
                (true, true) => {
                    ok(psyne_producer_send_data(p, src, 64, 1, 0, null_mut()));
                    ok(psyne_consumer_receive_data(
                        c,
                        buf.as_mut_ptr().cast(),
                        64,
                        &mut len,
                        &mut ty,
                        0,
                        null_mut(),
                    ));
                }
                _ => {
                    if side {
                        ok(psyne_producer_reserve(p, 64, &mut m, &mut data));
                    } else {
                        ok(psyne_message_reserve(ch, 64, &mut m));
                        ok(psyne_message_get_data(m, &mut data, &mut len));
                    }
                    std::ptr::copy_nonoverlapping(src, data, 64);
                    ok(psyne_message_send(m, 1));
                    if side {
                        let mut view = std::ptr::null();
                        ok(psyne_consumer_receive(
                            c, &mut m, &mut view, &mut len, &mut ty,
                        ));
                        data = view.cast_mut();
                    } else {
                        ok(psyne_message_receive(ch, &mut m, &mut ty));
                        ok(psyne_message_get_data(m, &mut data, &mut len));
                    }
                    std::ptr::copy_nonoverlapping(data, buf.as_mut_ptr().cast(), 64);
                    ok(psyne_message_release(m));
                }
            }
            black_box(&buf);
        }
        ok(psyne_producer_free(p));
        ok(psyne_consumer_free(c));
        ok(psyne_channel_destroy(ch));
    }
}
