//! The `psyne` command end to end: real processes, real segments, real
//! sockets. Run by `cargo test --release` at the repository root.

use serde_json::Value;
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn psyne() -> Command {
    Command::new(env!("CARGO_BIN_EXE_psyne"))
}

fn run(args: &[&str]) -> Output {
    psyne().args(args).output().expect("run psyne")
}

fn unique(what: &str) -> String {
    format!("cli-test-{what}-{}", std::process::id())
}

/// A child that is killed (SIGKILL) if the test fails before waiting for it.
struct Kid(Option<Child>);

impl Kid {
    fn wait(mut self, limit: Duration) -> Output {
        let mut c = self.0.take().unwrap();
        let end = Instant::now() + limit;
        while c.try_wait().unwrap().is_none() {
            if Instant::now() > end {
                let _ = c.kill();
                panic!("psyne did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        c.wait_with_output().unwrap()
    }
    fn kill9(&mut self) {
        let c = self.0.as_mut().unwrap();
        c.kill().unwrap(); // SIGKILL: no destructor runs
        c.wait().unwrap();
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(args: &[&str], stdin: &[u8]) -> Kid {
    let mut c = psyne()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn psyne");
    let mut input = c.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    Kid(Some(c))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const LINES: &str = "first line\nsecond\n\nfourth, after an empty one\n";

/// `recv URI` in one process, `send URI` in another: every line arrives,
/// in order, through `transport`.
fn pipe_through(recv_uri: &str, send_uri: &str) {
    let recv = spawn(&["recv", recv_uri, "--count", "4", "--timeout", "60"], b"");
    let send = spawn(&["send", send_uri, "--timeout", "60"], LINES.as_bytes());
    let s = send.wait(Duration::from_secs(90));
    assert!(
        s.status.success(),
        "send: {}",
        String::from_utf8_lossy(&s.stderr)
    );
    let r = recv.wait(Duration::from_secs(90));
    assert!(
        r.status.success(),
        "recv: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&r.stdout), LINES);
}

#[test]
fn send_recv_through_ipc() {
    let uri = format!("ipc://{}", unique("pipe"));
    pipe_through(&uri, &uri);
}

#[test]
fn send_recv_through_tcp() {
    let port = free_port();
    pipe_through(
        &format!("tcp://:{port}"),
        &format!("tcp://127.0.0.1:{port}"),
    );
}

#[test]
fn send_recv_through_unix() {
    let path = std::env::temp_dir().join(format!("{}.sock", unique("pipe")));
    let _ = std::fs::remove_file(&path);
    pipe_through(
        &format!("unix://{}?role=listen", path.display()),
        &format!("unix://{}", path.display()),
    );
}

/// ws:// pipes like the others once the library has it; until then both
/// commands refuse it with exit code 4 and say so.
#[test]
fn send_recv_through_ws_or_unsupported() {
    let port = free_port();
    let listen = format!("ws://:{port}/cli");
    let probe = run(&["recv", &listen, "--timeout", "0.1"]);
    if probe.status.code() == Some(4) {
        assert!(String::from_utf8_lossy(&probe.stderr).contains("unsupported"));
        let send = run(&["send", &format!("ws://127.0.0.1:{port}/cli")]);
        assert_eq!(send.status.code(), Some(4));
        return;
    }
    pipe_through(&listen, &format!("ws://127.0.0.1:{port}/cli"));
}

#[test]
fn files_raw_bytes_and_types() {
    let uri = format!("ipc://{}", unique("files"));
    let dir = std::env::temp_dir().join(unique("files"));
    std::fs::create_dir_all(&dir).unwrap();
    let blob: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    std::fs::write(dir.join("blob"), &blob).unwrap();
    let recv = spawn(
        &["recv", &uri, "--raw", "--count", "1", "--timeout", "60"],
        b"",
    );
    let send = spawn(
        &[
            "send",
            &uri,
            "--type",
            "9",
            "--timeout",
            "60",
            dir.join("blob").to_str().unwrap(),
        ],
        b"",
    );
    assert!(send.wait(Duration::from_secs(90)).status.success());
    let r = recv.wait(Duration::from_secs(90));
    assert!(r.status.success());
    assert_eq!(r.stdout, blob);

    let recv = spawn(
        &[
            "recv",
            &uri,
            "--show-type",
            "--count",
            "1",
            "--timeout",
            "60",
        ],
        b"",
    );
    let send = spawn(
        &["send", &uri, "--type", "9", "--timeout", "60"],
        b"typed\n",
    );
    assert!(send.wait(Duration::from_secs(90)).status.success());
    assert_eq!(recv.wait(Duration::from_secs(90)).stdout, b"9\ttyped\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_have_their_exit_codes() {
    let code = |args: &[&str]| run(args).status.code();
    assert_eq!(
        code(&["send", "memory://x"]),
        Some(2),
        "memory:// between processes"
    );
    assert_eq!(code(&["recv", "tcp://:notaport"]), Some(2), "malformed URI");
    assert_eq!(code(&["recv", "bogus://x"]), Some(2), "unknown scheme");
    assert_eq!(code(&["bench", "--transport", "carrier-pigeon"]), Some(2));
    assert_eq!(
        code(&["inspect", &format!("ipc://{}", unique("absent"))]),
        Some(2)
    );
    // Nothing arrives: --timeout ends recv, 3 when --count was not reached.
    let uri = format!("ipc://{}", unique("timeout"));
    assert_eq!(
        code(&["recv", &uri, "--timeout", "0.2", "--count", "1"]),
        Some(3)
    );
    assert_eq!(code(&["recv", &uri, "--timeout", "0.2"]), Some(0));
    // Too large for the ring: refused, nothing sent.
    let out = psyne()
        .args([
            "send",
            &format!("ipc://{}", unique("big")),
            "--buffer",
            "4K",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(&[b'x'; 8192])?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("psyne:"));
}

#[test]
fn help_documents_exit_codes_and_examples() {
    for sub in ["bench", "send", "recv", "inspect"] {
        let out = run(&[sub, "--help"]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Exit codes:") && text.contains("Examples:"),
            "{sub}: {text}"
        );
    }
    let text = String::from_utf8_lossy(&run(&["recv", "--help"]).stdout).to_string();
    assert!(text.contains("memory://"), "recv --help explains memory://");
    let v = run(&["--version"]);
    assert!(String::from_utf8_lossy(&v.stdout).contains(env!("CARGO_PKG_VERSION")));
}

fn inspect_json(args: &[&str]) -> (Option<i32>, Value) {
    let out = run(args);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v)
}

/// A `psyne send` of `n` lines that nobody receives: it stays attached,
/// waiting for its messages to be taken. Returns once they are in the ring.
fn holder(name: &str, n: usize) -> Kid {
    let input: String = (0..n).map(|i| format!("message {i}\n")).collect();
    let kid = spawn(&["send", &format!("ipc://{name}")], input.as_bytes());
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(&["inspect", "--json", name]);
        if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
            if v["ring"]["messages_sent"] == n as u64 {
                return kid;
            }
        }
        assert!(Instant::now() < end, "the holder never sent its messages");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn inspect_live_killed_and_clean() {
    let (dead_name, live_name) = (unique("killed"), unique("live"));
    let mut dead = holder(&dead_name, 3);
    let live = holder(&live_name, 2);

    // A live segment: its configuration, one live process, depth, counters.
    let (code, v) = inspect_json(&["inspect", "--json", &format!("ipc://{live_name}")]);
    assert_eq!(code, Some(0));
    assert_eq!(v["status"], "live");
    assert_eq!(v["config"]["capacity"], 1 << 20);
    assert_eq!(v["config"]["mode"], "SPSC");
    assert_eq!(v["processes"].as_array().unwrap().len(), 1);
    assert_eq!(v["processes"][0]["alive"], true);
    assert_eq!(v["ring"]["messages_sent"], 2);
    assert_eq!(v["ring"]["messages_received"], 0);
    let depth = v["ring"]["depth_bytes"].as_u64().unwrap();
    assert!(
        depth >= 2 * 16 + "message 0".len() as u64 * 2,
        "depth {depth}"
    );
    assert!(v["ring"]["high_water_bytes"].as_u64().unwrap() >= depth);
    let text = String::from_utf8_lossy(&run(&["inspect", &format!("ipc://{live_name}")]).stdout)
        .to_string();
    assert!(text.contains("live") && text.contains("alive"), "{text}");

    // kill -9: the segment stays, its process is dead, the state is stale.
    dead.kill9();
    let (code, v) = inspect_json(&["inspect", "--json", &dead_name]);
    assert_eq!(code, Some(5));
    assert_eq!(v["status"], "stale");
    assert_eq!(v["processes"][0]["alive"], false);
    assert_eq!(v["ring"]["messages_sent"], 3);

    // A foreign file under a psyne name: reported, never trusted or removed.
    let foreign = unique("foreign");
    let fpath = format!("/dev/shm/psyne-{foreign}");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&fpath)
            .unwrap();
        f.write_all(&[0x42; 300_000]).unwrap();
    }
    let (code, v) = inspect_json(&["inspect", "--json", &foreign]);
    assert_eq!(code, Some(5));
    assert_eq!(v["status"], "unusable");
    assert!(v["reason"].as_str().unwrap().contains("magic"), "{v}");

    // --all lists all three.
    let (_, all) = inspect_json(&["inspect", "--all", "--json"]);
    let status = |name: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status(&dead_name).as_deref(), Some("stale"));
    assert_eq!(status(&live_name).as_deref(), Some("live"));
    assert_eq!(status(&foreign).as_deref(), Some("unusable"));

    // --clean removes the stale one only. (Named: a bare --clean would
    // clean every stale segment of this user, other tests' included.)
    let (code, v) = inspect_json(&[
        "inspect", "--clean", "--json", &dead_name, &live_name, &foreign,
    ]);
    assert_eq!(code, Some(0));
    assert!(
        v["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == dead_name.as_str()),
        "{v}"
    );
    assert!(!v["removed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == live_name.as_str()));
    assert!(!std::path::Path::new(&format!("/dev/shm/psyne-{dead_name}")).exists());
    assert!(std::path::Path::new(&format!("/dev/shm/psyne-{live_name}")).exists());
    assert!(std::path::Path::new(&fpath).exists());
    // Naming a live segment does not remove it either.
    let (_, v) = inspect_json(&["inspect", "--clean", "--json", &live_name]);
    assert_eq!(v["removed"].as_array().unwrap().len(), 0);
    std::fs::remove_file(&fpath).unwrap();

    // The live holder finishes once a receiver takes its messages.
    let r = run(&[
        "recv",
        &format!("ipc://{live_name}"),
        "--count",
        "2",
        "--timeout",
        "60",
    ]);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "message 0\nmessage 1\n");
    // ... and the last detach removes the segment.
    assert!(live.wait(Duration::from_secs(60)).status.success());
    assert!(!std::path::Path::new(&format!("/dev/shm/psyne-{live_name}")).exists());
}

#[test]
fn bench_quick_json_has_every_row_and_sane_figures() {
    let out = run(&["bench", "--quick", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let rows = v["rows"].as_array().unwrap();
    let mut missing = Vec::new();
    for t in ["memory", "ipc", "tcp", "unix", "ws"] {
        for m in ["SPSC", "MPMC"] {
            for size in [64u64, 4096, 1 << 20] {
                let cell: Vec<&Value> = rows
                    .iter()
                    .filter(|r| r["transport"] == t && r["mode"] == m && r["size"] == size)
                    .collect();
                let psyne = cell.iter().find(|r| r["role"] == "psyne");
                let base = cell.iter().find(|r| r["role"] == "baseline");
                let (Some(p), Some(b)) = (psyne, base) else {
                    missing.push(format!("{t} {m} {size}"));
                    continue;
                };
                // Baselines always run; psyne's ws row may be unsupported
                // until the transport exists, every other must run.
                assert_eq!(b["status"], "ok", "{b}");
                let psyne_may_skip = t == "ws" && p["status"] == "unsupported";
                if !psyne_may_skip {
                    assert_eq!(p["status"], "ok", "{p}");
                }
                for r in [p, b] {
                    if r["status"] != "ok" {
                        continue;
                    }
                    assert!(r["messages_per_sec"].as_f64().unwrap() > 0.0, "{r}");
                    assert!(r["bytes_per_sec"].as_f64().unwrap() > 0.0, "{r}");
                    assert!(r["messages"].as_u64().unwrap() > 0, "{r}");
                    let l = &r["round_trip"];
                    let (p50, p99, p999) = (
                        l["p50_ns"].as_u64().unwrap(),
                        l["p99_ns"].as_u64().unwrap(),
                        l["p999_ns"].as_u64().unwrap(),
                    );
                    assert!(0 < p50 && p50 <= p99 && p99 <= p999, "{r}");
                    assert!(l["samples"].as_u64().unwrap() > 0);
                }
            }
        }
    }
    assert!(missing.is_empty(), "missing cells: {missing:?}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigint_detaches_cleanly() {
    let name = unique("sigint");
    let mut kid = spawn(&["recv", &format!("ipc://{name}")], b"");
    let path = format!("/dev/shm/psyne-{name}");
    let end = Instant::now() + Duration::from_secs(30);
    while !std::path::Path::new(&path).exists() {
        assert!(Instant::now() < end, "recv never created its segment");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = kid.0.as_ref().unwrap().id();
    // SAFETY: kill(2) with our child's pid (not yet reaped) and a valid signal.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGINT) }, 0);
    let out = kid.0.take().unwrap().wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The last process detached: the segment is gone, not stale.
    assert!(!std::path::Path::new(&path).exists());
}
