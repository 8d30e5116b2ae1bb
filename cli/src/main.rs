//! `psyne`: benchmark, send, receive and inspect psyne channels.

/// Prints a line to stdout. A reader that went away (`psyne ... | head`)
/// ends the command quietly with exit 0.
macro_rules! out {
    ($($t:tt)*) => { $crate::print_line(&format!($($t)*)) };
}

mod bench;
mod pipe;
mod show;

use clap::{Args, Parser, Subcommand};
use psyne::Mode;
use std::process::ExitCode;

/// Exit codes, one meaning each (documented in `--help`).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A runtime failure: I/O, a peer that vanished, a stopped channel, a
    /// benchmark row that failed.
    pub const FAILURE: u8 = 1;
    /// Bad arguments: a malformed URI or option, an unknown transport, a
    /// message larger than the channel takes, no such segment.
    pub const USAGE: u8 = 2;
    /// `--timeout` ran out before the work was done.
    pub const TIMEOUT: u8 = 3;
    /// The transport is not available in this build (UNSUPPORTED).
    pub const UNSUPPORTED: u8 = 4;
    /// `inspect NAME`: the segment exists but no live process uses it
    /// (stale or persisted), or it is unusable (foreign, corrupt, another
    /// version).
    pub const NOT_LIVE: u8 = 5;
}

const EXIT_CODES: &str = "\
Exit codes:
  0  success (inspect NAME: the segment is live)
  1  runtime failure (I/O, peer gone, channel stopped, a benchmark row failed)
  2  bad arguments (malformed URI or option, unknown transport, message too large, no such segment)
  3  --timeout ran out before the work was done
  4  transport not available in this build (UNSUPPORTED)
  5  inspect NAME: the segment is stale, persisted or unusable (not live)
  128+N  send/recv ended by signal N (SIGINT: 130), after detaching cleanly";

const EXAMPLES: &str = "\
Examples:
  psyne bench                                   # every transport, SPSC and MPMC, 64 B / 4 KiB / 1 MiB
  psyne bench --quick --json > bench.json       # a short run, for machines
  psyne recv ipc://jobs --count 3 &             # one shell receives ...
  printf 'a\\nb\\nc\\n' | psyne send ipc://jobs   # ... another sends three lines
  psyne recv 'tcp://:7000' &                    # a listener prints what arrives
  psyne send tcp://localhost:7000 < lines.txt   # a connector sends each line
  psyne inspect ipc://jobs                      # a live segment's processes, depth, counters
  psyne inspect --all                           # every segment in /dev/shm
  psyne inspect --clean                         # remove segments left by crashed processes";

const BENCH_HELP: &str = "\
Each cell (transport x mode x size) measures psyne and, in the same run, the
baseline a user would otherwise pick: rtrb (SPSC) and crossbeam-channel (MPMC)
for memory://, a Unix socketpair for ipc://, std TcpStream for tcp://, std
UnixStream for unix://, tungstenite for ws://. Sockets carry a 4-byte length
before each message through 64 KiB buffers. Throughput: copies of one buffer
sent for a fixed time and copied out by the receivers (SPSC: 1 x 1 threads;
MPMC: 2 x 2 on one channel). Latency: ping-pong between two threads, round
trip, HDR histogram (p50 / p99 / p99.9). All in this process, in threads.
A transport this build refuses is reported as \"unsupported\".
The whole matrix takes about a minute; --quick under 20 s.

Examples:
  psyne bench
  psyne bench --quick --transport memory,ipc --size 64,4K
  psyne bench --json > bench.json && python3 docs/plots/plot.py bench.json docs/plots";

/// Roles and the memory:// caveat, shared by send and recv.
const ROLES: &str = "\
Roles follow the URI: tcp://HOST:PORT and ws:// connect, tcp://:PORT listens;
unix://PATH connects, unix://PATH?role=listen listens; ?role=listen or
?role=connect overrides. A connector waits (retrying) for its listener.
memory:// lives inside one process, so two commands cannot share it: use
ipc:// between processes on one host.";

const SEND_HELP: &str = "\
Each line of stdin becomes one message (without its newline); with FILE
arguments each file becomes one message ('-' is all of stdin). Once
everything is sent, waits until the channel has handed every message on (a
receiver took it from shared memory, or the socket end wrote it out), so
that nothing is lost when this process exits.";

const SEND_EXAMPLES: &str = "\
Examples:
  printf 'hello\\nworld\\n' | psyne send ipc://jobs
  psyne send --type 7 tcp://localhost:7000 frame1.bin frame2.bin
  seq 1000 | psyne send 'unix:///tmp/app.sock?role=listen' --timeout 30";

const RECV_HELP: &str = "\
Prints each message followed by a newline (--raw: the bytes only). Ends after
--count messages, when the channel is stopped, or when nothing arrives for
--timeout seconds (then exit 0 without --count, 3 if fewer than --count came).";

const RECV_EXAMPLES: &str = "\
Examples:
  psyne recv ipc://jobs --count 2
  psyne recv 'tcp://:7000' --show-type
  psyne recv 'unix:///tmp/app.sock?role=listen' --raw --count 1 > frame.bin";

const INSPECT_HELP: &str = "\
Reads the segment without attaching to it: configuration, attached processes
(alive or dead), depth, high-water mark, counters. A file that is not a
usable psyne segment is reported with the reason, never trusted.
A stale segment is one whose processes all died: --clean removes those (and
only those: never a live segment, nor a persisted one, which was opened with
persist=on and keeps its unread messages for the next open).

Examples:
  psyne inspect ipc://jobs
  psyne inspect --all --json
  psyne inspect --clean                 # every stale segment of this user
  psyne inspect --clean ipc://jobs      # only this one, if stale";

/// The command line, with the long help texts attached.
fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
        .after_help(format!("{EXAMPLES}\n\n{EXIT_CODES}"))
        .mut_subcommand("bench", |c| {
            c.after_help(format!("{BENCH_HELP}\n\n{EXIT_CODES}"))
        })
        .mut_subcommand("send", |c| {
            c.after_help(format!(
                "{SEND_HELP}\n\n{ROLES}\n\n{SEND_EXAMPLES}\n\n{EXIT_CODES}"
            ))
        })
        .mut_subcommand("recv", |c| {
            c.after_help(format!(
                "{RECV_HELP}\n\n{ROLES}\n\n{RECV_EXAMPLES}\n\n{EXIT_CODES}"
            ))
        })
        .mut_subcommand("inspect", |c| {
            c.after_help(format!("{INSPECT_HELP}\n\n{EXIT_CODES}"))
        })
}

#[derive(Parser)]
#[command(
    name = "psyne",
    version = psyne::VERSION,
    about = "Benchmark, send, receive and inspect psyne channels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Throughput and latency of every transport beside its baseline
    Bench(BenchArgs),
    /// Send stdin lines (or files) as messages
    Send(SendArgs),
    /// Print received messages as lines (or raw bytes)
    Recv(RecvArgs),
    /// Show an ipc:// segment, or list and clean /dev/shm
    Inspect(InspectArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// A short run of the whole matrix (under 20 s)
    #[arg(long)]
    quick: bool,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Transports to measure (memory, ipc, tcp, unix, ws)
    #[arg(long, value_delimiter = ',', value_name = "T,...")]
    transport: Vec<String>,
    /// Message sizes in bytes (suffixes K and M: 64,4K,1M)
    #[arg(long, value_delimiter = ',', value_name = "N,...", value_parser = parse_size)]
    size: Vec<usize>,
    /// Modes to measure (spsc, mpmc)
    #[arg(long, value_delimiter = ',', value_name = "M,...", value_parser = parse_bench_mode)]
    mode: Vec<Mode>,
}

#[derive(Args)]
pub struct ChannelArgs {
    /// Channel URI (ipc://NAME, tcp://HOST:PORT, tcp://:PORT, unix://PATH, ws://HOST:PORT/PATH)
    pub uri: String,
    /// Ring size in bytes (suffixes K, M); on ipc:// both commands must agree, or one gives 0 to attach
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    pub buffer: usize,
    /// Channel mode (spsc, spmc, mpsc, mpmc); on ipc:// both commands must agree
    #[arg(long, default_value = "spsc", value_parser = parse_mode)]
    pub mode: Mode,
    /// Seconds any one wait may take (default: no limit)
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

#[derive(Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub channel: ChannelArgs,
    /// Files to send, one message each ('-' = all of stdin); default: each stdin line
    pub files: Vec<std::path::PathBuf>,
    /// Message type of every message
    #[arg(long = "type", default_value_t = 0)]
    pub msg_type: u32,
    /// Send at most N messages
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

#[derive(Args)]
pub struct RecvArgs {
    #[command(flatten)]
    pub channel: ChannelArgs,
    /// End after N messages
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Write the message bytes only (no newline after each)
    #[arg(long)]
    pub raw: bool,
    /// Prefix each line with the message type and a tab
    #[arg(long, conflicts_with = "raw")]
    pub show_type: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    /// The segments (ipc://NAME or NAME)
    #[arg(required_unless_present_any = ["all", "clean"], value_name = "URI")]
    pub uris: Vec<String>,
    /// List every psyne segment in /dev/shm with its state
    #[arg(long)]
    pub all: bool,
    /// Remove stale segments (whose processes all died): the ones named, or every one in /dev/shm; never a live one
    #[arg(long)]
    pub clean: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let bad = || format!("{s:?} is not a size (a number, optionally with K, M or G)");
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1usize << 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 1 << 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: usize = num.trim().parse().map_err(|_| bad())?;
    n.checked_mul(mul)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s.to_ascii_lowercase().as_str() {
        "spsc" => Ok(Mode::Spsc),
        "spmc" => Ok(Mode::Spmc),
        "mpsc" => Ok(Mode::Mpsc),
        "mpmc" => Ok(Mode::Mpmc),
        _ => Err(format!("{s:?} is not a mode (spsc, spmc, mpsc, mpmc)")),
    }
}

fn parse_bench_mode(s: &str) -> Result<Mode, String> {
    match parse_mode(s)? {
        m @ (Mode::Spsc | Mode::Mpmc) => Ok(m),
        _ => Err(format!("the benchmark measures spsc and mpmc, not {s:?}")),
    }
}

/// The exit code for a library error.
pub fn code_of(e: &psyne::Error) -> u8 {
    match e {
        psyne::Error::InvalidArgument(_) | psyne::Error::BufferTooSmall { .. } => exit::USAGE,
        psyne::Error::Timeout => exit::TIMEOUT,
        psyne::Error::Unsupported(_) => exit::UNSUPPORTED,
        _ => exit::FAILURE,
    }
}

/// A failure to report: the message and the exit code.
pub struct Failure(pub u8, pub String);

impl From<psyne::Error> for Failure {
    fn from(e: psyne::Error) -> Failure {
        Failure(code_of(&e), e.to_string())
    }
}

impl Failure {
    /// The same failure, saying what was being done.
    pub fn context(self, what: &str) -> Failure {
        Failure(self.0, format!("{what}: {}", self.1))
    }
}

fn bench(a: BenchArgs) -> Result<u8, Failure> {
    let known = bench::schemes();
    let transports: Vec<String> = if a.transport.is_empty() {
        known.iter().map(|s| s.to_string()).collect()
    } else {
        a.transport
            .iter()
            .map(|t| t.trim().trim_end_matches("://").to_string())
            .collect()
    };
    if let Some(bad) = transports.iter().find(|t| !known.contains(&t.as_str())) {
        return Err(Failure(
            exit::USAGE,
            format!("unknown transport {bad:?} (known: {})", known.join(", ")),
        ));
    }
    if let Some(&bad) = a.size.iter().find(|&&n| n == 0 || n > 64 << 20) {
        return Err(Failure(
            exit::USAGE,
            format!("message size {bad} is outside 1..=64M"),
        ));
    }
    let opts = bench::Options {
        quick: a.quick,
        json: a.json,
        transports,
        sizes: if a.size.is_empty() {
            bench::DEFAULT_SIZES.to_vec()
        } else {
            a.size
        },
        modes: if a.mode.is_empty() {
            vec![Mode::Spsc, Mode::Mpmc]
        } else {
            a.mode
        },
    };
    let report = bench::run(&opts);
    if opts.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&report)
                .map_err(|e| Failure(exit::FAILURE, e.to_string()))?
        );
    } else {
        out!("{}", bench::table(&report));
    }
    Ok(if report.rows.iter().any(|r| r.status == "error") {
        exit::FAILURE
    } else {
        exit::OK
    })
}

pub fn print_line(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(exit::OK.into());
        }
        eprintln!("psyne: writing stdout: {e}");
        std::process::exit(exit::FAILURE.into());
    }
}

fn main() -> ExitCode {
    use clap::FromArgMatches;
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let r = match cli.command {
        Command::Bench(a) => bench(a),
        Command::Send(a) => pipe::send(a),
        Command::Recv(a) => pipe::recv(a),
        Command::Inspect(a) => show::inspect(a),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, msg)) => {
            eprintln!("psyne: {msg}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("64B"), Ok(64));
        assert!(parse_size("x").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn help_lists_the_exit_codes() {
        let mut cmd = command();
        cmd.build();
        cmd.clone().debug_assert();
        for sub in [
            None,
            Some("bench"),
            Some("send"),
            Some("recv"),
            Some("inspect"),
        ] {
            let mut c = match sub {
                None => cmd.clone(),
                Some(name) => cmd.find_subcommand(name).unwrap().clone(),
            };
            let help = c.render_long_help().to_string();
            assert!(help.contains("Exit codes:"), "{sub:?}");
            assert!(help.contains("Examples:"), "{sub:?}");
        }
    }
}
