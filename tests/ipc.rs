//! `ipc://` across real processes.
//!
//! The children are this same test binary, re-run with `PSYNE_IPC_ROLE` set:
//! the `child_entry` test then plays the role (producer, consumer, a process
//! that holds a reservation or a view until it is killed, ...) and reports on
//! stdout with lines starting `@@`. Without the variable `child_entry` does
//! nothing, so a plain `cargo test` runs it as an empty test.
//!
//! No test asserts wall-clock speed; timeouts are generous and only stop a
//! wedged run.

use psyne::{Channel, ChannelType, Error, Mode};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MODES: [Mode; 4] = [Mode::Spsc, Mode::Spmc, Mode::Mpsc, Mode::Mpmc];
const LONG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Messages: [producer id u32][seq u64][deterministic bytes], type = producer id
// ---------------------------------------------------------------------------

fn msg_len(seq: u64) -> usize {
    if seq % 97 == 13 {
        3000
    } else {
        12 + (seq as usize * 7) % 300
    }
}

fn fill(buf: &mut [u8], id: u32, seq: u64) {
    buf[..4].copy_from_slice(&id.to_le_bytes());
    buf[4..12].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in buf.iter_mut().enumerate().skip(12) {
        *b = (i as u64 * 31 + seq * 7 + id as u64) as u8;
    }
}

fn make(id: u32, seq: u64) -> Vec<u8> {
    let mut v = vec![0; msg_len(seq)];
    fill(&mut v, id, seq);
    v
}

/// Checks a received message; returns (producer id, seq).
fn check(data: &[u8], msg_type: u32) -> Result<(u32, u64), String> {
    if data.len() < 12 {
        return Err(format!("short message of {} bytes", data.len()));
    }
    let id = u32::from_le_bytes(data[..4].try_into().unwrap());
    let seq = u64::from_le_bytes(data[4..12].try_into().unwrap());
    if msg_type != id {
        return Err(format!("type {msg_type} for producer {id}"));
    }
    let any_len = std::env::var("ANYLEN").is_ok();
    if !any_len && data.len() != msg_len(seq) {
        return Err(format!(
            "producer {id} seq {seq}: {} bytes, expected {}",
            data.len(),
            msg_len(seq)
        ));
    }
    let mut want = vec![0; data.len()];
    fill(&mut want, id, seq);
    if data != want.as_slice() {
        return Err(format!(
            "producer {id} seq {seq}: {} bytes, content differs",
            data.len()
        ));
    }
    Ok((id, seq))
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Spsc => "spsc",
        Mode::Spmc => "spmc",
        Mode::Mpsc => "mpsc",
        Mode::Mpmc => "mpmc",
    }
}

fn mode_from(s: &str) -> Mode {
    match s {
        "spsc" => Mode::Spsc,
        "spmc" => Mode::Spmc,
        "mpsc" => Mode::Mpsc,
        _ => Mode::Mpmc,
    }
}

fn uniq(tag: &str) -> String {
    format!("t{}-{tag}", std::process::id())
}

fn seg_file(name: &str) -> String {
    format!("/dev/shm/psyne-{name}")
}

/// The segment header's `dropped` counter (offset 64, see docs/IPC.md).
fn dropped(name: &str) -> u64 {
    let b = std::fs::read(seg_file(name)).unwrap();
    u64::from_le_bytes(b[64..72].try_into().unwrap())
}

// ---------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------

struct Kid {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    role: String,
}

impl Kid {
    fn spawn(role: &str, env: &[(&str, String)]) -> Kid {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "child_entry",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("PSYNE_IPC_ROLE", role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn child");
        let out = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                // libtest may print "test child_entry ... " before our line.
                if let Some(i) = line.find("@@") {
                    if tx.send(line[i + 2..].to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        Kid {
            child,
            stdin,
            lines: rx,
            role: role.to_string(),
        }
    }

    /// Waits for a report line starting with `prefix`; returns the rest.
    fn expect(&self, prefix: &str) -> String {
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l[prefix.len()..].trim().to_string(),
                Ok(l) if l.starts_with("BAD") || l.starts_with("ERR") => {
                    panic!("child {} reported: {l}", self.role)
                }
                Ok(_) => continue,
                Err(_) => panic!("child {} did not report {prefix:?}", self.role),
            }
        }
    }

    /// Every remaining report line (the child has exited or is exiting).
    fn rest(&self) -> Vec<String> {
        let mut v = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(LONG) {
            v.push(l);
        }
        v
    }

    fn tell(&mut self, line: &str) {
        let s = self.stdin.as_mut().unwrap();
        writeln!(s, "{line}").unwrap();
        s.flush().unwrap();
    }

    fn wait_ok(&mut self) {
        let deadline = Instant::now() + LONG;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "child {} failed: {st}", self.role);
                return;
            }
            assert!(Instant::now() < deadline, "child {} hangs", self.role);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the child; returns whether it was still running.
    fn kill9(&mut self) -> bool {
        let running = matches!(self.child.try_wait(), Ok(None));
        // SAFETY: kill with a valid signal on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
        running
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn var(k: &str) -> String {
    std::env::var(k).unwrap_or_default()
}

fn num(k: &str) -> u64 {
    var(k).parse().unwrap_or(0)
}

fn report(s: &str) {
    println!("@@{s}");
    std::io::stdout().flush().unwrap();
}

fn open_child() -> Channel {
    let size = num("SIZE") as usize;
    let mode = mode_from(&var("MODE"));
    Channel::open(
        &format!("ipc://{}", var("NAME")),
        size,
        mode,
        ChannelType::Multi,
    )
    .unwrap_or_else(|e| {
        report(&format!("ERR open: {e}"));
        panic!("open: {e}")
    })
}

fn produce(ch: &Channel, id: u32, from: u64, to: u64) {
    for seq in from..to {
        let len = msg_len(seq);
        if seq % 2 == 0 {
            let mut slot = ch.reserve_timeout(len, LONG).expect("reserve");
            fill(&mut slot, id, seq);
            slot.send(id).expect("send");
        } else {
            ch.send_timeout(&make(id, seq), id, LONG).expect("send");
        }
    }
}

fn wait_stdin() {
    let mut s = String::new();
    let _ = std::io::stdin().read_line(&mut s);
}

#[test]
fn child_entry() {
    let role = var("PSYNE_IPC_ROLE");
    match role.as_str() {
        "" => {}
        "send-and-exit" => {
            // Opens URI, sends N messages (payload = index, type 7), exits
            // without waiting for any receiver.
            let ch = Channel::open(&var("URI"), 1 << 16, Mode::Spsc, ChannelType::Multi).unwrap();
            for i in 0..num("N") {
                ch.send(&i.to_le_bytes(), 7).unwrap();
            }
            report("SENT");
        }
        "produce" => {
            let ch = open_child();
            report("READY");
            produce(&ch, num("ID") as u32, num("FROM"), num("TO"));
            report("DONE");
        }
        "consume" => {
            let ch = open_child();
            report("READY");
            // id -> (count, sum of seq, sum of seq^2, last seq)
            let mut stats: HashMap<u32, (u64, u64, u64, i64)> = HashMap::new();
            let mut buf = vec![
                0u8;
                if std::env::var("ANYLEN").is_ok() {
                    16 << 20
                } else {
                    1 << 16
                }
            ];
            let mut n = 0u64;
            loop {
                n += 1;
                let got = if n % 2 == 0 {
                    match ch.recv_timeout(LONG) {
                        Ok(m) => check(&m, m.msg_type()),
                        Err(Error::ChannelStopped) => break,
                        Err(e) => panic!("recv: {e}"),
                    }
                } else {
                    match ch.recv_into_until(&mut buf, Some(LONG), None) {
                        Ok((len, t)) => check(&buf[..len], t),
                        Err(Error::ChannelStopped) => break,
                        Err(e) => panic!("recv: {e}"),
                    }
                };
                let (id, seq) = got.unwrap_or_else(|e| {
                    report(&format!("BAD {e}"));
                    panic!("{e}")
                });
                let s = stats.entry(id).or_insert((0, 0, 0, -1));
                if seq as i64 <= s.3 {
                    report(&format!("BAD producer {id}: seq {seq} after {}", s.3));
                    panic!("out of order");
                }
                *s = (s.0 + 1, s.1 + seq, s.2 + seq * seq, seq as i64);
            }
            for (id, (c, s1, s2, _)) in stats {
                report(&format!("STATS {id} {c} {s1} {s2}"));
            }
            report("END");
        }
        "consume-log" => {
            let ch = open_child();
            report("READY");
            let mut last: HashMap<u32, u64> = HashMap::new();
            loop {
                match ch.recv_timeout(LONG) {
                    Ok(m) => {
                        let (id, seq) = check(&m, m.msg_type()).unwrap_or_else(|e| {
                            report(&format!("BAD {e}"));
                            panic!("{e}")
                        });
                        if let Some(&before) = last.get(&id) {
                            if seq <= before {
                                report(&format!("BAD producer {id}: seq {seq} after {before}"));
                                panic!("out of order");
                            }
                        }
                        last.insert(id, seq);
                        report(&format!("R {id} {seq}"));
                    }
                    Err(Error::ChannelStopped) => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
            report("END");
        }
        "idle-recv" => {
            let ch = open_child();
            report("READY");
            match ch.recv_timeout(Duration::from_millis(num("MS"))) {
                Err(Error::Timeout) => report("TIMEOUT"),
                other => report(&format!("BAD {:?}", other.map(|m| m.len()))),
            }
            // CPU time used while blocked (utime + stime, clock ticks).
            let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
            let f: Vec<&str> = stat.rsplit(')').next().unwrap().split(' ').collect();
            report(&format!("CPU {} {}", f[12], f[13]));
        }
        "hold-reservation" => {
            let ch = open_child();
            let id = num("ID") as u32;
            produce(&ch, id, 0, num("PRE"));
            let seq = num("PRE");
            let mut slot = ch.reserve_timeout(msg_len(seq), LONG).expect("reserve");
            fill(&mut slot, id, seq);
            report("HOLDING");
            std::thread::sleep(LONG * 2);
        }
        "hold-view" => {
            let ch = open_child();
            report("READY");
            for _ in 0..num("PRE") {
                let m = ch.recv_timeout(LONG).expect("recv");
                let (id, seq) = check(&m, m.msg_type()).expect("check");
                report(&format!("GOT {id} {seq}"));
            }
            let m = ch.recv_timeout(LONG).expect("recv");
            let (id, seq) = check(&m, m.msg_type()).expect("check");
            report(&format!("HOLDING {id} {seq}"));
            std::thread::sleep(LONG * 2);
            drop(m);
        }
        "open-report" => {
            match Channel::open(
                &format!("ipc://{}", var("NAME")),
                num("SIZE") as usize,
                mode_from(&var("MODE")),
                ChannelType::Multi,
            ) {
                Ok(ch) => {
                    if num("SEND") == 1 {
                        ch.send_timeout(&make(num("ID") as u32, 0), num("ID") as u32, LONG)
                            .expect("send");
                    }
                    report(&format!("OK {}", ch.buffer_size()));
                    wait_stdin();
                }
                Err(e) => report(&format!("OPENERR {e}")),
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn env(name: &str, mode: Mode, extra: &[(&str, u64)]) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("NAME", name.to_string()),
        ("MODE", mode_name(mode).to_string()),
        ("SIZE", "0".to_string()),
    ];
    for &(k, x) in extra {
        let k: &'static str = Box::leak(k.to_string().into_boxed_str());
        v.push((k, x.to_string()));
    }
    v
}

fn parse_stats(lines: &[String]) -> HashMap<u32, (u64, u64, u64)> {
    let mut m = HashMap::new();
    for l in lines {
        if let Some(rest) = l.strip_prefix("STATS ") {
            let f: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            let e = m.entry(f[0] as u32).or_insert((0, 0, 0));
            e.0 += f[1];
            e.1 += f[2];
            e.2 += f[3];
        }
        assert!(!l.starts_with("BAD"), "{l}");
    }
    m
}

fn expected(from: u64, to: u64) -> (u64, u64, u64) {
    (to - from, (from..to).sum(), (from..to).map(|s| s * s).sum())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Several producer and consumer processes per mode: every message arrives
/// exactly once, byte-exact, in order per producer.
#[test]
fn exactly_once_in_order_across_processes_in_every_mode() {
    const N: u64 = 4000;
    for mode in MODES {
        let name = uniq(&format!("modes-{}", mode_name(mode)));
        let ch =
            Channel::open(&format!("ipc://{name}"), 16 << 10, mode, ChannelType::Multi).unwrap();
        let nprod = if mode.multi_producer() { 3 } else { 1 };
        let ncons = if mode.multi_consumer() { 2 } else { 1 };
        let consumers: Vec<Kid> = (0..ncons)
            .map(|_| Kid::spawn("consume", &env(&name, mode, &[])))
            .collect();
        for c in &consumers {
            c.expect("READY");
        }
        let mut producers: Vec<Kid> = (0..nprod)
            .map(|i| {
                Kid::spawn(
                    "produce",
                    &env(&name, mode, &[("ID", i + 1), ("FROM", 0), ("TO", N)]),
                )
            })
            .collect();
        for p in &mut producers {
            p.expect("DONE");
            p.wait_ok();
        }
        ch.stop();
        let mut all = Vec::new();
        for mut c in consumers {
            all.extend(c.rest());
            c.wait_ok();
        }
        let stats = parse_stats(&all);
        for id in 1..=nprod as u32 {
            assert_eq!(
                stats.get(&id),
                Some(&expected(0, N)),
                "{mode:?} producer {id}"
            );
        }
        assert_eq!(stats.len(), nprod as usize, "{mode:?}");
        drop(ch);
        assert!(
            !std::path::Path::new(&seg_file(&name)).exists(),
            "{mode:?}: the last process to detach removes the segment"
        );
    }
}

/// A producer killed while holding a reservation: the survivors go on, its
/// unfinished message is never delivered, nothing is duplicated.
#[test]
fn producer_killed_mid_reservation() {
    const PRE: u64 = 10;
    const POST: u64 = 300;
    for mode in MODES {
        let name = uniq(&format!("kp-{}", mode_name(mode)));
        let ch =
            Channel::open(&format!("ipc://{name}"), 8 << 10, mode, ChannelType::Multi).unwrap();
        let mut holder = Kid::spawn(
            "hold-reservation",
            &env(&name, mode, &[("ID", 1), ("PRE", PRE)]),
        );
        holder.expect("HOLDING");
        // On multi-producer channels a second producer runs while the first
        // dies: its messages queue behind the dead claim.
        let mut second = if mode.multi_producer() {
            Some(Kid::spawn(
                "produce",
                &env(&name, mode, &[("ID", 2), ("FROM", 0), ("TO", POST)]),
            ))
        } else {
            None
        };
        for seq in 0..PRE {
            let m = ch.recv_timeout(LONG).unwrap();
            assert_eq!(check(&m, m.msg_type()).unwrap(), (1, seq), "{mode:?}");
        }
        if !mode.multi_producer() {
            // The holder's process owns the single producer side.
            let e = ch.try_send(b"second sender", 1).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{mode:?}: {e}");
        }
        holder.kill9();
        if second.is_none() {
            second = Some(Kid::spawn(
                "produce",
                &env(&name, mode, &[("ID", 2), ("FROM", 0), ("TO", POST)]),
            ));
        }
        for seq in 0..POST {
            let m = ch
                .recv_timeout(LONG)
                .unwrap_or_else(|e| panic!("{mode:?}: waiting for seq {seq}: {e}"));
            assert_eq!(check(&m, m.msg_type()).unwrap(), (2, seq), "{mode:?}");
        }
        let mut second = second.unwrap();
        second.wait_ok();
        assert!(matches!(ch.try_recv(), Err(Error::NoMessage)), "{mode:?}");
        // A single producer's claim never moved `tail`; a multi-producer one
        // is turned into padding and counted.
        let want = u64::from(mode.multi_producer());
        assert_eq!(dropped(&name), want, "{mode:?}");
    }
}

/// A consumer killed while holding a received view: its message is dropped
/// (not redelivered), the producer is not wedged, another consumer goes on.
#[test]
fn consumer_killed_mid_view() {
    const PRE: u64 = 5;
    const TOTAL: u64 = 600;
    for mode in MODES {
        let name = uniq(&format!("kc-{}", mode_name(mode)));
        let ch =
            Channel::open(&format!("ipc://{name}"), 8 << 10, mode, ChannelType::Multi).unwrap();
        let mut holder = Kid::spawn("hold-view", &env(&name, mode, &[("PRE", PRE)]));
        holder.expect("READY");
        for seq in 0..=PRE {
            ch.send_timeout(&make(1, seq), 1, LONG).unwrap();
        }
        for seq in 0..PRE {
            assert_eq!(holder.expect("GOT"), format!("1 {seq}"));
        }
        assert_eq!(holder.expect("HOLDING"), format!("1 {PRE}"));
        let other = if mode.multi_consumer() {
            let k = Kid::spawn("consume", &env(&name, mode, &[]));
            k.expect("READY");
            Some(k)
        } else {
            None
        };
        holder.kill9();
        let other = other.unwrap_or_else(|| {
            let k = Kid::spawn("consume", &env(&name, mode, &[]));
            k.expect("READY");
            k
        });
        // Far more than the ring holds: the producer must get the dead
        // consumer's space back.
        for seq in PRE + 1..TOTAL {
            ch.send_timeout(&make(1, seq), 1, LONG)
                .unwrap_or_else(|e| panic!("{mode:?}: send {seq}: {e}"));
        }
        ch.stop();
        let mut other = other;
        let stats = parse_stats(&other.rest());
        other.wait_ok();
        assert_eq!(stats.get(&1), Some(&expected(PRE + 1, TOTAL)), "{mode:?}");
        assert_eq!(dropped(&name), 1, "{mode:?}");
    }
}

/// A segment whose every user was killed is detected and reinitialised on the
/// next open: empty, usable, with the configuration asked for (or its own
/// with buffer size 0).
#[test]
fn segment_left_by_killed_processes_reopens_cleanly() {
    for (size, expect_cap) in [(0usize, 16usize << 10), (65536, 65536)] {
        let name = uniq(&format!("stale-{size}"));
        let mut creator = Kid::spawn(
            "hold-reservation",
            &[
                ("NAME", name.clone()),
                ("MODE", "mpmc".into()),
                ("SIZE", (16 << 10).to_string()),
                ("ID", "1".into()),
                ("PRE", "20".into()),
            ],
        );
        creator.expect("HOLDING");
        creator.kill9();
        assert!(std::path::Path::new(&seg_file(&name)).exists());
        let ch = Channel::open(
            &format!("ipc://{name}"),
            size,
            Mode::Mpmc,
            ChannelType::Multi,
        )
        .unwrap();
        assert_eq!(ch.buffer_size(), expect_cap);
        assert!(matches!(ch.try_recv(), Err(Error::NoMessage)));
        for seq in 0..200 {
            ch.send_timeout(&make(3, seq), 3, LONG).unwrap();
            let m = ch.recv_timeout(LONG).unwrap();
            assert_eq!(check(&m, m.msg_type()).unwrap(), (3, seq));
        }
        drop(ch);
        assert!(!std::path::Path::new(&seg_file(&name)).exists());
    }
}

#[test]
fn segment_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let name = uniq("perm");
    // A permissive umask must not widen the mode.
    // SAFETY: umask only changes this process's file-creation mask.
    let old = unsafe { libc::umask(0) };
    let ch = Channel::open(
        &format!("ipc://{name}"),
        4096,
        Mode::Spsc,
        ChannelType::Multi,
    );
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let ch = ch.unwrap();
    let mode = std::fs::metadata(seg_file(&name))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(ch);
}

/// Truncated, foreign, wrong-version and mismatched files are refused with an
/// error that says what is wrong, and left alone.
#[test]
fn corrupt_truncated_and_foreign_files_are_refused() {
    use std::os::unix::fs::OpenOptionsExt;
    let write = |name: &str, bytes: &[u8], mode: u32| {
        let _ = std::fs::remove_file(seg_file(name));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(seg_file(name))
            .unwrap();
        f.write_all(bytes).unwrap();
    };
    let open = |name: &str| {
        Channel::open(
            &format!("ipc://{name}"),
            4096,
            Mode::Spsc,
            ChannelType::Multi,
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    // Take a real segment's bytes to corrupt.
    let good_name = uniq("good");
    let good = {
        let ch = Channel::open(
            &format!("ipc://{good_name}"),
            4096,
            Mode::Spsc,
            ChannelType::Multi,
        )
        .unwrap();
        ch.try_send(b"x", 1).unwrap();
        let b = std::fs::read(seg_file(&good_name)).unwrap();
        drop(ch);
        b
    };
    let cases: Vec<(&str, Vec<u8>, u32, &str)> = vec![
        (
            "trunc",
            good[..1000].to_vec(),
            0o600,
            "smaller than the smallest segment",
        ),
        (
            "trunc2",
            good[..good.len() - 64].to_vec(),
            0o600,
            "truncated",
        ),
        ("foreign", vec![0x5a; good.len()], 0o600, "magic"),
        (
            "version",
            {
                let mut b = good.clone();
                b[8] = 99;
                b
            },
            0o600,
            "layout version 99",
        ),
        (
            "capacity",
            {
                let mut b = good.clone();
                b[32..40].copy_from_slice(&1000u64.to_le_bytes());
                b
            },
            0o600,
            "not a power of two",
        ),
        (
            "mode",
            {
                let mut b = good.clone();
                b[40] = 9;
                b
            },
            0o600,
            "channel mode 9",
        ),
        (
            "control",
            {
                let mut b = good.clone();
                b[60..64].copy_from_slice(&100u32.to_le_bytes());
                b
            },
            0o600,
            "ring control block of 100 bytes",
        ),
        ("perms", good.clone(), 0o644, "mode 644"),
    ];
    for (tag, bytes, perm, want) in cases {
        let name = uniq(&format!("bad-{tag}"));
        write(&name, &bytes, perm);
        // create_new applies the umask; force the mode.
        std::fs::set_permissions(
            seg_file(&name),
            std::os::unix::fs::PermissionsExt::from_mode(perm),
        )
        .unwrap();
        let e = open(&name);
        assert!(e.contains(want), "{tag}: {e}");
        assert!(e.contains(&name), "{tag}: the error names the channel: {e}");
        // Refused files are left alone.
        assert_eq!(std::fs::read(seg_file(&name)).unwrap(), bytes, "{tag}");
        std::fs::remove_file(seg_file(&name)).unwrap();
    }
    // Corrupt positions in the ring's control block.
    let name = uniq("bad-pos");
    let mut b = good.clone();
    // The ring's control block starts at 143360 (docs/IPC.md); `tail` first.
    let ring = 143360;
    b[ring..ring + 8].copy_from_slice(&7u64.to_le_bytes()); // tail = 7
    write(&name, &b, 0o600);
    // A live-looking process is needed for the segment to be attached to rather
    // than reinitialised: hold slot 0's lock byte from this process.
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(seg_file(&name))
        .unwrap();
    lock_byte(&holder, 64);
    let state_live = 1u32.to_le_bytes();
    let mut b2 = b.clone();
    b2[4096..4100].copy_from_slice(&state_live);
    std::fs::write(seg_file(&name), &b2).unwrap();
    let e = open(&name);
    assert!(e.contains("corrupt") && e.contains("aligned"), "{e}");
    drop(holder);
    std::fs::remove_file(seg_file(&name)).unwrap();
}

fn lock_byte(f: &std::fs::File, byte: i64) {
    use std::os::unix::io::AsRawFd;
    // SAFETY: zeroed flock is valid; fcntl on an open fd.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) },
        0
    );
}

#[test]
fn attach_with_size_zero_needs_an_existing_channel() {
    let name = uniq("absent");
    let e = Channel::open(&format!("ipc://{name}"), 0, Mode::Spsc, ChannelType::Multi).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains(&format!("ipc://{name}")), "{e}");
    assert!(!std::path::Path::new(&seg_file(&name)).exists());
}

/// Another process's segment with a different configuration is refused,
/// naming the difference; size 0 adopts it.
#[test]
fn configuration_mismatch_across_processes() {
    let name = uniq("mismatch");
    let mut owner = Kid::spawn(
        "open-report",
        &[
            ("NAME", name.clone()),
            ("MODE", "spsc".into()),
            ("SIZE", "4096".into()),
        ],
    );
    assert_eq!(owner.expect("OK"), "4096");
    let url = format!("ipc://{name}");
    let e = Channel::open(&url, 8192, Mode::Spsc, ChannelType::Multi).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("ring size 8192"),
        "{e}"
    );
    let e = Channel::open(&url, 4096, Mode::Mpmc, ChannelType::Multi).unwrap_err();
    assert!(e.to_string().contains("mode Mpmc"), "{e}");
    let e = Channel::open(&url, 4096, Mode::Spsc, ChannelType::Single).unwrap_err();
    assert!(e.to_string().contains("type Single"), "{e}");
    let ch = Channel::open(&url, 0, Mode::Mpmc, ChannelType::Single).unwrap();
    assert_eq!(
        (ch.buffer_size(), ch.mode(), ch.channel_type()),
        (4096, Mode::Spsc, ChannelType::Multi)
    );
    drop(ch);
    owner.tell("quit");
    owner.wait_ok();
    assert!(!std::path::Path::new(&seg_file(&name)).exists());
}

/// Processes racing to create the same name end up on one segment.
#[test]
fn racing_creators_share_one_segment() {
    const K: u32 = 6;
    for round in 0..3 {
        let name = uniq(&format!("race{round}"));
        let mut kids: Vec<Kid> = (1..=K)
            .map(|id| {
                Kid::spawn(
                    "open-report",
                    &[
                        ("NAME", name.clone()),
                        ("MODE", "mpsc".into()),
                        ("SIZE", "65536".into()),
                        ("SEND", "1".into()),
                        ("ID", id.to_string()),
                    ],
                )
            })
            .collect();
        for k in &kids {
            assert_eq!(k.expect("OK"), "65536");
        }
        let ch =
            Channel::open(&format!("ipc://{name}"), 0, Mode::Mpsc, ChannelType::Multi).unwrap();
        let mut ids: Vec<u32> = (0..K)
            .map(|_| {
                let m = ch.recv_timeout(LONG).unwrap();
                check(&m, m.msg_type()).unwrap().0
            })
            .collect();
        ids.sort();
        assert_eq!(ids, (1..=K).collect::<Vec<_>>());
        for k in &mut kids {
            k.tell("quit");
            k.wait_ok();
        }
        drop(ch);
        assert!(!std::path::Path::new(&seg_file(&name)).exists());
    }
}

/// 1 KiB, 1 MiB and 10 MiB messages written into a reservation in one
/// process arrive byte-exact in another.
#[test]
fn large_messages_across_processes() {
    let name = uniq("large");
    let ch = Channel::open(
        &format!("ipc://{name}"),
        32 << 20,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap();
    let mut e = env(&name, Mode::Spsc, &[]);
    e.push(("ANYLEN", "1".into()));
    let mut c = Kid::spawn("consume", &e);
    c.expect("READY");
    let sizes = [1024usize, 1 << 20, 10 << 20];
    for (seq, &len) in sizes.iter().enumerate() {
        let mut slot = ch.reserve_timeout(len, LONG).unwrap();
        fill(&mut slot, 7, seq as u64);
        slot.send(7).unwrap();
    }
    ch.stop();
    let stats = parse_stats(&c.rest());
    c.wait_ok();
    assert_eq!(stats.get(&7), Some(&expected(0, 3)));
}

/// Producers and consumers killed at random moments under steady traffic, in
/// every mode: nothing is ever duplicated or reordered, the survivors (and
/// replacements) go on, and a surviving producer loses at most the one
/// message a killed consumer held.
#[test]
fn random_kills_under_traffic() {
    let mut rand = xorshift();
    for mode in MODES {
        kill_round(mode, "soak", 1, &mut rand);
    }
}

/// The kill -9 storm: rounds of [`kill_round`] with several kills each, in
/// every mode in turn, for `PSYNE_STORM_SECS` seconds (default 30; the CI
/// budget). Longer runs: `PSYNE_STORM_SECS=600 cargo test --release --test
/// ipc kill_storm -- --nocapture`.
#[test]
fn kill_storm() {
    let secs: u64 = std::env::var("PSYNE_STORM_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut rand = xorshift();
    let (mut rounds, mut kills, mut delivered) = (0u64, 0u64, 0u64);
    'storm: loop {
        for mode in MODES {
            if Instant::now() >= deadline {
                break 'storm;
            }
            let k = 2 + rand(4);
            delivered += kill_round(mode, &format!("storm{rounds}"), k, &mut rand);
            rounds += 1;
            kills += 2 * k;
        }
    }
    eprintln!("kill storm: {rounds} rounds, {kills} kills, {delivered} messages checked");
    assert!(rounds >= 1);
}

fn xorshift() -> impl FnMut(u64) -> u64 {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}

/// One round: producers and consumers on a fresh segment; `kills` times, one
/// producer and one consumer are killed at random moments and replaced.
/// Checks that nothing was delivered twice, that every surviving producer's
/// messages arrived but for at most one per killed consumer, and that the
/// segment is gone afterwards. Returns the number of messages checked.
fn kill_round(mode: Mode, tag: &str, kills: u64, rand: &mut impl FnMut(u64) -> u64) -> u64 {
    const N: u64 = 20_000;
    let name = uniq(&format!("{tag}-{}", mode_name(mode)));
    let ch = Channel::open(&format!("ipc://{name}"), 8 << 10, mode, ChannelType::Multi).unwrap();
    let nprod = if mode.multi_producer() { 2 } else { 1 };
    let ncons = if mode.multi_consumer() { 2 } else { 1 };
    let producer = |id: u64| {
        Kid::spawn(
            "produce",
            &env(&name, mode, &[("ID", id), ("FROM", 0), ("TO", N)]),
        )
    };
    let consumer = || {
        let k = Kid::spawn("consume-log", &env(&name, mode, &[]));
        k.expect("READY");
        k
    };
    let mut consumers: Vec<Kid> = (0..ncons).map(|_| consumer()).collect();
    let mut producers: Vec<(u64, Kid)> = (1..=nprod).map(|id| (id, producer(id))).collect();
    let mut killed_producers = Vec::new();
    let mut lines = Vec::new();
    for round in 0..kills {
        std::thread::sleep(Duration::from_millis(5 + rand(30)));
        // Kill one producer at a random moment; a replacement takes over.
        let victim = rand(producers.len() as u64) as usize;
        let (killed, mut k) = producers.remove(victim);
        k.kill9();
        killed_producers.push(killed);
        producers.push((10 + round, producer(10 + round)));
        std::thread::sleep(Duration::from_millis(rand(50)));
        // Kill one consumer; a replacement takes over.
        let victim = rand(consumers.len() as u64) as usize;
        let mut dead = consumers.remove(victim);
        dead.kill9();
        // Everything the killed consumer reported before it died.
        lines.extend(dead.rest());
        consumers.push(consumer());
    }
    for (_, p) in &mut producers {
        p.expect("DONE");
        p.wait_ok();
    }
    ch.stop();
    for mut c in consumers {
        let got = c.rest();
        c.wait_ok();
        lines.extend(got);
    }
    // Per producer: no duplicate; each consumer checks that every
    // producer's sequence only goes up (it reports BAD otherwise).
    let mut seen: HashMap<u64, Vec<u64>> = HashMap::new();
    for l in &lines {
        assert!(!l.starts_with("BAD"), "{mode:?}: {l}");
        if let Some(rest) = l.strip_prefix("R ") {
            let f: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            seen.entry(f[0]).or_default().push(f[1]);
        }
    }
    for (id, seqs) in &mut seen {
        let n = seqs.len();
        seqs.sort();
        seqs.dedup();
        assert_eq!(
            seqs.len(),
            n,
            "{mode:?}: producer {id}: a message was delivered twice"
        );
    }
    for (id, _) in &producers {
        let got = seen.get(id).map_or(0, |v| v.len()) as u64;
        assert!(
            got + kills >= N,
            "{mode:?}: producer {id}: {got} of {N} delivered (at most one per killed consumer may be lost)"
        );
    }
    for id in &killed_producers {
        assert!(seen.get(id).map_or(0, |v| v.len()) as u64 <= N);
    }
    assert!(
        dropped(&name) <= 2 * kills,
        "{mode:?}: dropped {}",
        dropped(&name)
    );
    drop(ch);
    assert!(!std::path::Path::new(&seg_file(&name)).exists(), "{mode:?}");
    seen.values().map(|v| v.len() as u64).sum()
}

/// A segment whose creator died while initialising it (all zeros, or the
/// magic number with state "initialising") is initialised again on open.
#[test]
fn half_initialised_segment_is_initialised_again() {
    for (tag, magic) in [("zero", false), ("magic", true)] {
        let name = uniq(&format!("half-{tag}"));
        let mut b = vec![0u8; 200_000];
        if magic {
            b[..8].copy_from_slice(b"PSYNEIPC");
            b[8] = 1; // version, state still 0
        }
        std::fs::write(seg_file(&name), &b).unwrap();
        std::fs::set_permissions(
            seg_file(&name),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        // Size 0 has nothing to adopt: the channel does not exist.
        let e =
            Channel::open(&format!("ipc://{name}"), 0, Mode::Spsc, ChannelType::Multi).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{tag}: {e}");
        // (the failed attach removed the stale file: write it again)
        std::fs::write(seg_file(&name), &b).unwrap();
        std::fs::set_permissions(
            seg_file(&name),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let ch = Channel::open(
            &format!("ipc://{name}"),
            4096,
            Mode::Spsc,
            ChannelType::Multi,
        )
        .unwrap();
        ch.try_send(b"fresh", 2).unwrap();
        assert_eq!(&ch.try_recv().unwrap()[..], b"fresh");
        drop(ch);
        assert!(!std::path::Path::new(&seg_file(&name)).exists());
    }
}

/// A receiver blocked on an empty ipc:// channel sleeps: it wakes only every
/// 100 ms for the liveness check, so 1.5 s of waiting costs a few
/// milliseconds of CPU, not 1.5 s.
#[test]
fn blocked_receiver_uses_no_cpu() {
    let name = uniq("idle");
    let ch = Channel::open(
        &format!("ipc://{name}"),
        4096,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap();
    let mut k = Kid::spawn("idle-recv", &env(&name, Mode::Spsc, &[("MS", 1500)]));
    k.expect("READY");
    k.expect("TIMEOUT");
    let cpu: Vec<u64> = k
        .expect("CPU")
        .split(' ')
        .map(|x| x.parse().unwrap())
        .collect();
    k.wait_ok();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let ms = (cpu[0] + cpu[1]) * 1000 / hz;
    // Start-up included; generous bound far below a spinning waiter's 1500 ms.
    assert!(ms < 500, "blocked receiver used {ms} ms of CPU in 1.5 s");
    drop(ch);
}

// ---------------------------------------------------------------------------
// persist=on: unread messages outlive their processes
// ---------------------------------------------------------------------------

/// A producer process sends and exits before any consumer exists. Without
/// `persist` its messages go with it (the segment is removed); with
/// `persist=on` a later process reads every one, and once it has drained
/// them and detached the segment is gone.
#[test]
fn persist_keeps_unread_messages_for_a_later_process() {
    for persist in [false, true] {
        let name = uniq(&format!("persist-{persist}"));
        let query = if persist { "?persist=on" } else { "" };
        let uri = format!("ipc://{name}{query}");
        let mut kid = Kid::spawn(
            "send-and-exit",
            &[("URI", uri.clone()), ("N", "100".to_string())],
        );
        kid.expect("SENT");
        kid.wait_ok();
        let file = seg_file(&name);
        if !persist {
            assert!(!std::path::Path::new(&file).exists(), "segment left behind");
            let err = Channel::open(&format!("ipc://{name}"), 0, Mode::Spsc, ChannelType::Multi)
                .unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
            continue;
        }
        assert!(
            std::path::Path::new(&file).exists(),
            "persisted segment removed"
        );
        // Attach by name alone (size 0 adopts the configuration).
        let ch =
            Channel::open(&format!("ipc://{name}"), 0, Mode::Spsc, ChannelType::Multi).unwrap();
        let mut buf = [0u8; 64];
        for i in 0..50u64 {
            let (n, t) = ch.recv_into_timeout(&mut buf, LONG).unwrap();
            assert_eq!((&buf[..n], t), (&i.to_le_bytes()[..], 7));
        }
        drop(ch);
        // Half read: still kept for the next reader.
        assert!(
            std::path::Path::new(&file).exists(),
            "removed with 50 unread"
        );
        let ch = Channel::open(
            &format!("ipc://{name}"),
            1 << 16,
            Mode::Spsc,
            ChannelType::Multi,
        )
        .unwrap();
        for i in 50..100u64 {
            let (n, t) = ch.recv_into_timeout(&mut buf, LONG).unwrap();
            assert_eq!((&buf[..n], t), (&i.to_le_bytes()[..], 7));
        }
        assert!(matches!(ch.try_recv(), Err(Error::NoMessage)));
        drop(ch);
        assert!(
            !std::path::Path::new(&file).exists(),
            "drained segment left behind"
        );
    }
}

/// A persisted segment is adopted only with a matching configuration, and
/// `persist` is an ipc:// option only.
#[test]
fn persist_checks_configuration_and_scheme() {
    let name = uniq("persist-cfg");
    let uri = format!("ipc://{name}?persist=on");
    let ch = Channel::open(&uri, 1 << 16, Mode::Spsc, ChannelType::Multi).unwrap();
    ch.send(b"kept", 1).unwrap();
    drop(ch);
    let err = Channel::open(
        &format!("ipc://{name}"),
        1 << 20,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let ch = Channel::open(&format!("ipc://{name}"), 0, Mode::Spsc, ChannelType::Multi).unwrap();
    assert_eq!(&ch.recv_timeout(LONG).unwrap()[..], b"kept");
    drop(ch);
    assert!(!std::path::Path::new(&seg_file(&name)).exists());
    let err = Channel::open(
        "memory://x?persist=on",
        1024,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}
