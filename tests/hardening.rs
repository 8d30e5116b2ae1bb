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
    let out = child(&wrapper, "small-shm", &[]).output().unwrap();
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

#[allow(dead_code)]
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[allow(dead_code)]
fn unused() {
    let _ = uniq("x");
}
