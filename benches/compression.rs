//! Compression through a psyne channel beside the bare libraries, in the
//! same run.
//!
//! * `codec/{payload}_{size}/lib_{algo}`: compress + decompress with the
//!   library directly (reused contexts and buffers: the fastest a caller can
//!   do it).
//! * `codec/{payload}_{size}/psyne_{algo}`: the same message through a
//!   `memory://` channel whose sender compresses (send + copying receive on
//!   one thread): compression, the copy into the ring, decompression into
//!   the caller's buffer. Its overhead over `lib_` is the channel's.
//! * `tcp_64KiB_json/{none,lz4,zstd,snappy}`: 64 KiB JSON-lines messages
//!   streamed over loopback tcp, end to end.
//!
//! Payloads: a float64 detector frame (a smooth signal plus noise, 8-byte
//! little-endian samples), JSON log lines, random bytes; 4 KiB and 1 MiB.
//! The compression ratio of each (algorithm, payload) is printed once.
//!
//!   cargo bench --manifest-path benches/Cargo.toml --bench compression

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use psyne::{Channel, ChannelType, CompressionConfig, CompressionType, Mode};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static NAME: AtomicU64 = AtomicU64::new(0);

fn detector_frame(size: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut out = Vec::with_capacity(size);
    let mut i = 0u64;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let noise = (x % 1000) as f64 * 1e-6;
        let v = (i as f64 * 0.01).sin() * 100.0 + noise;
        // Detector values are digitised: 12 significant bits of mantissa.
        let v = f64::from_bits(v.to_bits() & !((1u64 << 40) - 1));
        out.extend_from_slice(&v.to_le_bytes());
        i += 1;
    }
    out.truncate(size);
    out
}

fn json_lines(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    let mut i = 0u64;
    while out.len() < size {
        out.extend_from_slice(
            format!(
                "{{\"ts\":\"2026-12-03T02:{:02}:{:02}.{:03}Z\",\"level\":\"{}\",\"service\":\"detector-{}\",\"event\":\"frame\",\"seq\":{i},\"latency_us\":{}}}\n",
                (i / 60) % 60,
                i % 60,
                (i * 7) % 1000,
                ["info", "warn", "debug"][(i % 3) as usize],
                i % 8,
                (i * 37) % 500
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(size);
    out
}

fn random(size: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

const ALGOS: [(&str, CompressionType); 3] = [
    ("lz4", CompressionType::Lz4),
    ("zstd", CompressionType::Zstd),
    ("snappy", CompressionType::Snappy),
];

/// The bare library: compress into `comp`, decompress into `back`.
struct Lib {
    zc: zstd::bulk::Compressor<'static>,
    zd: zstd::bulk::Decompressor<'static>,
    sc: snap::raw::Encoder,
    sd: snap::raw::Decoder,
    comp: Vec<u8>,
    back: Vec<u8>,
}

impl Lib {
    fn new() -> Lib {
        Lib {
            zc: zstd::bulk::Compressor::new(3).unwrap(),
            zd: zstd::bulk::Decompressor::new().unwrap(),
            sc: snap::raw::Encoder::new(),
            sd: snap::raw::Decoder::new(),
            comp: Vec::new(),
            back: Vec::new(),
        }
    }

    /// Compressed size.
    fn round_trip(&mut self, kind: CompressionType, data: &[u8]) -> usize {
        self.back.resize(data.len(), 0);
        let n = match kind {
            CompressionType::Lz4 => {
                self.comp
                    .resize(lz4_flex::block::get_maximum_output_size(data.len()), 0);
                let n = lz4_flex::block::compress_into(data, &mut self.comp).unwrap();
                lz4_flex::block::decompress_into(&self.comp[..n], &mut self.back).unwrap();
                n
            }
            CompressionType::Zstd => {
                self.comp.clear();
                self.comp
                    .reserve(zstd::zstd_safe::compress_bound(data.len()));
                let n = self.zc.compress_to_buffer(data, &mut self.comp).unwrap();
                self.zd
                    .decompress_to_buffer(&self.comp[..n], &mut self.back[..])
                    .unwrap();
                n
            }
            CompressionType::Snappy => {
                self.comp.resize(snap::raw::max_compress_len(data.len()), 0);
                let n = self.sc.compress(data, &mut self.comp).unwrap();
                self.sd.decompress(&self.comp[..n], &mut self.back).unwrap();
                n
            }
            CompressionType::None => unreachable!(),
        };
        black_box(&self.back);
        n
    }
}

/// Makes a payload of the given length.
type MakePayload = fn(usize) -> Vec<u8>;

fn codec(c: &mut Criterion) {
    let payloads: [(&str, MakePayload); 3] = [
        ("f64frame", detector_frame),
        ("json", json_lines),
        ("random", random),
    ];
    let mut lib = Lib::new();
    for (pname, make) in payloads {
        for (sname, size) in [("4KiB", 4096usize), ("1MiB", 1 << 20)] {
            let data = make(size);
            let mut g = c.benchmark_group(format!("codec/{pname}_{sname}"));
            g.throughput(Throughput::Bytes(size as u64));
            for (aname, kind) in ALGOS {
                let n = lib.round_trip(kind, &data);
                eprintln!(
                    "ratio {pname}_{sname} {aname}: {:.3} ({size} -> {n} bytes)",
                    size as f64 / n as f64
                );
                g.bench_function(format!("lib_{aname}"), |b| {
                    b.iter(|| lib.round_trip(kind, black_box(&data)))
                });
                let name = format!(
                    "memory://bench-comp-{}",
                    NAME.fetch_add(1, Ordering::Relaxed)
                );
                let tx = Channel::builder(&name)
                    .buffer_size(4 << 20)
                    .compression(CompressionConfig {
                        kind,
                        level: 0,
                        min_size_threshold: 0,
                        enable_checksum: false,
                    })
                    .build()
                    .unwrap();
                let rx = Channel::open(&name, 0, Mode::Spsc, ChannelType::Multi).unwrap();
                let (mut p, mut q) = (tx.producer().unwrap(), rx.consumer().unwrap());
                let mut buf = vec![0u8; size];
                g.bench_function(format!("psyne_{aname}"), |b| {
                    b.iter(|| {
                        p.try_send(black_box(&data), 1).unwrap();
                        black_box(q.try_recv_into(&mut buf).unwrap());
                    })
                });
            }
            g.finish();
        }
    }
}

/// Streams `iters` 64 KiB JSON messages over loopback tcp.
fn tcp_stream(kind: CompressionType, iters: u64) -> Duration {
    let size = 64 << 10;
    let rx = Channel::open(
        "tcp://127.0.0.1:0?role=listen",
        4 << 20,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap();
    let tx = Channel::builder(format!("tcp://{}", rx.local_addr().unwrap()))
        .buffer_size(4 << 20)
        .compression(CompressionConfig {
            kind,
            level: 0,
            min_size_threshold: 1024,
            enable_checksum: false,
        })
        .build()
        .unwrap();
    let data = json_lines(size);
    let consumer = std::thread::spawn(move || {
        let mut buf = vec![0u8; size];
        for _ in 0..iters {
            black_box(rx.recv_into(&mut buf).unwrap());
        }
    });
    let start = Instant::now();
    for _ in 0..iters {
        tx.send(&data, 1).unwrap();
    }
    consumer.join().unwrap();
    start.elapsed()
}

fn tcp(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp_64KiB_json");
    g.throughput(Throughput::Bytes(64 << 10));
    for (name, kind) in [("none", CompressionType::None)].into_iter().chain(ALGOS) {
        g.bench_function(name, |b| b.iter_custom(|iters| tcp_stream(kind, iters)));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    targets = codec, tcp
}
criterion_main!(benches);
