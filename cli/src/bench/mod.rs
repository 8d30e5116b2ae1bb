//! `psyne bench`: every transport × SPSC/MPMC × message size, psyne beside
//! the baseline a user would otherwise pick, measured in the same run.
//!
//! Throughput: producers send copies of one buffer for a fixed time while
//! consumers copy every message out; the rate is messages received over the
//! time from the start to the last receive. SPSC is one sending and one
//! receiving thread; MPMC two of each on one channel. Latency: one message
//! bounced between two threads (over two rings on memory/ipc, back and forth
//! over one connection on sockets); every round trip goes into an HDR
//! histogram. Everything runs in this one process, in threads — ipc:// and
//! its Unix-socket baseline included (the shared-memory path is the same
//! between threads as between processes; `psyne send`/`recv` cover real
//! process pairs).

mod ends;

use ends::{Duplex, Res, Stream};
use hdrhistogram::Histogram;
use psyne::Mode;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// One transport: its psyne scheme and its baseline. Adding a transport, or
/// a psyne transport landing, is one entry here: psyne's rows open
/// `SCHEME://` and report "unsupported" while the library refuses it.
struct Transport {
    scheme: &'static str,
    /// The baseline's name for SPSC and MPMC.
    baseline: fn(Mode) -> &'static str,
    stream: fn(Mode, usize, usize) -> Res<Stream>,
    duplex: fn(Mode, usize) -> Res<Duplex>,
}

const TRANSPORTS: &[Transport] = &[
    Transport {
        scheme: "memory",
        baseline: |m| {
            if m == Mode::Spsc {
                "rtrb"
            } else {
                "crossbeam-channel"
            }
        },
        stream: |m, size, n| {
            Ok(if m == Mode::Spsc {
                ends::rtrb_stream(size)
            } else {
                ends::crossbeam_stream(size, n)
            })
        },
        duplex: |m, size| {
            Ok(if m == Mode::Spsc {
                ends::rtrb_duplex(size)
            } else {
                ends::crossbeam_duplex(size)
            })
        },
    },
    Transport {
        scheme: "ipc",
        baseline: |_| "unix socketpair",
        stream: |_, _, n| ends::socketpair_stream(n),
        duplex: |_, _| ends::socketpair_duplex(),
    },
    Transport {
        scheme: "tcp",
        baseline: |_| "std TcpStream",
        stream: |_, _, n| ends::tcp_stream(n),
        duplex: |_, _| ends::tcp_duplex(),
    },
    Transport {
        scheme: "unix",
        baseline: |_| "std UnixStream",
        stream: |_, _, n| ends::unix_stream(n),
        duplex: |_, _| ends::unix_duplex(),
    },
    Transport {
        scheme: "ws",
        baseline: |_| "tungstenite",
        stream: |_, _, n| ends::ws_stream(n),
        duplex: |_, _| ends::ws_duplex(),
    },
];

/// The transports `--transport` accepts.
pub fn schemes() -> Vec<&'static str> {
    TRANSPORTS.iter().map(|t| t.scheme).collect()
}

pub const DEFAULT_SIZES: [usize; 3] = [64, 4096, 1 << 20];

pub struct Options {
    pub quick: bool,
    pub json: bool,
    pub transports: Vec<String>,
    pub sizes: Vec<usize>,
    pub modes: Vec<Mode>,
}

/// How long each measurement runs.
struct Budget {
    throughput: Duration,
    latency: Duration,
}

#[derive(Serialize, Clone, Copy)]
pub struct Latency {
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub samples: u64,
}

#[derive(Serialize)]
pub struct Row {
    pub transport: String,
    pub mode: String,
    /// Sending × receiving threads.
    pub threads: String,
    pub size: usize,
    /// "psyne" or the baseline's name.
    pub system: String,
    /// "psyne" or "baseline".
    pub role: String,
    /// "ok", "unsupported" or "error".
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    /// Round-trip latency (ping-pong).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_trip: Option<Latency>,
}

#[derive(Serialize)]
pub struct Report {
    pub psyne_version: &'static str,
    pub cpu: String,
    pub cpus: usize,
    pub quick: bool,
    /// /proc/loadavg's 1-minute figure before and after the run: other work
    /// on the machine moves every figure.
    pub load_average: [f64; 2],
    pub seconds: f64,
    pub method: &'static str,
    pub rows: Vec<Row>,
}

const METHOD: &str = "one process, threads; throughput: copies of one buffer sent for a fixed time, copied out by the receivers, rate = messages / (last receive - start); SPSC = 1 sender x 1 receiver thread, MPMC = 2 x 2 on one channel; latency: ping-pong between two threads, round trip, HDR histogram";

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Spsc => "SPSC",
        Mode::Spmc => "SPMC",
        Mode::Mpsc => "MPSC",
        Mode::Mpmc => "MPMC",
    }
}

fn threads(m: Mode) -> usize {
    if m == Mode::Spsc {
        1
    } else {
        2
    }
}

pub fn size_name(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Runs the matrix; a system that fails is an "error" row with the reason.
pub fn run(opts: &Options) -> Report {
    let budget = if opts.quick {
        Budget {
            throughput: Duration::from_millis(70),
            latency: Duration::from_millis(50),
        }
    } else {
        Budget {
            throughput: Duration::from_millis(500),
            latency: Duration::from_millis(300),
        }
    };
    let chosen: Vec<&'static Transport> = TRANSPORTS
        .iter()
        .filter(|t| opts.transports.iter().any(|s| s == t.scheme))
        .collect();
    let cells = chosen.len() * opts.modes.len() * opts.sizes.len();
    let bar = progress(cells as u64 * 2);
    let started = Instant::now();
    let load_before = load_average();
    let mut rows = Vec::new();
    let mut cell = 0;
    for &t in &chosen {
        for &mode in &opts.modes {
            for &size in &opts.sizes {
                cell += 1;
                let tag = format!("{cell}");
                let base = (t.baseline)(mode);
                bar.set_message(format!(
                    "{} {} {} psyne",
                    t.scheme,
                    mode_name(mode),
                    size_name(size)
                ));
                rows.push(measure(t.scheme, mode, size, "psyne", &budget, || {
                    psyne_ends(t.scheme, &tag, mode, size)
                }));
                bar.inc(1);
                bar.set_message(format!(
                    "{} {} {} {base}",
                    t.scheme,
                    mode_name(mode),
                    size_name(size)
                ));
                rows.push(measure(t.scheme, mode, size, base, &budget, || {
                    Ok(Some((
                        Box::new(move || (t.stream)(mode, size, threads(mode)))
                            as Box<dyn Fn() -> Res<Stream>>,
                        Box::new(move || (t.duplex)(mode, size)) as Box<dyn Fn() -> Res<Duplex>>,
                    )))
                }));
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    Report {
        psyne_version: psyne::VERSION,
        cpu: cpu_model(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        quick: opts.quick,
        load_average: [load_before, load_average()],
        seconds: started.elapsed().as_secs_f64(),
        method: METHOD,
        rows,
    }
}

fn progress(steps: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(steps),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

type Makers = (Box<dyn Fn() -> Res<Stream>>, Box<dyn Fn() -> Res<Duplex>>);

/// psyne's ends for `scheme`: `None` when this build refuses the scheme
/// (`Unsupported`).
fn psyne_ends(scheme: &'static str, tag: &str, mode: Mode, size: usize) -> Res<Option<Makers>> {
    // Probe once: an unsupported transport says so at open.
    match ends::psyne_pair(scheme, &format!("{tag}-probe"), mode, size) {
        Err(psyne::Error::Unsupported(_)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
        Ok(_) => {}
    }
    let (t1, t2) = (format!("{tag}-s"), format!("{tag}-d"));
    Ok(Some((
        Box::new(move || {
            ends::psyne_stream(scheme, &t1, mode, size, threads(mode)).map_err(|e| e.to_string())
        }),
        Box::new(move || ends::psyne_duplex(scheme, &t2, mode, size).map_err(|e| e.to_string())),
    )))
}

fn measure(
    scheme: &str,
    mode: Mode,
    size: usize,
    system: &str,
    budget: &Budget,
    make: impl FnOnce() -> Res<Option<Makers>>,
) -> Row {
    let n = threads(mode);
    let mut row = Row {
        transport: scheme.into(),
        mode: mode_name(mode).into(),
        threads: format!("{n}x{n}"),
        size,
        system: system.into(),
        role: if system == "psyne" {
            "psyne"
        } else {
            "baseline"
        }
        .into(),
        status: "ok".into(),
        detail: None,
        messages_per_sec: None,
        bytes_per_sec: None,
        messages: None,
        round_trip: None,
    };
    let result = make().and_then(|makers| {
        let Some((stream, duplex)) = makers else {
            row.status = "unsupported".into();
            row.detail = Some(format!(
                "this build of libpsyne refuses {scheme}:// (UNSUPPORTED)"
            ));
            return Ok(());
        };
        let (messages, secs) = throughput(stream()?, size, budget.throughput)?;
        row.messages = Some(messages);
        row.messages_per_sec = Some(messages as f64 / secs);
        row.bytes_per_sec = Some((messages * size as u64) as f64 / secs);
        let h = latency(duplex()?, size, budget.latency)?;
        row.round_trip = Some(Latency {
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            samples: h.len(),
        });
        Ok(())
    });
    if let Err(e) = result {
        row.status = "error".into();
        row.detail = Some(e);
    }
    row
}

/// How long a receiver waits before it checks whether the run is over.
const POLL: Duration = Duration::from_millis(5);
/// A run with no message for this long has lost messages or hung.
const STALL: Duration = Duration::from_secs(10);

/// Streams copies of a `size`-byte buffer for `dur`; returns the messages
/// received and the seconds from the start to the last receive.
fn throughput(stream: Stream, size: usize, dur: Duration) -> Res<(u64, f64)> {
    let Stream { txs, rxs } = stream;
    let stop = Arc::new(AtomicBool::new(false));
    let expected = Arc::new(AtomicU64::new(u64::MAX));
    let counts: Arc<Vec<AtomicU64>> = Arc::new(rxs.iter().map(|_| AtomicU64::new(0)).collect());
    let go = Arc::new(Barrier::new(txs.len() + rxs.len() + 1));

    let consumers: Vec<_> = rxs
        .into_iter()
        .enumerate()
        .map(|(i, mut rx)| {
            let (stop, expected, counts, go) =
                (stop.clone(), expected.clone(), counts.clone(), go.clone());
            std::thread::spawn(move || -> Res<(u64, Instant)> {
                let mut buf = vec![0u8; size];
                let mut got = 0u64;
                go.wait();
                let mut last = Instant::now();
                loop {
                    match rx.recv(&mut buf, POLL)? {
                        Some(n) => {
                            if n != size {
                                return Err(format!("received {n} bytes, sent {size}"));
                            }
                            got += 1;
                            if got % 64 == 0 || stop.load(Relaxed) {
                                last = Instant::now();
                            }
                        }
                        None => {
                            counts[i].store(got, Relaxed);
                            let total: u64 = counts.iter().map(|c| c.load(Relaxed)).sum();
                            if total >= expected.load(Relaxed) {
                                return Ok((got, last));
                            }
                            if last.elapsed() > STALL {
                                return Err(format!(
                                    "no message for {} s ({total} received)",
                                    STALL.as_secs()
                                ));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let producers: Vec<_> = txs
        .into_iter()
        .map(|mut tx| {
            let (stop, go) = (stop.clone(), go.clone());
            std::thread::spawn(move || -> Res<(u64, Box<dyn ends::Tx>)> {
                let msg = vec![0xa5u8; size];
                let mut sent = 0u64;
                go.wait();
                while !stop.load(Relaxed) {
                    tx.send(&msg)?;
                    sent += 1;
                }
                tx.flush()?;
                Ok((sent, tx))
            })
        })
        .collect();
    go.wait();
    let t0 = Instant::now();
    std::thread::sleep(dur);
    stop.store(true, Relaxed);
    let mut sent = 0;
    let mut keep = Vec::new();
    let mut first_err = None;
    for p in producers {
        match p
            .join()
            .map_err(|_| "a sender panicked".to_string())
            .and_then(|r| r)
        {
            Ok((n, tx)) => {
                sent += n;
                keep.push(tx);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        // Receivers would wait for messages that never come.
        expected.store(0, Relaxed);
        for c in consumers {
            let _ = c.join();
        }
        return Err(e);
    }
    expected.store(sent, Relaxed);
    let mut received = 0;
    let mut end = t0;
    for c in consumers {
        let (n, last) = c.join().map_err(|_| "a receiver panicked".to_string())??;
        received += n;
        end = end.max(last);
    }
    drop(keep);
    if received != sent {
        return Err(format!("sent {sent} messages, received {received}"));
    }
    if received == 0 {
        return Err("no message went through".into());
    }
    Ok((received, end.duration_since(t0).as_secs_f64().max(1e-9)))
}

/// Ping-pong for `dur`: side A sends, B echoes; each round trip is recorded.
fn latency(d: Duplex, size: usize, dur: Duration) -> Res<Histogram<u64>> {
    let Duplex {
        a: (mut atx, mut arx),
        b: (mut btx, mut brx),
    } = d;
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let stop = stop.clone();
        std::thread::spawn(move || -> Res<()> {
            let mut buf = vec![0u8; size];
            while !stop.load(Relaxed) {
                if let Some(n) = brx.recv(&mut buf, POLL)? {
                    btx.send(&buf[..n])?;
                    btx.flush()?;
                }
            }
            Ok(())
        })
    };
    let mut run = || -> Res<Histogram<u64>> {
        let mut h =
            Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
        let msg = vec![0x5au8; size];
        let mut buf = vec![0u8; size];
        let end = Instant::now() + dur;
        let mut i = 0u64;
        loop {
            let t = Instant::now();
            atx.send(&msg)?;
            atx.flush()?;
            match arx.recv(&mut buf, STALL)? {
                Some(n) if n == size => {}
                Some(n) => return Err(format!("echo of {n} bytes, sent {size}")),
                None => return Err(format!("no echo within {} s", STALL.as_secs())),
            }
            let now = Instant::now();
            // The first round trips warm caches and connections up.
            if i >= 8 {
                h.record(now.duration_since(t).as_nanos().max(1) as u64)
                    .map_err(|e| e.to_string())?;
            }
            i += 1;
            if now >= end && h.len() >= 16 {
                return Ok(h);
            }
        }
    };
    let r = run();
    stop.store(true, Relaxed);
    let e = echo
        .join()
        .map_err(|_| "the echo thread panicked".to_string())?;
    let h = r?;
    e?;
    Ok(h)
}

// ------------------------------------------------------------------ output

fn rate(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2} G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0} ")
    }
}

pub fn micros(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us >= 100.0 {
        format!("{us:.0}")
    } else if us >= 10.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.2}")
    }
}

fn lat(r: &Row) -> String {
    match (&r.round_trip, r.status.as_str()) {
        (Some(l), _) => format!(
            "{} / {} / {}",
            micros(l.p50_ns),
            micros(l.p99_ns),
            micros(l.p999_ns)
        ),
        (None, s) => s.to_string(),
    }
}

fn tput(r: &Row) -> String {
    match (r.messages_per_sec, r.bytes_per_sec) {
        (Some(m), Some(b)) => format!("{}msg/s {}B/s", rate(m), rate(b)),
        _ => r.status.clone(),
    }
}

/// A Markdown table: one line per cell, psyne beside its baseline.
pub fn table(report: &Report) -> String {
    let mut lines = vec![[
        "transport",
        "mode",
        "size",
        "psyne throughput",
        "baseline",
        "baseline throughput",
        "psyne/baseline",
        "psyne RTT p50 / p99 / p99.9 µs",
        "baseline RTT p50 / p99 / p99.9 µs",
    ]
    .map(String::from)
    .to_vec()];
    for pair in report.rows.chunks(2) {
        let [p, b] = pair else { continue };
        let ratio = match (p.messages_per_sec, b.messages_per_sec) {
            (Some(x), Some(y)) if y > 0.0 => format!("{:.2}×", x / y),
            _ => "–".into(),
        };
        lines.push(vec![
            p.transport.clone(),
            format!("{} {}", p.mode, p.threads),
            size_name(p.size),
            tput(p),
            b.system.clone(),
            tput(b),
            ratio,
            lat(p),
            lat(b),
        ]);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let fmt = |l: &Vec<String>| {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s}{}", " ".repeat(w - s.chars().count())))
            .collect();
        format!("| {} |", cells.join(" | "))
    };
    let mut out = vec![fmt(&lines[0])];
    out.push(format!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    ));
    out.extend(lines[1..].iter().map(fmt));
    let errors: Vec<String> = report
        .rows
        .iter()
        .filter(|r| r.status != "ok")
        .map(|r| {
            format!(
                "{} {} {} {}: {}: {}",
                r.transport,
                r.mode,
                size_name(r.size),
                r.system,
                r.status,
                r.detail.as_deref().unwrap_or("")
            )
        })
        .collect();
    out.push(String::new());
    out.push(format!(
        "{} · {} CPUs · load average {:.1} → {:.1} · psyne {} · {:.1} s{}",
        report.cpu,
        report.cpus,
        report.load_average[0],
        report.load_average[1],
        report.psyne_version,
        report.seconds,
        if report.quick { " · --quick" } else { "" }
    ));
    out.push(format!("Method: {}.", report.method));
    out.extend(errors);
    out.join("\n")
}
