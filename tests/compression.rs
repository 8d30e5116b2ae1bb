//! Compression (LZ4, Zstd, Snappy) and CRC32C checksums on every transport:
//! memory, ipc (across real processes), tcp and unix.
//!
//! * Every algorithm × transport × sizes around the threshold round-trips,
//!   through copying sends and reservations, views and copying receives; the
//!   receiving end is opened with no compression settings at all.
//! * Incompressible data goes uncompressed (`messages_compressed` stays 0).
//! * Flipped bits are caught: in the ipc segment (mapped by the test), on the
//!   wire (a raw socket peer); a message claiming 4 GiB is refused without
//!   allocating it.
//! * Frames compressed by the reference crates decode, and what psyne
//!   compresses decodes with them (docs/PROTOCOL.md, section 3.2).
//!
//! ipc children are this test binary re-run with `PSYNE_COMP_ROLE` set
//! (`child_entry`). Timeouts are generous; nothing asserts speed.

use psyne::{Channel, ChannelType, CompressionConfig, CompressionType, Error, Metrics, Mode};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);
const KINDS: [CompressionType; 3] = [
    CompressionType::Lz4,
    CompressionType::Zstd,
    CompressionType::Snappy,
];
const THRESHOLD: usize = 512;
/// Sizes around the threshold, and larger ones.
const SIZES: [usize; 7] = [0, 100, 511, 512, 513, 4096, 100_000];

static NEXT: AtomicU32 = AtomicU32::new(0);

fn uniq(tag: &str) -> String {
    format!(
        "c{}-{}-{tag}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn cfg(kind: CompressionType, checksum: bool) -> CompressionConfig {
    CompressionConfig {
        kind,
        level: if kind == CompressionType::Zstd { 5 } else { 0 },
        min_size_threshold: THRESHOLD,
        enable_checksum: checksum,
    }
}

/// Compressible: JSON-like log lines, `i` making each message different.
fn text(i: usize, size: usize) -> Vec<u8> {
    let line =
        format!("{{\"seq\":{i},\"level\":\"info\",\"msg\":\"frame received\",\"detector\":7}}\n");
    line.bytes().cycle().take(size).collect()
}

/// Incompressible: xorshift bytes.
fn random(seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < LONG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A sending handle with `c` and a plain receiving handle on one channel.
fn pair(transport: &str, c: CompressionConfig, ring: usize) -> (Channel, Channel) {
    let open = |uri: &str, size: usize, comp: Option<CompressionConfig>| {
        let mut b = Channel::builder(uri)
            .buffer_size(size)
            .mode(Mode::Spsc)
            .channel_type(ChannelType::Multi);
        if let Some(comp) = comp {
            b = b.compression(comp);
        }
        b.build().unwrap()
    };
    match transport {
        "memory" | "ipc" => {
            let uri = format!("{transport}://{}", uniq("pair"));
            let tx = open(&uri, ring, Some(c));
            let rx = open(&uri, 0, None);
            (tx, rx)
        }
        "tcp" | "unix" => {
            let luri = if transport == "tcp" {
                "tcp://127.0.0.1:0?role=listen".to_string()
            } else {
                format!("unix:///tmp/psyne-comp-{}.sock?role=listen", uniq("s"))
            };
            let rx = open(&luri, ring, None);
            let tx = open(
                &format!("{transport}://{}", rx.local_addr().unwrap()),
                ring,
                Some(c),
            );
            (tx, rx)
        }
        _ => unreachable!(),
    }
}

/// Sends every size twice (copying send, then a reservation), compressible
/// or not, and checks each arrives intact (views, then copying receives).
/// Returns the messages that should have been compressed.
fn exchange(tx: &Channel, rx: &Channel, compressible: bool) -> u64 {
    let mut expect_compressed = 0;
    let mut buf = vec![0u8; 200_000];
    for (i, &size) in SIZES.iter().enumerate() {
        let data = if compressible {
            text(i, size)
        } else {
            random(i as u64 + 1, size)
        };
        if compressible && size >= THRESHOLD {
            expect_compressed += 2;
        }
        tx.send_timeout(&data, i as u32 + 1, LONG).unwrap();
        let mut slot = tx.reserve_timeout(size, LONG).unwrap();
        assert_eq!(slot.len(), size, "reserve hands out the size asked for");
        slot.copy_from_slice(&data);
        slot.send(i as u32 + 100).unwrap();

        let m = rx.recv_timeout(LONG).unwrap();
        assert_eq!(m.msg_type(), i as u32 + 1);
        assert!(m[..] == data[..], "size {size}: view differs");
        drop(m);
        let t = Instant::now();
        let (n, ty) = loop {
            match rx.try_recv_into(&mut buf) {
                Ok(x) => break x,
                Err(Error::NoMessage) if t.elapsed() < LONG => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("size {size}: {e}"),
            }
        };
        assert_eq!((n, ty), (size, i as u32 + 100));
        assert!(buf[..n] == data[..], "size {size}: copy differs");
    }
    expect_compressed
}

fn bytes_total() -> u64 {
    SIZES.iter().map(|&s| 2 * s as u64).sum()
}

fn check_metrics(transport: &str, tx: &Metrics, rx: &Metrics, compressed: u64) {
    assert_eq!(tx.messages_compressed, compressed, "{transport}: {tx:?}");
    assert_eq!(rx.checksum_failures, 0);
    assert_eq!(tx.bytes_sent, bytes_total(), "{transport}: payload bytes");
    if compressed > 0 {
        assert!(
            tx.wire_bytes_sent < tx.bytes_sent,
            "{transport}: compression saved nothing on the wire: {tx:?}"
        );
    }
}

#[test]
fn every_algorithm_on_every_transport_reaches_a_plain_receiver() {
    for transport in ["memory", "ipc", "tcp", "unix"] {
        for kind in KINDS {
            for checksum in [false, true] {
                let (tx, rx) = pair(transport, cfg(kind, checksum), 1 << 20);
                let compressed = exchange(&tx, &rx, true);
                if transport == "memory" || transport == "ipc" {
                    check_metrics(transport, &tx.metrics(), &rx.metrics(), compressed);
                    let m = rx.metrics();
                    assert_eq!(m.bytes_received, bytes_total());
                    assert_eq!(m.wire_bytes_received, tx.metrics().wire_bytes_sent);
                } else {
                    wait_for("the writer's counts", || {
                        tx.metrics().messages_compressed == compressed
                    });
                    check_metrics(transport, &tx.metrics(), &rx.metrics(), compressed);
                }
            }
        }
    }
}

#[test]
fn incompressible_data_goes_uncompressed() {
    for transport in ["memory", "ipc", "tcp", "unix"] {
        for kind in KINDS {
            let (tx, rx) = pair(transport, cfg(kind, false), 1 << 20);
            assert_eq!(exchange(&tx, &rx, false), 0);
            let m = tx.metrics();
            assert_eq!(m.messages_compressed, 0, "{transport} {kind:?}: {m:?}");
            if transport == "memory" || transport == "ipc" {
                // Stored plain: the ring holds exactly the payload bytes,
                // apart from reservations on which nothing was done but
                // that carry an envelope on multi-producer rings (none here).
                assert_eq!(m.wire_bytes_sent, m.bytes_sent, "{transport} {kind:?}");
            }
        }
    }
}

#[test]
fn uri_options_configure_compression_and_a_plain_end_reads_it() {
    let name = uniq("uri");
    let tx = Channel::open(
        &format!("memory://{name}?compression=zstd&level=3&min_size=64&checksum=on"),
        1 << 16,
        Mode::Mpmc,
        ChannelType::Multi,
    )
    .unwrap();
    let rx = Channel::open(
        &format!("memory://{name}"),
        0,
        Mode::Mpmc,
        ChannelType::Multi,
    )
    .unwrap();
    assert_eq!(tx.max_message_size(), rx.max_message_size() - 16);
    let data = text(1, 5000);
    tx.try_send(&data, 3).unwrap();
    // A reservation on a multi-producer ring keeps its claimed size.
    let mut slot = tx.try_reserve(5000).unwrap();
    slot.copy_from_slice(&data);
    slot.send(4).unwrap();
    for ty in [3, 4] {
        let m = rx.try_recv().unwrap();
        assert_eq!((&m[..], m.msg_type()), (&data[..], ty));
    }
    assert_eq!(tx.metrics().messages_compressed, 2);
    // Too large for a handle that encodes (the envelope takes 16 bytes).
    let too_big = vec![0u8; tx.max_message_size() + 1];
    assert!(matches!(
        tx.try_send(&too_big, 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        tx.try_reserve(too_big.len()),
        Err(Error::InvalidArgument(_))
    ));
    // A buffer too small for the decoded message leaves it queued.
    tx.try_send(&data, 5).unwrap();
    let mut small = vec![0u8; 100];
    match rx.try_recv_into(&mut small) {
        Err(Error::BufferTooSmall { needed, .. }) => assert_eq!(needed, 5000),
        other => panic!("expected BufferTooSmall, got {other:?}"),
    }
    let m = rx.try_recv().unwrap();
    assert_eq!((&m[..], m.msg_type()), (&data[..], 5));
    // Out-of-range levels and doubled settings are refused.
    let bad = CompressionConfig {
        level: 23,
        ..cfg(CompressionType::Zstd, false)
    };
    assert!(matches!(
        Channel::builder("memory://lvl").compression(bad).build(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Channel::builder("memory://dbl?compression=lz4")
            .compression(cfg(CompressionType::Lz4, false))
            .build(),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_compressing_producer_handle_and_a_consumer_handle() {
    let name = uniq("sides");
    let tx = Channel::builder(format!("ipc://{name}"))
        .buffer_size(1 << 18)
        .compression(cfg(CompressionType::Lz4, true))
        .build()
        .unwrap();
    let rx = Channel::open(&format!("ipc://{name}"), 0, Mode::Spsc, ChannelType::Multi).unwrap();
    let mut p = tx.producer().unwrap();
    let mut c = rx.consumer().unwrap();
    for i in 0..200 {
        let data = text(i, 600 + i * 13);
        if i % 2 == 0 {
            p.send_timeout(&data, i as u32, LONG).unwrap();
        } else {
            let mut s = p.reserve_timeout(data.len(), LONG).unwrap();
            s.copy_from_slice(&data);
            s.send(i as u32).unwrap();
        }
        let m = c.recv_timeout(LONG).unwrap();
        assert_eq!((&m[..], m.msg_type()), (&data[..], i as u32));
    }
    assert_eq!(tx.metrics().messages_compressed, 200);
}

// ---------------------------------------------------------------------------
// ipc: across processes, and a corrupted segment
// ---------------------------------------------------------------------------

fn spawn_child(role: &str, name: &str, extra: &[(&str, String)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("PSYNE_COMP_ROLE", role)
        .env("PSYNE_COMP_NAME", name)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn child_ok(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "child failed: {text}");
    assert!(text.contains("@@ok"), "child did not finish: {text}");
    text
}

const IPC_MESSAGES: usize = 300;

/// The child: sends (with a compression kind) or receives (plain), and
/// checks every message.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var("PSYNE_COMP_ROLE") else {
        return;
    };
    let name = std::env::var("PSYNE_COMP_NAME").unwrap();
    let uri = format!("ipc://{name}");
    match role.as_str() {
        "send" => {
            let kind = match std::env::var("PSYNE_COMP_KIND").unwrap().as_str() {
                "lz4" => CompressionType::Lz4,
                "zstd" => CompressionType::Zstd,
                _ => CompressionType::Snappy,
            };
            let ch = Channel::builder(&uri)
                .buffer_size(0)
                .compression(cfg(kind, true))
                .build()
                .unwrap();
            for i in 0..IPC_MESSAGES {
                let size = [0, 511, 512, 513, 3000, 70_000][i % 6];
                ch.send_timeout(&text(i, size), i as u32, LONG).unwrap();
            }
            println!("@@compressed {}", ch.metrics().messages_compressed);
        }
        "recv" => {
            let ch = Channel::open(&uri, 0, Mode::Spsc, ChannelType::Multi).unwrap();
            for i in 0..IPC_MESSAGES {
                let size = [0, 511, 512, 513, 3000, 70_000][i % 6];
                let m = ch.recv_timeout(LONG).unwrap();
                assert_eq!(m.msg_type(), i as u32);
                assert!(m[..] == text(i, size)[..], "message {i} differs");
            }
        }
        other => panic!("unknown role {other}"),
    }
    println!("@@ok");
}

#[test]
fn ipc_across_processes_both_ways() {
    for (kind, tag) in KINDS.iter().zip(["lz4", "zstd", "snappy"]) {
        // A plain parent reads what a compressing child sends.
        let name = uniq(tag);
        let rx = Channel::open(
            &format!("ipc://{name}"),
            1 << 18,
            Mode::Spsc,
            ChannelType::Multi,
        )
        .unwrap();
        let child = spawn_child("send", &name, &[("PSYNE_COMP_KIND", tag.to_string())]);
        for i in 0..IPC_MESSAGES {
            let size = [0, 511, 512, 513, 3000, 70_000][i % 6];
            let m = rx.recv_timeout(LONG).unwrap();
            assert_eq!(m.msg_type(), i as u32, "{tag}");
            assert!(m[..] == text(i, size)[..], "{tag}: message {i} differs");
        }
        let out = child_ok(child);
        assert!(
            out.contains(&format!("@@compressed {}", IPC_MESSAGES / 6 * 4)),
            "{out}"
        );
        assert_eq!(rx.metrics().checksum_failures, 0);

        // A plain child reads what this compressing parent sends.
        let name = uniq(tag);
        let tx = Channel::builder(format!("ipc://{name}"))
            .buffer_size(1 << 18)
            .compression(cfg(*kind, true))
            .build()
            .unwrap();
        let child = spawn_child("recv", &name, &[]);
        for i in 0..IPC_MESSAGES {
            let size = [0, 511, 512, 513, 3000, 70_000][i % 6];
            tx.send_timeout(&text(i, size), i as u32, LONG).unwrap();
        }
        child_ok(child);
        assert_eq!(
            tx.metrics().messages_compressed,
            (IPC_MESSAGES / 6 * 4) as u64
        );
    }
}

/// Finds `pattern` in the segment file of `ipc://name`, mapped shared.
fn with_segment(name: &str, pattern: &[u8], f: impl FnOnce(&mut [u8], usize)) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/shm/psyne-{name}"))
        .unwrap();
    let len = file.metadata().unwrap().len() as usize;
    // SAFETY: a shared mapping of a file of `len` bytes, unmapped below.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::unix::io::AsRawFd::as_raw_fd(&file),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    // SAFETY: the mapping is `len` readable and writable bytes.
    let bytes = unsafe { std::slice::from_raw_parts_mut(map as *mut u8, len) };
    let at = bytes
        .windows(pattern.len())
        .position(|w| w == pattern)
        .expect("the message is in the segment");
    f(bytes, at);
    // SAFETY: mapped above.
    unsafe { libc::munmap(map, len) };
}

#[test]
fn flipped_bits_in_the_ipc_segment_are_caught_and_counted() {
    for kind in [CompressionType::None, CompressionType::Lz4] {
        let name = uniq("flip");
        let tx = Channel::builder(format!("ipc://{name}"))
            .buffer_size(1 << 16)
            .compression(CompressionConfig {
                kind,
                level: 0,
                min_size_threshold: 0,
                enable_checksum: true,
            })
            .build()
            .unwrap();
        let rx =
            Channel::open(&format!("ipc://{name}"), 0, Mode::Spsc, ChannelType::Multi).unwrap();
        // Random bytes stay uncompressed: the body in the ring is the message.
        let victim = random(99, 300);
        tx.try_send(&victim, 1).unwrap();
        tx.try_send(b"after", 2).unwrap();
        with_segment(&name, &victim[..32], |b, at| b[at + 100] ^= 0x10);
        let mut buf = [0u8; 1000];
        // The corrupt message is dropped; the next one arrives.
        assert_eq!(rx.try_recv_into(&mut buf).unwrap(), (5, 2));
        assert_eq!(&buf[..5], b"after");
        let m = rx.metrics();
        assert_eq!((m.checksum_failures, m.messages_received), (1, 1), "{m:?}");

        // The same through a view (other bytes: the first copy is still in
        // the ring).
        let victim = random(202, 300);
        tx.try_send(&victim, 3).unwrap();
        tx.try_send(b"after", 4).unwrap();
        with_segment(&name, &victim[..32], |b, at| b[at + 7] ^= 0x01);
        let v = rx.try_recv().unwrap();
        assert_eq!((&v[..], v.msg_type()), (&b"after"[..], 4));
        drop(v);
        assert_eq!(rx.metrics().checksum_failures, 2);
        // Nothing left.
        assert!(matches!(rx.try_recv(), Err(Error::NoMessage)));
    }
}

#[test]
fn a_message_claiming_4_gib_in_the_ipc_segment_is_refused() {
    let name = uniq("huge");
    let tx = Channel::builder(format!("ipc://{name}"))
        .buffer_size(1 << 16)
        .compression(cfg(CompressionType::None, true))
        .build()
        .unwrap();
    let rx = Channel::open(&format!("ipc://{name}"), 0, Mode::Spsc, ChannelType::Multi).unwrap();
    for (i, view) in [(0u32, false), (1, true)] {
        let victim = random(7 + i as u64, 200);
        tx.try_send(&victim, 10 + i).unwrap();
        tx.try_send(b"ok", 20 + i).unwrap();
        // The envelope is the 16 bytes before the body, the record header
        // the 16 before that: decoded length at header offset 12 and
        // envelope offset 8.
        with_segment(&name, &victim[..32], |b, at| {
            let env = at - 16;
            let hdr = env - 16;
            b[hdr + 12..hdr + 16].copy_from_slice(&u32::MAX.to_le_bytes());
            b[env + 8..env + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        });
        if view {
            let m = rx.try_recv().unwrap();
            assert_eq!(&m[..], b"ok");
        } else {
            let mut buf = [0u8; 64];
            assert_eq!(rx.try_recv_into(&mut buf).unwrap(), (2, 20));
        }
        assert_eq!(rx.metrics().frames_refused, 1 + i as u64);
    }
}

// ---------------------------------------------------------------------------
// Sockets: raw peers
// ---------------------------------------------------------------------------

const HELLO_LEN: usize = 32;

fn hello(role: u8, max_frame: u32, decoders: u32) -> [u8; HELLO_LEN] {
    let mut b = [0u8; HELLO_LEN];
    b[0..4].copy_from_slice(b"PSYN");
    b[4..6].copy_from_slice(&1u16.to_le_bytes());
    b[6..8].copy_from_slice(&32u16.to_le_bytes());
    b[8] = role;
    b[10] = 1;
    b[16..20].copy_from_slice(&max_frame.to_le_bytes());
    b[20..24].copy_from_slice(&decoders.to_le_bytes());
    b
}

fn frame(msg_type: u32, flags: u16, checksum: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&msg_type.to_le_bytes());
    f.extend_from_slice(&flags.to_le_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&checksum.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// The reference crates' encodings, as the protocol lays them out.
fn reference_compress(algo: u8, data: &[u8]) -> Vec<u8> {
    let mut p = (data.len() as u32).to_le_bytes().to_vec();
    match algo {
        1 => p.extend(lz4_flex::block::compress(data)),
        2 => p.extend(zstd::bulk::compress(data, 3).unwrap()),
        3 => p.extend(snap::raw::Encoder::new().compress_vec(data).unwrap()),
        _ => unreachable!(),
    }
    p
}

fn reference_decompress(algo: u8, payload: &[u8]) -> Vec<u8> {
    let raw = u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize;
    let body = &payload[4..];
    let out = match algo {
        1 => lz4_flex::block::decompress(body, raw).unwrap(),
        2 => zstd::bulk::decompress(body, raw).unwrap(),
        3 => snap::raw::Decoder::new().decompress_vec(body).unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(out.len(), raw);
    out
}

/// A psyne listener and a raw connected socket that has done its HELLO.
fn raw_to_listener(opts: &str) -> (Channel, TcpStream) {
    let l = Channel::open(
        &format!("tcp://127.0.0.1:0?role=listen&handshake_timeout=2000{opts}"),
        1 << 16,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap();
    let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    s.write_all(&hello(0, 1 << 20, 0b111)).unwrap();
    let mut h = [0u8; HELLO_LEN];
    s.read_exact(&mut h).unwrap();
    assert_eq!(
        u32::from_le_bytes(h[20..24].try_into().unwrap()),
        0b111,
        "psyne decodes all three"
    );
    (l, s)
}

/// Reads until the peer closes; returns what came (a CLOSE frame, maybe).
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    v
}

fn close_reason(bytes: &[u8]) -> String {
    assert!(bytes.len() >= 16, "no CLOSE frame: {bytes:?}");
    let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 0x8000);
    String::from_utf8_lossy(&bytes[16..16 + len]).to_string()
}

#[test]
fn frames_compressed_by_the_reference_crates_decode() {
    let (l, mut s) = raw_to_listener("");
    for algo in 1..=3u8 {
        let data = text(algo as usize, 20_000);
        let payload = reference_compress(algo, &data);
        let crc = crc32c::crc32c(&data);
        s.write_all(&frame(algo as u32, 1 | (algo as u16) << 1, crc, &payload))
            .unwrap();
        let m = l.recv_timeout(LONG).unwrap();
        assert_eq!((&m[..], m.msg_type()), (&data[..], algo as u32));
    }
    // docs/PROTOCOL.md section 3.2's example, byte for byte.
    let example = "12 00 00 00 07 00 00 00 03 00 00 00 BB 06 29 1C \
                   40 00 00 00 4F 61 62 63 64 04 00 24 50 64 61 62 63 64";
    let bytes: Vec<u8> = example
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    s.write_all(&bytes).unwrap();
    let m = l.recv_timeout(LONG).unwrap();
    assert_eq!((&m[..], m.msg_type()), (&b"abcd".repeat(16)[..], 7));
    assert_eq!(crc32c::crc32c(&m), 0x1C29_06BB);
    drop(m);
    assert_eq!(l.metrics().frames_refused, 0);
}

#[test]
fn what_psyne_compresses_decodes_with_the_reference_crates() {
    for (algo, kind) in (1..=3u8).zip(KINDS) {
        let raw = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = Channel::builder(format!("tcp://{}", raw.local_addr().unwrap()))
            .buffer_size(1 << 16)
            .compression(cfg(kind, true))
            .build()
            .unwrap();
        let (mut s, _) = raw.accept().unwrap();
        s.set_read_timeout(Some(LONG)).unwrap();
        s.write_all(&hello(1, 1 << 20, 0b111)).unwrap();
        let mut h = [0u8; HELLO_LEN];
        s.read_exact(&mut h).unwrap();
        let data = text(9, 10_000);
        c.send_timeout(&data, 5, LONG).unwrap();
        c.send_timeout(b"small", 6, LONG).unwrap();
        let mut hdr = [0u8; 16];
        s.read_exact(&mut hdr).unwrap();
        let len = u32::from_le_bytes(hdr[0..4].try_into().unwrap()) as usize;
        let flags = u16::from_le_bytes([hdr[8], hdr[9]]);
        assert_eq!(flags, 1 | (algo as u16) << 1, "{kind:?}");
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).unwrap();
        let back = reference_decompress(algo, &payload);
        assert_eq!(back, data);
        assert_eq!(
            u32::from_le_bytes(hdr[12..16].try_into().unwrap()),
            crc32c::crc32c(&data),
            "the checksum covers the uncompressed message"
        );
        // Below the threshold: plain.
        s.read_exact(&mut hdr).unwrap();
        assert_eq!(u16::from_le_bytes([hdr[8], hdr[9]]), 1);
        let mut p = [0u8; 5];
        s.read_exact(&mut p).unwrap();
        assert_eq!(&p, b"small");
    }
}

#[test]
fn a_peer_that_announces_no_decoders_gets_plain_frames() {
    let raw = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = Channel::builder(format!("tcp://{}", raw.local_addr().unwrap()))
        .buffer_size(1 << 16)
        .compression(cfg(CompressionType::Zstd, false))
        .build()
        .unwrap();
    let (mut s, _) = raw.accept().unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    s.write_all(&hello(1, 1 << 20, 0)).unwrap();
    let mut h = [0u8; HELLO_LEN];
    s.read_exact(&mut h).unwrap();
    let data = text(3, 4000);
    c.send_timeout(&data, 1, LONG).unwrap();
    let mut f = vec![0u8; 16 + data.len()];
    s.read_exact(&mut f).unwrap();
    assert_eq!(u16::from_le_bytes([f[8], f[9]]), 0);
    assert_eq!(&f[16..], &data[..]);
    assert_eq!(c.metrics().messages_compressed, 0);
}

#[test]
fn corrupt_compressed_frames_reset_the_connection_and_are_counted() {
    let data = text(1, 5000);
    let good = reference_compress(1, &data);
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n / 2] ^= 0x40;
    let mut huge = good.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut short = good.clone();
    short[..4].copy_from_slice(&(data.len() as u32 - 1).to_le_bytes());
    let crc = crc32c::crc32c(&data);
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        // A checksum over other bytes than the uncompressed message.
        (
            "checksum-mismatch",
            frame(1, 1 | 1 << 1, crc ^ 1, &good),
            true,
        ),
        // Bits flipped in the body: it no longer decodes, or the CRC catches it.
        ("", frame(1, 1 | 1 << 1, crc, &flipped), false),
        // A raw length of 4 GiB: refused before anything is allocated.
        ("bad-compression", frame(1, 1 << 1, 0, &huge), false),
        // A raw length that is not what the body decompresses to.
        ("bad-compression", frame(1, 1 << 1, 0, &short), false),
        // Snappy flag on an LZ4 body.
        ("bad-compression", frame(1, 3 << 1, 0, &good), false),
    ];
    for (tag, bytes, is_checksum) in cases {
        let (l, mut s) = raw_to_listener("");
        s.write_all(&bytes).unwrap();
        let reason = close_reason(&read_to_close(&mut s));
        if tag.is_empty() {
            assert!(
                reason.starts_with("bad-compression") || reason.starts_with("checksum-mismatch"),
                "{reason}"
            );
        } else {
            assert!(reason.starts_with(tag), "{tag}: {reason}");
        }
        let m = l.metrics();
        assert_eq!(m.frames_refused, 1, "{tag}: {m:?}");
        if is_checksum {
            assert_eq!(m.checksum_failures, 1, "{tag}");
        }
        assert!(
            matches!(l.try_recv(), Err(Error::NoMessage)),
            "{tag}: delivered"
        );
    }
}

#[test]
fn flipped_bits_on_an_uncompressed_checksummed_frame_are_caught_on_unix_too() {
    let path = format!("/tmp/psyne-comp-{}.sock", uniq("u"));
    let l = Channel::open(
        &format!("unix://{path}?role=listen"),
        1 << 16,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap();
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    s.write_all(&hello(0, 1 << 20, 0)).unwrap();
    let mut h = [0u8; HELLO_LEN];
    s.read_exact(&mut h).unwrap();
    let mut data = random(5, 1000);
    let crc = crc32c::crc32c(&data);
    data[500] ^= 0x04;
    s.write_all(&frame(1, 1, crc, &data)).unwrap();
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    assert!(close_reason(&v).starts_with("checksum-mismatch"));
    wait_for("the count", || l.metrics().checksum_failures == 1);
    assert!(matches!(l.try_recv(), Err(Error::NoMessage)));
}

// ---------------------------------------------------------------------------
// Interop with the reference implementations (Python's lz4.block, zstandard,
// python-snappy plus a stdlib Snappy decoder), through tests/peer/psyne_peer.py
// ---------------------------------------------------------------------------

/// The venv interpreter with the reference libraries (tests/suites/lib/pyvenv.sh
/// exports it; the Rust suite sources that file). Without it the interop test
/// says so and does nothing.
fn reference_python() -> Option<String> {
    std::env::var("PSYNE_PYTHON").ok().filter(|p| !p.is_empty())
}

fn peer_script() -> String {
    format!("{}/tests/peer/psyne_peer.py", env!("CARGO_MANIFEST_DIR"))
}

/// psyne_peer.py's known contents: byte j of message i is (131i + 1 + 7j) mod 256.
fn peer_payload(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|j| (131 * i + 1 + 7 * j) as u8).collect()
}

const PEER_SIZES: [usize; 5] = [0, 100, 600, 4096, 60_000];

fn run_peer(python: &str, args: &[&str]) -> std::process::Child {
    Command::new(python)
        .arg(peer_script())
        .args(args)
        .args(["--timeout", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the venv python")
}

fn peer_summary(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "psyne_peer.py failed: {text}");
    text.lines().last().unwrap_or_default().to_string()
}

#[test]
fn psyne_and_the_reference_libraries_read_each_other() {
    let Some(python) = reference_python() else {
        eprintln!("PSYNE_PYTHON is not set: interop with the reference libraries not run (tests/suites/00-rust.sh sets it)");
        return;
    };
    let sizes = PEER_SIZES.map(|s| s.to_string()).join(",");
    let n = 2 * PEER_SIZES.len();
    for (tag, kind) in ["lz4", "zstd", "snappy"].into_iter().zip(KINDS) {
        // psyne compresses, the reference decodes.
        let raw = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = raw.local_addr().unwrap().port();
        drop(raw);
        let ep = format!("tcp:127.0.0.1:{port}");
        let peer = run_peer(
            &python,
            &[
                "--listen",
                &ep,
                "recv",
                &n.to_string(),
                "--verify",
                "--checksum",
                "--decoders",
                tag,
            ],
        );
        let c = Channel::builder(format!("tcp://127.0.0.1:{port}"))
            .buffer_size(1 << 18)
            .compression(CompressionConfig {
                kind,
                level: 0,
                min_size_threshold: 500,
                enable_checksum: true,
            })
            .build()
            .unwrap();
        for i in 0..n {
            c.send_timeout(
                &peer_payload(i, PEER_SIZES[i % PEER_SIZES.len()]),
                i as u32 + 1,
                LONG,
            )
            .unwrap();
        }
        let s = peer_summary(peer);
        assert!(s.contains(&format!("\"count\":{n}")), "{tag}: {s}");
        // 600, 4096 and 60000 bytes, twice each.
        assert!(s.contains("\"compressed_received\":6"), "{tag}: {s}");
        assert!(!s.contains("violation"), "{tag}: {s}");
        wait_for("the writer's counts", || {
            c.metrics().messages_compressed == 6
        });

        // The reference compresses, psyne decodes (a listener with no settings).
        let l = Channel::open(
            "tcp://127.0.0.1:0?role=listen",
            1 << 18,
            Mode::Spsc,
            ChannelType::Multi,
        )
        .unwrap();
        let ep = format!("tcp:{}", l.local_addr().unwrap());
        let peer = run_peer(
            &python,
            &[
                "--connect",
                &ep,
                "send",
                &n.to_string(),
                "--sizes",
                &sizes,
                "--checksum",
                "--compress",
                tag,
            ],
        );
        for i in 0..n {
            let m = l.recv_timeout(LONG).unwrap();
            assert_eq!(m.msg_type(), i as u32 + 1, "{tag}");
            assert!(
                m[..] == peer_payload(i, PEER_SIZES[i % PEER_SIZES.len()])[..],
                "{tag}: message {i} differs"
            );
        }
        peer_summary(peer);
        let m = l.metrics();
        assert_eq!((m.frames_refused, m.checksum_failures), (0, 0), "{tag}");
        // Compressed on the wire: fewer bytes than the payloads.
        assert!(m.wire_bytes_received < m.bytes_received, "{tag}: {m:?}");
    }
}
