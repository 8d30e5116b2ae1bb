//! Blocking calls: they poll for a short budget, then sleep until woken —
//! messages are caught in either phase, and an idle waiter uses no CPU.

use psyne::{Channel, ChannelType, Error, Mode};
use std::time::{Duration, Instant};

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock id is a constant Linux has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn channel(name: &str, mode: Mode) -> Channel {
    Channel::open(
        &format!("memory://blocking-{name}"),
        1 << 12,
        mode,
        ChannelType::Multi,
    )
    .unwrap()
}

#[test]
fn an_idle_receiver_sleeps_instead_of_spinning() {
    for mode in [Mode::Spsc, Mode::Mpmc] {
        let ch = channel(&format!("idle-rx-{mode:?}"), mode);
        let wait = Duration::from_millis(400);
        let rx = ch.clone();
        let (result, cpu) = std::thread::spawn(move || {
            let before = thread_cpu_time();
            let r = rx.recv_timeout(wait).map(|m| m.len());
            (r, thread_cpu_time() - before)
        })
        .join()
        .unwrap();
        assert_eq!(result, Err(Error::Timeout));
        // A waiter that kept polling would have used about all of `wait`.
        assert!(
            cpu < wait / 4,
            "{mode:?}: {cpu:?} of CPU in a {wait:?} wait"
        );
    }
}

#[test]
fn an_idle_sender_on_a_full_ring_sleeps_instead_of_spinning() {
    let ch = channel("idle-tx", Mode::Spsc);
    while ch.try_send(&[0; 100], 1).is_ok() {}
    let wait = Duration::from_millis(400);
    let tx = ch.clone();
    let (result, cpu) = std::thread::spawn(move || {
        let before = thread_cpu_time();
        let r = tx.send_timeout(&[0; 100], 1, wait);
        (r, thread_cpu_time() - before)
    })
    .join()
    .unwrap();
    assert_eq!(result, Err(Error::Timeout));
    assert!(cpu < wait / 4, "{cpu:?} of CPU in a {wait:?} wait");
}

#[test]
fn a_blocked_receiver_gets_messages_sent_while_it_polls_and_while_it_sleeps() {
    let ch = channel("phases", Mode::Spsc);
    let delays = [0u64, 5, 50, 2_000, 30_000]; // µs: polling budget is 20 µs
    let tx = ch.clone();
    let sender = std::thread::spawn(move || {
        for (i, &d) in delays.iter().enumerate() {
            let start = Instant::now();
            while start.elapsed() < Duration::from_micros(d) {
                std::hint::spin_loop();
            }
            tx.send(&[i as u8; 10], i as u32).unwrap();
        }
    });
    for i in 0..delays.len() {
        let m = ch.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!((m.msg_type(), &m[..]), (i as u32, &[i as u8; 10][..]));
    }
    sender.join().unwrap();
}

#[test]
fn the_spin_option_sets_each_handles_polling_phase() {
    let default = channel("spin-default", Mode::Spsc);
    assert_eq!(default.spin(), Duration::from_micros(20));
    let uri = Channel::builder("memory://blocking-spin?spin=0")
        .build()
        .unwrap();
    assert_eq!(uri.spin(), Duration::ZERO);
    // The builder wins over the URI.
    let both = Channel::builder("memory://blocking-spin?spin=0")
        .spin(Duration::from_millis(2))
        .build()
        .unwrap();
    assert_eq!(both.spin(), Duration::from_millis(2));
    let too_long = Channel::builder("memory://blocking-spin")
        .spin(Duration::from_secs(2))
        .build();
    assert!(matches!(too_long, Err(Error::InvalidArgument(m)) if m.contains("1 s")));
    // Sleeping at once still receives, both ways.
    let tx = uri.clone();
    let sender = std::thread::spawn(move || {
        for i in 0..100u32 {
            tx.send(&i.to_le_bytes(), i).unwrap();
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let mut rx = uri.consumer().unwrap();
    for i in 0..100u32 {
        let m = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!((m.msg_type(), &m[..]), (i, &i.to_le_bytes()[..]));
    }
    sender.join().unwrap();
}

#[test]
fn every_handle_has_the_blocking_calls() {
    let ch = channel("api", Mode::Spsc);
    let mut buf = [0u8; 16];
    // Channel handles.
    ch.send(b"a", 1).unwrap();
    assert_eq!(ch.recv_into(&mut buf).unwrap(), (1, 1));
    assert_eq!(
        ch.recv_into_timeout(&mut buf, Duration::from_millis(1)),
        Err(Error::Timeout)
    );
    drop(ch.reserve_timeout(8, Duration::from_secs(5)).unwrap());
    // Exclusive sides.
    let (mut tx, mut rx) = (ch.producer().unwrap(), ch.consumer().unwrap());
    let mut slot = tx.reserve(3).unwrap();
    slot.copy_from_slice(b"xyz");
    slot.send(2).unwrap();
    let m = rx.recv().unwrap();
    assert_eq!((&m[..], m.msg_type()), (&b"xyz"[..], 2));
    drop(m);
    tx.reserve_timeout(1, Duration::from_secs(5))
        .unwrap()
        .send(3)
        .unwrap();
    assert_eq!(rx.recv_into(&mut buf).unwrap(), (1, 3));
    assert_eq!(
        rx.recv_into_timeout(&mut buf, Duration::from_millis(1)),
        Err(Error::Timeout)
    );
    while tx.try_send(&[0; 100], 4).is_ok() {}
    assert!(matches!(
        tx.reserve_timeout(100, Duration::from_millis(1)),
        Err(Error::Timeout)
    ));
}
