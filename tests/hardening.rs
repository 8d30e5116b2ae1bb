//! Attacks on `ipc://` and on the channel's life cycle (issue "Hardening"):
//! a full `/dev/shm`, crafted segments, callbacks turned off under traffic,
//! fork, dead slots. Each test failed on the code before its fix.
//!
//! Some tests re-run this binary as a child with `PSYNE_HARDEN_ROLE` set; the
//! `child_entry` test then plays the role and reports on stdout with lines
//! starting `@@`. Without the variable `child_entry` does nothing.
//!
//! No test asserts wall-clock speed; timeouts only stop a wedged run.

use psyne::{Channel, ChannelType, Error, Mode};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn uniq(tag: &str) -> String {
    format!("h{}-{tag}", std::process::id())
}

fn seg_file(name: &str) -> String {
    format!("/dev/shm/psyne-{name}")
}

fn role() -> String {
    std::env::var("PSYNE_HARDEN_ROLE").unwrap_or_default()
}

fn report(s: &str) {
    println!("@@{s}");
}

/// This binary re-run as `role`, through `prefix` (a wrapper command and its
/// arguments, or nothing).
fn child(prefix: &[&str], role: &str, env: &[(&str, &str)]) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if prefix.is_empty() {
        Command::new(&exe)
    } else {
        let mut c = Command::new(prefix[0]);
        c.args(&prefix[1..]).arg(&exe);
        c
    };
    cmd.args([
        "child_entry",
        "--exact",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("PSYNE_HARDEN_ROLE", role);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `cmd` to the end, killing it after `limit` (a wedged child is a
/// failure, not a hung test run).
fn run_within(mut cmd: Command, limit: Duration) -> Output {
    let mut c = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while c.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = c.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    c.wait_with_output().unwrap()
}

const CHILD_LIMIT: Duration = Duration::from_secs(60);

fn reports(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.find("@@").map(|i| l[i + 2..].to_string()))
        .collect()
}

#[test]
fn child_entry() {
    match role().as_str() {
        "" => {}
        "small-shm" => small_shm_child(),
        "hold-view" => hold_view_child(),
        "corrupt-release" => corrupt_release_child(),
        "fork-destroy" => fork_destroy_child(),
        "hold-init-lock" => {
            // Another process holding the segment's init lock (byte 0) for ever.
            use std::os::unix::io::AsRawFd;
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(seg_file(&std::env::var("NAME").unwrap()))
                .unwrap();
            // SAFETY: flock is plain data; all-zero is valid.
            let mut fl: libc::flock = unsafe { std::mem::zeroed() };
            fl.l_type = libc::F_WRLCK as _;
            fl.l_whence = libc::SEEK_SET as _;
            fl.l_len = 1;
            // SAFETY: a valid descriptor and flock.
            assert_eq!(
                unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) },
                0
            );
            report("LOCKED");
            std::thread::sleep(Duration::from_secs(60));
        }
        "attach-any" => {
            let name = std::env::var("NAME").unwrap();
            match Channel::open(&format!("ipc://{name}"), 0, Mode::Spsc, ChannelType::Multi) {
                Ok(ch) => {
                    ch.try_send(b"hi", 1).unwrap();
                    report("OPENED");
                }
                Err(e) => report(&format!("REFUSED {e}")),
            }
        }
        "attach-crafted" => {
            let name = std::env::var("NAME").unwrap();
            match Channel::open(&format!("ipc://{name}"), 0, Mode::Spsc, ChannelType::Multi) {
                Ok(ch) => {
                    let r = ch.recv_timeout(Duration::from_millis(200)).map(|m| m.len());
                    report(&format!("OPENED stopped={} recv={r:?}", ch.is_stopped()));
                }
                Err(e) => report(&format!("REFUSED {e}")),
            }
            if std::path::Path::new(&seg_file(&name)).exists() {
                let (head, read) = (peek_u64(&name, HEAD) & !1, peek_u64(&name, READ));
                assert!(head <= read, "head {head} moved past read {read}");
            }
        }
        other => panic!("unknown role {other}"),
    }
}

// ---------------------------------------------------------------------------
// 1. A full or small /dev/shm is an error at create, never SIGBUS.
// ---------------------------------------------------------------------------

/// A wrapper that runs a command in a private mount namespace with a 1 MiB
/// tmpfs on /dev/shm, if this machine permits one.
fn small_shm_wrapper() -> Option<Vec<&'static str>> {
    const SCRIPT: &str = "mount -t tmpfs -o size=1m psyne-test /dev/shm && exec \"$@\"";
    for unshare in [
        &["unshare", "-m", "--propagation", "private"][..],
        &["unshare", "-r", "-m", "--propagation", "private"][..],
    ] {
        let mut probe = Command::new(unshare[0]);
        probe
            .args(&unshare[1..])
            .args(["sh", "-c", SCRIPT, "sh", "true"]);
        if probe.output().is_ok_and(|o| o.status.success()) {
            let mut v = unshare.to_vec();
            v.extend(["sh", "-c", SCRIPT, "sh"]);
            return Some(v);
        }
    }
    None
}

#[test]
fn a_ring_larger_than_dev_shm_is_refused_at_create_not_sigbus() {
    let Some(wrapper) = small_shm_wrapper() else {
        eprintln!(
            "SKIPPED a_ring_larger_than_dev_shm_is_refused_at_create_not_sigbus: \
             no private mount namespace here (`unshare -m` and `unshare -rm` both failed)"
        );
        return;
    };
    let out = run_within(child(&wrapper, "small-shm", &[]), CHILD_LIMIT);
    let r = reports(&out);
    assert!(
        out.status.success() && r.iter().any(|l| l == "OK"),
        "child {:?}, reports {r:?}, stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs on a 1 MiB /dev/shm of its own.
fn small_shm_child() {
    // A 4 MiB ring: before the fix it was created sparse and the sends below
    // died with SIGBUS after about 900 KB.
    match Channel::open("ipc://big", 4 << 20, Mode::Spsc, ChannelType::Multi) {
        Ok(ch) => {
            let buf = vec![7u8; 1000];
            while ch.try_send(&buf, 1).is_ok() {}
            report("BAD created a 4 MiB ring on a 1 MiB /dev/shm");
            panic!("created");
        }
        Err(Error::OutOfMemory(m)) => {
            assert!(m.contains("ipc://big") && m.contains("no room"), "{m}");
        }
        Err(e) => panic!("expected OutOfMemory, got {e}"),
    }
    assert!(
        !std::path::Path::new(&seg_file("big")).exists(),
        "a failed create left its file"
    );
    // A ring larger than any /dev/shm.
    assert!(Channel::open("ipc://huge", 1 << 40, Mode::Mpmc, ChannelType::Multi).is_err());
    assert!(!std::path::Path::new(&seg_file("huge")).exists());

    // A ring that fits is fully usable: fill it, drain it.
    let ch = Channel::open("ipc://fits", 256 << 10, Mode::Spsc, ChannelType::Multi).unwrap();
    let buf = vec![9u8; 1000];
    let mut n = 0;
    while ch.try_send(&buf, 1).is_ok() {
        n += 1;
    }
    assert!(n > 200, "{n}");
    for _ in 0..n {
        assert_eq!(ch.try_recv().unwrap().len(), 1000);
    }
    // Fill what is left of /dev/shm, then create: refused, nothing left behind.
    let filler = std::fs::File::create("/dev/shm/filler").unwrap();
    let mut room = 1u64 << 20;
    while room >= 4096 {
        // SAFETY: a valid open descriptor; no memory is passed.
        let r = unsafe {
            libc::posix_fallocate(
                std::os::unix::io::AsRawFd::as_raw_fd(&filler),
                0,
                (std::fs::metadata("/dev/shm/filler").unwrap().len() + room) as libc::off_t,
            )
        };
        if r != 0 {
            room /= 2;
        }
    }
    match Channel::open("ipc://late", 64 << 10, Mode::Mpsc, ChannelType::Multi) {
        Err(Error::OutOfMemory(_)) => {}
        Err(e) => panic!("expected OutOfMemory, got {e}"),
        Ok(ch) => {
            let buf = vec![1u8; 1000];
            while ch.try_send(&buf, 1).is_ok() {}
            report("BAD created a ring on a full /dev/shm");
            panic!("created");
        }
    }
    assert!(!std::path::Path::new(&seg_file("late")).exists());
    // The existing channel still works.
    ch.try_send(b"still", 2).unwrap();
    assert_eq!(&ch.try_recv().unwrap()[..], b"still");
    report("OK");
}

// ---------------------------------------------------------------------------
// 2. Lengths read from shared memory are checked on the free and recovery
//    paths too.
// ---------------------------------------------------------------------------

/// Byte offsets in a segment (docs/IPC.md, "Segment layout").
const RING_OFFSET: u64 = 143360;
const CONTROL: u64 = 2816;
const READ: u64 = RING_OFFSET + 128;
const HEAD: u64 = RING_OFFSET + 256;
/// File offset of the record header at position `pos` (ring of `cap` bytes).
fn record_at(pos: u64, cap: u64) -> u64 {
    RING_OFFSET + CONTROL + (pos & (cap - 1))
}

fn peek_u64(name: &str, off: u64) -> u64 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(seg_file(name)).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, off).unwrap();
    u64::from_le_bytes(b)
}

fn poke_u32(name: &str, off: u64, v: u32) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(seg_file(name))
        .unwrap();
    f.write_all_at(&v.to_le_bytes(), off).unwrap();
}

fn env_mode() -> Mode {
    match std::env::var("MODE").unwrap().as_str() {
        "spmc" => Mode::Spmc,
        "mpmc" => Mode::Mpmc,
        "spsc" => Mode::Spsc,
        _ => Mode::Mpsc,
    }
}

const CAP: u64 = 64 << 10;
/// Length a crafted header claims: far past the end of the ring.
const HUGE: u32 = 0x7fff_fff0;

/// Holds the first of two 100-byte messages as a view until killed.
fn hold_view_child() {
    let name = std::env::var("NAME").unwrap();
    let ch = Channel::open(
        &format!("ipc://{name}"),
        CAP as usize,
        env_mode(),
        ChannelType::Multi,
    )
    .unwrap();
    ch.try_send(&[1; 100], 1).unwrap();
    ch.try_send(&[2; 100], 1).unwrap();
    let held = ch.try_recv().unwrap();
    report("HELD");
    std::thread::sleep(Duration::from_secs(60));
    drop(held);
}

/// A dead consumer's view entry names a record whose header now claims a
/// length far past the ring. Attaching runs recovery over it: before the fix
/// it zeroed past the mapping (SIGSEGV inside open) on MPMC and moved `head`
/// past `read` on SPMC.
#[test]
fn recovery_of_a_dead_view_checks_the_record_length() {
    for mode in ["spmc", "mpmc"] {
        let name = uniq(&format!("dead-view-{mode}"));
        // A live user, so that the segment is recovered, not made anew.
        let keep = Channel::open(
            &format!("ipc://{name}"),
            CAP as usize,
            if mode == "spmc" {
                Mode::Spmc
            } else {
                Mode::Mpmc
            },
            ChannelType::Multi,
        )
        .unwrap();
        let mut holder = child(&[], "hold-view", &[("NAME", &name), ("MODE", mode)])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(holder.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("@@HELD") {
            line.clear();
            assert!(
                std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
                "holder exited"
            );
        }
        holder.kill().unwrap();
        holder.wait().unwrap();
        poke_u32(&name, record_at(0, CAP) + 4, HUGE);
        let attach = run_within(
            child(&[], "attach-crafted", &[("NAME", &name)]),
            CHILD_LIMIT,
        );
        let r = reports(&attach);
        drop(keep);
        let _ = std::fs::remove_file(seg_file(&name));
        assert!(
            attach.status.success(),
            "{mode}: the attaching process died or hung: {:?} {r:?}",
            attach.status
        );
        assert!(
            r.iter()
                .any(|l| l.starts_with("REFUSED") && l.contains("corrupt")),
            "{mode}: {r:?}"
        );
    }
}

/// Receives, corrupts the header of a record it released (as another
/// process could), then releases the record in front of it.
fn corrupt_release_child() {
    let name = std::env::var("NAME").unwrap();
    let mode = env_mode();
    let ch = Channel::open(
        &format!("ipc://{name}"),
        CAP as usize,
        mode,
        ChannelType::Multi,
    )
    .unwrap();
    for i in 0..3u8 {
        ch.try_send(&[i; 100], 1).unwrap();
    }
    let a = ch.try_recv().unwrap();
    let b = ch.try_recv().unwrap();
    drop(b); // RELEASED, not freed: `a` is in front
    poke_u32(&name, record_at(128, CAP) + 4, HUGE);
    drop(a); // frees `a`, then finds `b` released with a crafted length
    let (head, read) = (peek_u64(&name, HEAD) & !1, peek_u64(&name, READ));
    assert!(head <= read, "head {head} moved past read {read}");
    assert!(ch.is_stopped(), "the channel goes on over a corrupt record");
    // Receivers may still take the records that check out (the third
    // message), then fail with the reason; none waits for ever.
    let t = Instant::now();
    let r = loop {
        match ch.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => assert_eq!(&m[..], &[2; 100]),
            Err(e) => break e,
        }
    };
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "receive did not return"
    );
    match r {
        Error::Io(m) => assert!(m.contains("corrupt"), "{m}"),
        other => panic!("receive on a corrupt ring: {other:?}"),
    }
    match ch.try_send(b"x", 1) {
        Err(Error::Io(m)) => assert!(m.contains("corrupt"), "{m}"),
        other => panic!("send on a corrupt ring: {other:?}"),
    }
    report("OK");
}

/// A live consumer frees a released record whose header another process
/// rewrote: before the fix, `head` moved past `read` (SPMC: producers then
/// overwrite unread records) or the zeroing ran past the mapping (MPMC).
#[test]
fn freeing_checks_the_length_of_released_records() {
    for mode in ["spmc", "mpmc"] {
        let name = uniq(&format!("free-{mode}"));
        let out = run_within(
            child(&[], "corrupt-release", &[("NAME", &name), ("MODE", mode)]),
            CHILD_LIMIT,
        );
        let _ = std::fs::remove_file(seg_file(&name));
        let r = reports(&out);
        assert!(
            out.status.success() && r.iter().any(|l| l == "OK"),
            "{mode}: {:?} {r:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------
// 3, 4. Receive callbacks turned off under traffic, and from inside.
// ---------------------------------------------------------------------------

/// Runs `f` on a thread; fails if it does not return within `limit`.
fn returns_within(what: &str, limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    assert!(rx.recv_timeout(limit).is_ok(), "{what} did not return");
}

#[test]
fn a_callback_is_turned_off_under_steady_traffic() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let ch = Channel::open(
        "memory://harden-cb-steady",
        1 << 14,
        Mode::Mpsc,
        ChannelType::Multi,
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (tx, stop) = (ch.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = tx.send_timeout(&[5; 64], 1, Duration::from_millis(10));
            }
        })
    };
    // A slow callback: the ring stays full, so the dispatcher never waits.
    ch.set_receive_callback(Some(Box::new(|_: &[u8], _| {
        std::thread::sleep(Duration::from_micros(200))
    })))
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let off = ch.clone();
    returns_within(
        "turning the callback off",
        Duration::from_secs(30),
        move || off.set_receive_callback(None).unwrap(),
    );
    // And dropping the last handle with a callback set, under traffic.
    ch.set_receive_callback(Some(Box::new(|_: &[u8], _| {
        std::thread::sleep(Duration::from_micros(200))
    })))
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let other = Channel::open(
        "memory://harden-cb-steady",
        0,
        Mode::Mpsc,
        ChannelType::Multi,
    )
    .unwrap();
    returns_within("dropping the handle", Duration::from_secs(30), move || {
        drop(ch)
    });
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    drop(other);
}

#[test]
fn a_callback_turned_off_from_inside_is_never_called_again() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    for drop_handle in [false, true] {
        let uri = format!("memory://harden-cb-self-{drop_handle}");
        let ch = Channel::open(&uri, 1 << 16, Mode::Mpmc, ChannelType::Multi).unwrap();
        let n = 1000u32;
        for i in 0..n {
            ch.try_send(&i.to_le_bytes(), 1).unwrap();
        }
        let cb_handle = Channel::open(&uri, 0, Mode::Mpmc, ChannelType::Multi).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let late = Arc::new(AtomicUsize::new(0));
        let off = Arc::new(AtomicBool::new(false));
        let me = std::sync::Mutex::new(Some(cb_handle.clone()));
        // The callback starts counting once this thread has dropped its own
        // handle, so that the callback's drop at call 10 is the last one.
        let armed = Arc::new(AtomicBool::new(false));
        let (c, l, o, a) = (calls.clone(), late.clone(), off.clone(), armed.clone());
        cb_handle
            .set_receive_callback(Some(Box::new(move |_: &[u8], _| {
                while !a.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if o.load(Ordering::SeqCst) {
                    l.fetch_add(1, Ordering::SeqCst);
                }
                if c.fetch_add(1, Ordering::SeqCst) + 1 == 10 {
                    let h = me.lock().unwrap().take().unwrap();
                    if drop_handle {
                        drop(h); // the last handle but `cb_handle` below
                    } else {
                        h.set_receive_callback(None).unwrap();
                    }
                    o.store(true, Ordering::SeqCst);
                }
            })))
            .unwrap();
        if drop_handle {
            drop(cb_handle); // now the callback's clone is the last one
        }
        armed.store(true, Ordering::SeqCst);
        wait_until("ten calls", Duration::from_secs(30), || {
            calls.load(Ordering::SeqCst) >= 10
        });
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(late.load(Ordering::SeqCst), 0, "calls after turning off");
        // Nothing was taken from the ring for the calls that did not happen.
        let mut rest = 0;
        while ch.try_recv().is_ok() {
            rest += 1;
        }
        assert_eq!(rest + calls.load(Ordering::SeqCst), n as usize);
    }
}

// ---------------------------------------------------------------------------
// 10. Slots of dead processes do not count against the limit.
// ---------------------------------------------------------------------------

fn poke_u64(name: &str, off: u64, v: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(seg_file(name))
        .unwrap();
    f.write_all_at(&v.to_le_bytes(), off).unwrap();
}

#[test]
fn attach_recovers_dead_slots_when_every_slot_is_taken() {
    let name = uniq("dead-slots");
    let keep = Channel::open(
        &format!("ipc://{name}"),
        1 << 16,
        Mode::Mpmc,
        ChannelType::Multi,
    )
    .unwrap();
    // Slots 1..64: processes that died with a claim intent each (slot table
    // at 4096, 2176 bytes a slot: state, pid, ..., claims from byte 128).
    for i in 1..64u64 {
        let slot = 4096 + i * 2176;
        poke_u32(&name, slot, 1);
        poke_u32(&name, slot + 4, 0x7fff_0000 + i as u32);
        poke_u64(&name, slot + 128, 1 << 40);
        poke_u64(&name, slot + 136, 64 << 3 | 1);
    }
    let out = run_within(child(&[], "attach-any", &[("NAME", &name)]), CHILD_LIMIT);
    let r = reports(&out);
    assert!(
        r.iter().any(|l| l == "OPENED"),
        "{r:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(&keep.try_recv().unwrap()[..], b"hi");
    // Every dead slot was reaped (header `reaped` at 72).
    assert_eq!(peek_u64(&name, 72), 63);
}

// ---------------------------------------------------------------------------
// 6. A handle inherited through fork is refused, and destroying it is inert.
// ---------------------------------------------------------------------------

unsafe extern "C" fn ignore(_: *mut psyne::ffi::psyne_message_t, _: u32, _: *mut std::ffi::c_void) {
}

fn fork_destroy_child() {
    use psyne::ffi::*;
    use std::ptr::{null, null_mut};
    let name = std::env::var("NAME").unwrap();
    let uri = std::ffi::CString::new(format!("ipc://{name}")).unwrap();
    let mut ch = null_mut();
    // SAFETY (every call below): valid pointers and a live handle, per the C API.
    unsafe {
        assert_eq!(
            psyne_channel_create(
                uri.as_ptr(),
                1 << 16,
                PSYNE_MODE_SPSC,
                PSYNE_TYPE_MULTI,
                &mut ch
            ),
            psyne_error_t::PSYNE_OK
        );
        assert_eq!(
            psyne_channel_set_receive_callback(ch, Some(ignore), null_mut()),
            psyne_error_t::PSYNE_OK
        );
        let mut msg = null_mut();
        assert_eq!(
            psyne_message_reserve(ch, 8, &mut msg),
            psyne_error_t::PSYNE_OK
        );
        // A message ended before the fork leaves its box in this thread's
        // spares, which the child inherits and reuses for its own.
        let aux_uri = std::ffi::CString::new(format!("memory://{name}-aux")).unwrap();
        let (mut aux, mut spare) = (null_mut(), null_mut());
        assert_eq!(
            psyne_channel_create(
                aux_uri.as_ptr(),
                4096,
                PSYNE_MODE_SPSC,
                PSYNE_TYPE_MULTI,
                &mut aux
            ),
            psyne_error_t::PSYNE_OK
        );
        assert_eq!(
            psyne_message_reserve(aux, 8, &mut spare),
            psyne_error_t::PSYNE_OK
        );
        assert_eq!(psyne_message_cancel(spare), psyne_error_t::PSYNE_OK);
        assert_eq!(psyne_channel_destroy(aux), psyne_error_t::PSYNE_OK);
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            let sent = psyne_send_data(ch, b"x".as_ptr().cast(), 1, 1);
            // The parent's reservation is the parent's: refused, not published.
            let msg_sent = psyne_message_send(msg, 1);
            let destroyed = psyne_channel_destroy(ch);
            // The child's own channel and messages work, on inherited spare
            // boxes too.
            let own_uri = std::ffi::CString::new(format!("memory://{name}-child")).unwrap();
            let mut own = null_mut();
            let mut own_msg = null_mut();
            let own_ok = psyne_channel_create(
                own_uri.as_ptr(),
                4096,
                PSYNE_MODE_SPSC,
                PSYNE_TYPE_MULTI,
                &mut own,
            ) == psyne_error_t::PSYNE_OK
                && psyne_message_reserve(own, 4, &mut own_msg) == psyne_error_t::PSYNE_OK
                && psyne_message_send(own_msg, 3) == psyne_error_t::PSYNE_OK
                && psyne_message_receive(own, &mut own_msg, &mut 0) == psyne_error_t::PSYNE_OK
                && psyne_message_release(own_msg) == psyne_error_t::PSYNE_OK
                && psyne_channel_destroy(own) == psyne_error_t::PSYNE_OK;
            let ok = sent == psyne_error_t::PSYNE_ERROR_INVALID_ARGUMENT
                && msg_sent == psyne_error_t::PSYNE_ERROR_INVALID_ARGUMENT
                && destroyed == psyne_error_t::PSYNE_OK
                && own_ok;
            libc::_exit(if ok { 0 } else { 3 });
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "forked child: status {status:#x}"
        );
        // The parent is still attached: its file, its slot, its channel.
        assert!(
            std::path::Path::new(&seg_file(&name)).exists(),
            "file removed"
        );
        let slot0 = std::fs::read(seg_file(&name)).unwrap()[4096];
        assert_eq!(slot0, 1, "the parent's slot was freed");
        assert_eq!(psyne_message_cancel(msg), psyne_error_t::PSYNE_OK);
        assert_eq!(
            psyne_channel_set_receive_callback(ch, None, null_mut()),
            psyne_error_t::PSYNE_OK
        );
        assert_eq!(
            psyne_send_data(ch, b"after".as_ptr().cast(), 5, 2),
            psyne_error_t::PSYNE_OK
        );
        let (mut buf, mut got, mut t) = ([0u8; 16], 0usize, 0u32);
        assert_eq!(
            psyne_receive_data(ch, buf.as_mut_ptr().cast(), 16, &mut got, &mut t, 1000),
            psyne_error_t::PSYNE_OK
        );
        assert_eq!((&buf[..got], t), (&b"after"[..], 2));
        assert_eq!(psyne_channel_destroy(ch), psyne_error_t::PSYNE_OK);
        let _ = null::<u8>();
    }
    report("OK");
}

#[test]
fn a_forked_child_cannot_use_or_undo_the_parents_handle() {
    let name = uniq("fork");
    let out = run_within(child(&[], "fork-destroy", &[("NAME", &name)]), CHILD_LIMIT);
    let _ = std::fs::remove_file(seg_file(&name));
    let r = reports(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && r.iter().any(|l| l == "OK"),
        "{:?} {r:?}\n{err}",
        out.status
    );
    // The library printed nothing (no caught panic's message or backtrace).
    assert!(!err.contains("panicked"), "{err}");
}

// ---------------------------------------------------------------------------
// 8. Destroy does not wait for another process's init lock.
// ---------------------------------------------------------------------------

/// Another process holding `name`'s init lock until killed.
fn hold_init_lock(name: &str) -> std::process::Child {
    let mut holder = child(&[], "hold-init-lock", &[("NAME", name)])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("@@LOCKED") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0);
    }
    holder
}

#[test]
fn destroy_does_not_wait_for_a_foreign_init_lock() {
    let name = uniq("init-lock");
    let ch = Channel::open(
        &format!("ipc://{name}"),
        1 << 16,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap();
    let mut holder = hold_init_lock(&name);
    // Before: 10 s (the open's lock wait), holding the registry lock.
    let t = Instant::now();
    drop(ch);
    let took = t.elapsed();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let _ = std::fs::remove_file(seg_file(&name));
    assert!(took < Duration::from_secs(5), "destroy waited {took:?}");
}

/// An open that waits for another process's init lock holds up opens of that
/// name only, never opens of other names in the process (before: the
/// process-wide registry lock was held for the whole wait, up to 10 s).
#[test]
fn an_open_waiting_on_a_foreign_lock_does_not_block_other_names() {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (a, b) = (uniq("gate-a"), uniq("gate-b"));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(seg_file(&a))
        .unwrap();
    let mut holder = hold_init_lock(&a);
    let a_done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (a, a_done) = (a.clone(), a_done.clone());
        std::thread::spawn(move || {
            let r = Channel::open(
                &format!("ipc://{a}"),
                1 << 16,
                Mode::Spsc,
                ChannelType::Multi,
            );
            a_done.store(true, Ordering::SeqCst);
            r.map(drop)
        })
    };
    std::thread::sleep(Duration::from_millis(100)); // let the waiter reach the lock
    let other = Channel::open(
        &format!("ipc://{b}"),
        1 << 16,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap();
    // The holder keeps the lock until killed, so `a` cannot have finished.
    assert!(
        !a_done.load(Ordering::SeqCst),
        "the open of {a} was not waiting"
    );
    drop(other);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let _ = waiter.join().unwrap();
    let _ = std::fs::remove_file(seg_file(&a));
}

// ---------------------------------------------------------------------------
// 11. The library writes nothing to stdout or stderr itself.
// ---------------------------------------------------------------------------

#[test]
fn the_library_source_never_prints() {
    fn walk(dir: &std::path::Path, bad: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, bad);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, line) in text.lines().enumerate() {
                    if ["eprintln!", "println!", "eprint!", "dbg!"]
                        .iter()
                        .any(|m| line.contains(m))
                    {
                        bad.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }
    let mut bad = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut bad,
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

// ---------------------------------------------------------------------------
// 9. Stop then destroy while other threads are still inside calls.
// ---------------------------------------------------------------------------

/// Threads blocked in receives (empty ring) or sends (full ring) on a handle
/// are woken by a stop; the handle is destroyed at once, while they are still
/// on their way out of the library. Destroy waits for them: no thread touches
/// freed memory (before the fix: a SIGSEGV on ipc://, a waiter that never
/// returned on memory://).
#[test]
fn destroy_right_after_stop_waits_for_calls_in_flight() {
    use psyne::ffi::*;
    use std::ptr::null_mut;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct Handle(*mut psyne_channel_t);
    // SAFETY: the C API allows a handle to be used from any thread.
    unsafe impl Send for Handle {}
    unsafe impl Sync for Handle {}
    for scheme in ["memory", "ipc"] {
        for full in [false, true] {
            for round in 0..5 {
                let uri = std::ffi::CString::new(format!(
                    "{scheme}://{}",
                    uniq(&format!("d9-{full}-{round}"))
                ))
                .unwrap();
                let mut ch = null_mut();
                // SAFETY (every call in this test): valid pointers; the handle
                // is used by the threads only inside calls begun before destroy.
                unsafe {
                    assert_eq!(
                        psyne_channel_create(
                            uri.as_ptr(),
                            4096,
                            PSYNE_MODE_MPMC,
                            PSYNE_TYPE_MULTI,
                            &mut ch
                        ),
                        psyne_error_t::PSYNE_OK
                    );
                    if full {
                        while psyne_send_data(ch, [7u8; 200].as_ptr().cast(), 200, 1)
                            == psyne_error_t::PSYNE_OK
                        {}
                    }
                }
                let h = Arc::new(Handle(ch));
                let entered = Arc::new(AtomicUsize::new(0));
                let threads: Vec<_> = (0..3)
                    .map(|_| {
                        let (h, entered) = (h.clone(), entered.clone());
                        std::thread::spawn(move || {
                            entered.fetch_add(1, Ordering::SeqCst);
                            // SAFETY: as above.
                            unsafe {
                                if full {
                                    psyne_send_data_timeout(
                                        h.0,
                                        [1u8; 200].as_ptr().cast(),
                                        200,
                                        1,
                                        PSYNE_WAIT_FOREVER,
                                    )
                                } else {
                                    let (mut buf, mut got, mut t) = ([0u8; 256], 0usize, 0u32);
                                    psyne_receive_data(
                                        h.0,
                                        buf.as_mut_ptr().cast(),
                                        256,
                                        &mut got,
                                        &mut t,
                                        PSYNE_WAIT_FOREVER,
                                    )
                                }
                            }
                        })
                    })
                    .collect();
                wait_until("threads to start", Duration::from_secs(30), || {
                    entered.load(Ordering::SeqCst) == 3
                });
                std::thread::sleep(Duration::from_millis(20 + 10 * round));
                // SAFETY: as above; nobody starts a call after this point.
                unsafe {
                    assert_eq!(psyne_channel_stop(ch), psyne_error_t::PSYNE_OK);
                    assert_eq!(psyne_channel_destroy(ch), psyne_error_t::PSYNE_OK);
                }
                for t in threads {
                    assert_eq!(
                        t.join().unwrap(),
                        psyne_error_t::PSYNE_ERROR_CHANNEL_STOPPED
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 7. Stop is one point in time: nothing is sent after anyone observed it.
// ---------------------------------------------------------------------------

const MODES: [Mode; 4] = [Mode::Spsc, Mode::Spmc, Mode::Mpsc, Mode::Mpmc];

/// A reservation made before a stop and sent after it is refused, and no
/// receiver ever sees it.
#[test]
fn a_reservation_sent_after_stop_is_refused() {
    for scheme in ["memory", "ipc"] {
        for mode in MODES {
            let uri = format!("{scheme}://{}", uniq(&format!("d7r-{mode:?}")));
            let ch = Channel::open(&uri, 1 << 12, mode, ChannelType::Multi).unwrap();
            let mut r = ch.try_reserve(8).unwrap();
            r.copy_from_slice(b"reserved");
            ch.stop();
            let e = r.send(1).unwrap_err();
            assert!(matches!(e, Error::ChannelStopped), "{scheme} {mode:?}: {e}");
            let e = ch.try_recv().unwrap_err();
            assert!(matches!(e, Error::ChannelStopped), "{scheme} {mode:?}: {e}");
            assert_eq!(ch.metrics().messages_received, 0);
        }
    }
}

/// Producers send as fast as they can while a stop lands at a varying
/// moment; receivers take messages until they are told the channel stopped.
/// Every send that succeeded was received exactly once, and after the
/// receivers saw CHANNEL_STOPPED the channel stays empty (before the fix a
/// send racing the stop could still publish after a receiver was told).
#[test]
fn nothing_is_delivered_after_a_receiver_saw_stopped() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let rounds: u32 = std::env::var("PSYNE_STOP_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    for scheme in ["memory", "ipc"] {
        for mode in MODES {
            let (producers, consumers) = match mode {
                Mode::Spsc => (1, 1),
                Mode::Spmc => (1, 2),
                Mode::Mpsc => (2, 1),
                Mode::Mpmc => (2, 2),
            };
            for round in 0..rounds {
                let uri = format!("{scheme}://{}", uniq(&format!("d7-{mode:?}-{round}")));
                let ch = Channel::open(&uri, 1 << 12, mode, ChannelType::Multi).unwrap();
                let sent = Arc::new(AtomicU64::new(0));
                let got = Arc::new(AtomicU64::new(0));
                let mut threads = Vec::new();
                for p in 0..producers {
                    let (ch, sent) = (ch.clone(), sent.clone());
                    threads.push(std::thread::spawn(move || {
                        let mut i = 0u64;
                        loop {
                            let r = if (i + p) % 3 == 0 {
                                ch.try_reserve(8).and_then(|mut g| {
                                    g.copy_from_slice(&i.to_le_bytes());
                                    g.send(1)
                                })
                            } else {
                                ch.send_timeout(&i.to_le_bytes(), 1, Duration::from_secs(30))
                            };
                            match r {
                                Ok(()) => {
                                    sent.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(Error::ChannelFull) => std::thread::yield_now(),
                                Err(Error::ChannelStopped) => return,
                                Err(e) => panic!("send: {e}"),
                            }
                            i += 1;
                        }
                    }));
                }
                for _ in 0..consumers {
                    let (ch, got) = (ch.clone(), got.clone());
                    threads.push(std::thread::spawn(move || loop {
                        match ch.recv_timeout(Duration::from_secs(30)) {
                            Ok(_) => {
                                got.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(Error::ChannelStopped) => return,
                            Err(e) => panic!("recv: {e}"),
                        }
                    }));
                }
                std::thread::sleep(Duration::from_micros(50 + 37 * (round as u64 % 20)));
                ch.stop();
                for t in threads {
                    t.join().unwrap();
                }
                // Told STOPPED, the receivers left: nothing may be queued now.
                match ch.try_recv() {
                    Err(Error::ChannelStopped) => {}
                    Ok(_) => panic!("{scheme} {mode:?} round {round}: a message published after the receivers saw STOPPED"),
                    Err(e) => panic!("{e}"),
                }
                assert_eq!(
                    sent.load(Ordering::SeqCst),
                    got.load(Ordering::SeqCst),
                    "{scheme} {mode:?} round {round}: sent vs received"
                );
            }
        }
    }
}
