//! Property test: arbitrary `ipc://` segment states — ring positions, record
//! headers, side-lock owners, slot tables and their crash-recovery entries —
//! written into a segment file, then attached to, received from, sent to and
//! recovered by a child process. Whatever the state, the child must neither
//! crash (a signal: e.g. an access outside the mapping) nor loop (killed
//! after a time limit); refusing the segment or stopping the channel as
//! corrupt are both fine.
//!
//! Each case runs in a child (this binary re-run with `PSYNE_PROP_ROLE`), so
//! that a crash is a failed case and not a dead test run. A live process —
//! this one, holding slot 0's lock byte — keeps the segment from being
//! treated as abandoned and made anew. `PSYNE_PROPTEST_CASES` sets the number
//! of cases (default 40).

use proptest::prelude::*;
use psyne::{Channel, ChannelType, Mode};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

// Layout (docs/IPC.md, "Segment layout"; layout version 5).
const RING_OFFSET: u64 = 143360;
const CONTROL: u64 = 2816;
const SLOTS: u64 = 4096;
const SLOT_SIZE: u64 = 2176;
const SLOT_LOCK_BASE: i64 = 64;

fn seg_file(name: &str) -> String {
    format!("/dev/shm/psyne-{name}")
}

#[derive(Debug, Clone)]
struct Entry {
    index: u64, // 0..128: claims then views
    pos: u64,
    word: u64,
}

#[derive(Debug, Clone)]
struct Slot {
    index: u64, // 1..64 (slot 0 is the live keeper)
    state: u32,
    pid: u32,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Record {
    at: u64, // multiple of 16 below the capacity
    state: u32,
    len: u32,
    flags: u32,
}

#[derive(Debug, Clone)]
struct State {
    mode: u32,
    cap_log: u32,
    head: u64,
    read: u64,
    tail: u64,
    producer_lock: u32,
    consumer_lock: u32,
    keeper_pid: u32,
    records: Vec<Record>,
    slots: Vec<Slot>,
}

fn position() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u64..64).prop_map(|k| k * 16),
        (0u64..1 << 20).prop_map(|p| p & !15),
        any::<u64>(),
    ]
}

fn pid() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(std::process::id()), 1u32..4_000_000]
}

fn length() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..200, Just(u32::MAX), Just(0x7fff_fff0), any::<u32>()]
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        0u64..128,
        position(),
        prop_oneof![
            (0u64..4096, 0u64..8).prop_map(|(size, flags)| size << 3 | flags),
            any::<u64>()
        ],
    )
        .prop_map(|(index, pos, word)| Entry { index, pos, word })
}

fn state() -> impl Strategy<Value = State> {
    (
        (0u32..4, 6u32..13),
        (position(), position(), position()),
        (pid(), pid(), pid()),
        prop::collection::vec(
            (0u64..512, 0u32..16, length(), any::<u32>()).prop_map(|(k, state, len, flags)| {
                Record {
                    at: k * 16,
                    state: if state < 10 { state } else { state * 0x1111 },
                    len,
                    flags,
                }
            }),
            0..12,
        ),
        prop::collection::vec(
            (
                1u64..64,
                0u32..4,
                pid(),
                prop::collection::vec(entry(), 0..4),
            )
                .prop_map(|(index, state, pid, entries)| Slot {
                    index,
                    state,
                    pid,
                    entries,
                }),
            0..4,
        ),
    )
        .prop_map(
            |((mode, cap_log), (head, read, tail), (pl, cl, keeper), records, slots)| State {
                mode,
                cap_log,
                head,
                read,
                tail,
                producer_lock: pl,
                consumer_lock: cl,
                keeper_pid: keeper,
                records,
                slots,
            },
        )
}

/// Writes `s` as a complete, ready segment (valid header) named `name`.
fn write_segment(name: &str, s: &State) -> std::fs::File {
    let cap = 1u64 << s.cap_log;
    let total = RING_OFFSET + CONTROL + cap;
    let path = seg_file(name);
    let _ = std::fs::remove_file(&path);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    f.set_len(total).unwrap();
    let w32 = |off: u64, v: u32| f.write_all_at(&v.to_le_bytes(), off).unwrap();
    let w64 = |off: u64, v: u64| f.write_all_at(&v.to_le_bytes(), off).unwrap();
    // Header.
    w64(0, u64::from_le_bytes(*b"PSYNEIPC"));
    w32(8, 5);
    w32(12, 1);
    w64(16, RING_OFFSET);
    w64(24, total);
    w64(32, cap);
    w32(40, s.mode);
    w32(44, 1);
    w32(48, 1);
    w32(52, 64);
    w32(56, 64);
    w32(60, CONTROL as u32);
    // Slot 0: the keeper (this process holds its lock byte).
    w32(SLOTS, 1);
    w32(SLOTS + 4, s.keeper_pid.max(1));
    for slot in &s.slots {
        let base = SLOTS + slot.index * SLOT_SIZE;
        w32(base, slot.state);
        w32(base + 4, slot.pid);
        for e in &slot.entries {
            w64(base + 128 + e.index * 16, e.pos);
            w64(base + 136 + e.index * 16, e.word);
        }
    }
    // Ring control block and records.
    w64(RING_OFFSET, s.tail);
    w64(RING_OFFSET + 8, s.head);
    w32(RING_OFFSET + 16, s.producer_lock);
    w64(RING_OFFSET + 128, s.read);
    w32(RING_OFFSET + 136, s.consumer_lock);
    w64(RING_OFFSET + 256, s.head);
    for r in &s.records {
        let at = RING_OFFSET + CONTROL + (r.at & (cap - 1));
        w32(at, r.state);
        w32(at + 4, r.len);
        w32(at + 8, 1);
        w32(at + 12, r.flags);
    }
    f
}

fn lock_byte(f: &std::fs::File, byte: i64) {
    // SAFETY: flock is plain data; all-zero is valid.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = byte as _;
    fl.l_len = 1;
    // SAFETY: a valid descriptor and flock.
    assert_eq!(
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) },
        0
    );
}

/// The child: attach, receive, send, wait (which runs the liveness check and
/// so recovery again), receive again. Any error is fine.
fn exercise(name: &str) {
    let Ok(ch) = Channel::open(&format!("ipc://{name}"), 0, Mode::Spsc, ChannelType::Multi) else {
        return;
    };
    let mut buf = [0u8; 256];
    for _ in 0..8 {
        if let Ok(m) = ch.try_recv() {
            let _ = m.iter().map(|&b| b as u64).sum::<u64>(); // touch every byte
        }
        let _ = ch.try_recv_into(&mut buf);
        let _ = ch.try_send(b"probe", 1);
        if let Ok(mut r) = ch.try_reserve(40) {
            r.fill(3);
            let _ = r.send(2);
        }
    }
    let _ = ch.recv_timeout(Duration::from_millis(120));
    let _ = ch.send_timeout(&[9; 100], 1, Duration::from_millis(20));
    while ch.try_recv().is_ok() {}
    let _ = ch.metrics();
    let _ = ch.queued_bytes();
}

#[test]
fn child_entry() {
    if let Ok(name) = std::env::var("PSYNE_PROP_ROLE") {
        exercise(&name);
    }
}

fn run_case(n: u64, s: &State) -> Result<(), TestCaseError> {
    let name = format!("prop{}-{n}", std::process::id());
    let keeper = write_segment(&name, s);
    lock_byte(&keeper, SLOT_LOCK_BASE);
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args(["child_entry", "--exact", "--test-threads", "1"])
        .env("PSYNE_PROP_ROLE", &name)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = c.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    drop(keeper);
    let _ = std::fs::remove_file(seg_file(&name));
    match status {
        None => Err(TestCaseError::fail("the child looped (killed after 20 s)")),
        Some(st) if !st.success() => {
            Err(TestCaseError::fail(format!("the child died: {st}\n{err}")))
        }
        Some(_) => Ok(()),
    }
}

#[test]
fn arbitrary_segments_never_crash_or_loop() {
    let cases = std::env::var("PSYNE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let counter = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(&state(), |s| {
            run_case(
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                &s,
            )
        })
        .unwrap();
}
