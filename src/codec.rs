//! Message compression and checksums: the algorithms behind
//! [`CompressionConfig`], shared by every transport.
//!
//! * Sockets (`transport/net/conn.rs`) compress a message while framing it
//!   and decompress it straight into the receive ring (the frame layout is
//!   in `docs/PROTOCOL.md`, section 3.2).
//! * `memory://` and `ipc://` keep an *envelope* in the ring ([`Envelope`]):
//!   a 16-byte prefix saying what was done to the message, marked by the
//!   record state `ENCODED`, so that any receiver decodes any message.
//!
//! Every decode is bounded by the destination: the caller checks the
//! declared size against the channel's maximum *before* it allocates or
//! claims anything, and a body that does not decompress to exactly that
//! size is an error. The per-thread compressor contexts and scratch buffers
//! are reused from message to message.

use crate::config::{CompressionConfig, CompressionType};
use std::cell::RefCell;

/// Algorithm numbers, as in frame flags and envelopes.
pub(crate) const ALGO_NONE: u8 = 0;
/// LZ4 block.
pub(crate) const ALGO_LZ4: u8 = 1;
/// Zstd frame.
pub(crate) const ALGO_ZSTD: u8 = 2;
/// Snappy raw (no framing).
pub(crate) const ALGO_SNAPPY: u8 = 3;

/// The algorithm number of `kind`.
pub(crate) fn algo_of(kind: CompressionType) -> u8 {
    kind as u32 as u8
}

/// Whether a channel end with `cfg` does anything to its messages.
pub(crate) fn is_active(cfg: &CompressionConfig) -> bool {
    cfg.kind != CompressionType::None || cfg.enable_checksum
}

/// CRC32C (Castagnoli) of `data`, hardware-accelerated where the CPU has it.
#[inline]
pub(crate) fn checksum(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

struct Contexts {
    zstd_c: Option<(i32, zstd::bulk::Compressor<'static>)>,
    zstd_d: Option<zstd::bulk::Decompressor<'static>>,
    snap_c: Option<snap::raw::Encoder>,
    snap_d: Option<snap::raw::Decoder>,
    /// Spare buffers (compression output, decoded views, reservations).
    spare: Vec<Vec<u8>>,
}

thread_local! {
    static CONTEXTS: RefCell<Contexts> = const {
        RefCell::new(Contexts {
            zstd_c: None,
            zstd_d: None,
            snap_c: None,
            snap_d: None,
            spare: Vec::new(),
        })
    };
}

/// Most spare buffers a thread keeps.
const SPARES: usize = 4;

/// A buffer from this thread's spares (empty, with whatever capacity it had).
pub(crate) fn take_buffer() -> Vec<u8> {
    CONTEXTS
        .try_with(|c| c.borrow_mut().spare.pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Gives a buffer back to this thread's spares (dropped if it has enough).
/// Its length stays: growing it again to a size it had costs no zeroing.
pub(crate) fn give_buffer(buf: Vec<u8>) {
    let _ = CONTEXTS.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if c.spare.len() < SPARES {
                c.spare.push(buf);
            }
        }
    });
}

/// Compresses `src` with `cfg`'s algorithm into `out` when `src` is at least
/// the threshold; returns the algorithm number and `n` when `out[..n]` holds
/// an encoding smaller than `src`, `None` when the message goes as it is
/// (too small, incompressible, or the algorithm failed). `out` keeps its
/// length between calls, so that it is zeroed only when it grows.
pub(crate) fn compress(
    cfg: &CompressionConfig,
    src: &[u8],
    out: &mut Vec<u8>,
) -> Option<(u8, usize)> {
    if cfg.kind == CompressionType::None || src.len() < cfg.min_size_threshold || src.is_empty() {
        return None;
    }
    let grow = |out: &mut Vec<u8>, n: usize| {
        if out.len() < n {
            out.resize(n, 0);
        }
    };
    let n = match cfg.kind {
        CompressionType::None => return None,
        CompressionType::Lz4 => {
            grow(out, lz4_flex::block::get_maximum_output_size(src.len()));
            lz4_flex::block::compress_into(src, out).ok()?
        }
        CompressionType::Snappy => {
            grow(out, snap::raw::max_compress_len(src.len()));
            CONTEXTS
                .with(|c| {
                    let mut c = c.borrow_mut();
                    c.snap_c
                        .get_or_insert_with(snap::raw::Encoder::new)
                        .compress(src, out)
                })
                .ok()?
        }
        CompressionType::Zstd => {
            out.reserve(zstd::zstd_safe::compress_bound(src.len()));
            CONTEXTS
                .with(|c| -> std::io::Result<usize> {
                    let mut c = c.borrow_mut();
                    let level = cfg.level;
                    let z = match &mut c.zstd_c {
                        Some((l, z)) if *l == level => z,
                        slot => {
                            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
                            &mut slot.as_mut().expect("just set").1
                        }
                    };
                    // Room for the worst case: with less, zstd compresses
                    // through an internal buffer and copies (measured 1.5x
                    // slower at 4 KiB); a result that is not smaller is
                    // discarded below.
                    z.compress_to_buffer(src, out)
                })
                .ok()?
        }
    };
    (n < src.len()).then_some((algo_of(cfg.kind), n))
}

/// Decompresses `src` (algorithm `algo`) into exactly `dst.len()` bytes.
/// Anything else — an unknown algorithm, a corrupt body, more or fewer
/// bytes — is an error saying what.
pub(crate) fn decompress(algo: u8, src: &[u8], dst: &mut [u8]) -> Result<(), String> {
    let want = dst.len();
    let got = match algo {
        ALGO_LZ4 => lz4_flex::block::decompress_into(src, dst).map_err(|e| format!("LZ4: {e}"))?,
        ALGO_ZSTD => CONTEXTS
            .with(|c| -> std::io::Result<usize> {
                let mut c = c.borrow_mut();
                let d = match &mut c.zstd_d {
                    Some(d) => d,
                    slot => slot.insert(zstd::bulk::Decompressor::new()?),
                };
                d.decompress_to_buffer(src, dst)
            })
            .map_err(|e| format!("Zstd: {e}"))?,
        ALGO_SNAPPY => {
            let declared = snap::raw::decompress_len(src).map_err(|e| format!("Snappy: {e}"))?;
            if declared != want {
                return Err(format!(
                    "Snappy body declares {declared} bytes, the message {want}"
                ));
            }
            CONTEXTS
                .with(|c| {
                    let mut c = c.borrow_mut();
                    c.snap_d
                        .get_or_insert_with(snap::raw::Decoder::new)
                        .decompress(src, dst)
                })
                .map_err(|e| format!("Snappy: {e}"))?
        }
        other => return Err(format!("unknown compression algorithm {other}")),
    };
    if got != want {
        return Err(format!(
            "body decompressed to {got} bytes, the message declares {want}"
        ));
    }
    Ok(())
}

/// Size of the prefix of an encoded `memory://`/`ipc://` record.
pub(crate) const ENVELOPE_LEN: usize = 16;

/// Envelope flag: `crc` holds the CRC32C of the decoded message.
const ENV_CHECKSUM: u8 = 1;

/// The prefix of an encoded ring record (little-endian, `docs/IPC.md`):
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 1 | `algo`: 0 none, 1 LZ4, 2 Zstd, 3 Snappy |
/// | 1 | 1 | `flags`: bit 0 = `crc` is set |
/// | 2 | 2 | reserved, 0 |
/// | 4 | 4 | `crc`: CRC32C of the decoded message |
/// | 8 | 4 | `raw_len`: decoded length |
/// | 12 | 4 | `body_len`: bytes of body after the envelope |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub algo: u8,
    pub crc: Option<u32>,
    pub raw_len: u32,
    pub body_len: u32,
}

impl Envelope {
    pub(crate) fn encode(&self) -> [u8; ENVELOPE_LEN] {
        let mut b = [0u8; ENVELOPE_LEN];
        b[0] = self.algo;
        b[1] = if self.crc.is_some() { ENV_CHECKSUM } else { 0 };
        b[4..8].copy_from_slice(&self.crc.unwrap_or(0).to_le_bytes());
        b[8..12].copy_from_slice(&self.raw_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.body_len.to_le_bytes());
        b
    }

    /// Reads and checks an envelope at the start of a record of
    /// `record_len` bytes whose decoded length the ring recorded as
    /// `raw_len`.
    pub(crate) fn decode(b: &[u8], record_len: usize, raw_len: u32) -> Result<Envelope, String> {
        if b.len() < ENVELOPE_LEN || record_len < ENVELOPE_LEN {
            return Err(format!(
                "encoded record of {record_len} bytes has no envelope"
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let e = Envelope {
            algo: b[0],
            crc: (b[1] & ENV_CHECKSUM != 0).then(|| u32_at(4)),
            raw_len: u32_at(8),
            body_len: u32_at(12),
        };
        if e.algo > ALGO_SNAPPY || b[1] & !ENV_CHECKSUM != 0 || b[2] != 0 || b[3] != 0 {
            return Err(format!(
                "envelope algorithm {} / flags {:#04x} / reserved bytes not understood",
                b[0], b[1]
            ));
        }
        if e.raw_len != raw_len {
            return Err(format!(
                "envelope says {} bytes, the record header {raw_len}",
                e.raw_len
            ));
        }
        if e.body_len as usize > record_len - ENVELOPE_LEN {
            return Err(format!(
                "envelope body of {} bytes in a record of {record_len}",
                e.body_len
            ));
        }
        if e.algo == ALGO_NONE && e.body_len != e.raw_len {
            return Err(format!(
                "uncompressed body of {} bytes for a message of {}",
                e.body_len, e.raw_len
            ));
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: CompressionType, min: usize) -> CompressionConfig {
        CompressionConfig {
            kind,
            level: 0,
            min_size_threshold: min,
            enable_checksum: false,
        }
    }

    const KINDS: [CompressionType; 3] = [
        CompressionType::Lz4,
        CompressionType::Zstd,
        CompressionType::Snappy,
    ];

    #[test]
    fn every_algorithm_round_trips_and_refuses_other_sizes() {
        let text: Vec<u8> = b"psyne moves byte messages; ".repeat(200);
        for kind in KINDS {
            let mut buf = Vec::new();
            let (algo, n) = compress(&cfg(kind, 0), &text, &mut buf).expect("text compresses");
            assert!(n < text.len(), "{kind:?}");
            let out = &buf[..n];
            let mut back = vec![0u8; text.len()];
            decompress(algo, out, &mut back).unwrap();
            assert_eq!(back, text, "{kind:?}");
            let mut short = vec![0u8; text.len() - 1];
            assert!(decompress(algo, out, &mut short).is_err(), "{kind:?} short");
            let mut long = vec![0u8; text.len() + 1];
            assert!(decompress(algo, out, &mut long).is_err(), "{kind:?} long");
            assert!(decompress(algo, &out[..n / 2], &mut back).is_err());
        }
    }

    #[test]
    fn below_the_threshold_or_incompressible_stays_as_is() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut out = Vec::new();
        for kind in KINDS {
            assert_eq!(compress(&cfg(kind, 0), &random, &mut out), None, "{kind:?}");
            assert_eq!(compress(&cfg(kind, 10_000), &[0u8; 4096], &mut out), None);
            assert!(compress(&cfg(kind, 4096), &[0u8; 4096], &mut out).is_some());
        }
    }

    #[test]
    fn zstd_honours_the_level() {
        let words = [
            "frame", "detector", "psyne", "ring", "message", "zero", "copy", "queue",
        ];
        let mut x = 12345u32;
        let mut text = Vec::new();
        while text.len() < 50_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            text.extend_from_slice(words[(x >> 16) as usize % words.len()].as_bytes());
            text.push(b' ');
        }
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut c = cfg(CompressionType::Zstd, 0);
        c.level = 1;
        let (_, na) = compress(&c, &text, &mut a).unwrap();
        c.level = 19;
        let (_, nb) = compress(&c, &text, &mut b).unwrap();
        assert!(nb < na, "level 19: {nb} bytes, level 1: {na}");
    }

    #[test]
    fn envelopes_are_checked() {
        let e = Envelope {
            algo: ALGO_LZ4,
            crc: Some(7),
            raw_len: 100,
            body_len: 40,
        };
        let b = e.encode();
        assert_eq!(Envelope::decode(&b, 56, 100), Ok(e));
        assert!(Envelope::decode(&b, 55, 100).is_err());
        assert!(Envelope::decode(&b, 56, 99).is_err());
        let mut bad = b;
        bad[0] = 4;
        assert!(Envelope::decode(&bad, 56, 100).is_err());
        bad = b;
        bad[1] = 2;
        assert!(Envelope::decode(&bad, 56, 100).is_err());
    }
}
