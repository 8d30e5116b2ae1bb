//! Channels: the public face over a ring.
//!
//! A [`Channel`] is a cheap, clonable, thread-safe handle. Its methods lock the
//! single side of an SPSC/SPMC/MPSC channel for the duration of each call (a
//! second *concurrent* sender on a single-producer channel is refused with
//! [`Error::InvalidArgument`]). For the last nanoseconds, [`Channel::producer`] and
//! [`Channel::consumer`] take a side once and keep it, so each message costs no
//! locked instruction at all.

use crate::codec::{self, Envelope, ENVELOPE_LEN};
use crate::config::{parse_uri, ChannelType, CompressionConfig, Endpoint, Mode};
use crate::error::{Error, Result};
use crate::ring::wait::{CancelToken, WaitLimit};
use crate::ring::{Claim, Direction, Record, ENCODED_NEXT};
use crate::transport::{self, Shared};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

/// A channel end's counters. The first six fields are `psyne_metrics_t`;
/// all of them, in this order, are `psyne_extended_metrics_t`.
///
/// On `memory://` and `ipc://` the wire is the ring itself: the wire byte
/// counts are what messages took in the ring (equal to the payload byte
/// counts unless messages were compressed or checksummed), and the
/// connection counts stay 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Messages published.
    pub messages_sent: u64,
    /// Payload bytes published.
    pub bytes_sent: u64,
    /// Messages taken by receivers.
    pub messages_received: u64,
    /// Payload bytes taken by receivers.
    pub bytes_received: u64,
    /// Send or reserve calls that found the ring full.
    pub send_blocks: u64,
    /// Receive calls that found the ring empty.
    pub receive_blocks: u64,
    /// Bytes written to the wire after compression: frames with their
    /// headers (on memory/ipc: what messages took in the ring).
    pub wire_bytes_sent: u64,
    /// Bytes read from the wire before decompression, HELLOs and frame
    /// headers included (on memory/ipc: what received messages took in the
    /// ring).
    pub wire_bytes_received: u64,
    /// Messages sent compressed (those that did not get smaller, or were
    /// below the threshold, went uncompressed and are not counted).
    pub messages_compressed: u64,
    /// Received messages whose checksum did not match (never delivered:
    /// dropped on memory/ipc, the connection reset on sockets).
    pub checksum_failures: u64,
    /// Frames and handshakes refused: malformed, oversized, bad HELLO, and
    /// messages too large for the peer (dropped on the sending side); on
    /// memory/ipc, encoded messages that did not decode (dropped).
    pub frames_refused: u64,
    /// Connections established (handshake completed).
    pub connects: u64,
    /// Connections a connector re-established after losing one.
    pub reconnects: u64,
    /// Peers connected now.
    pub peers: u64,
    /// Bytes queued now (messages not yet released, with their headers and
    /// padding; on a socket end, in both of its rings).
    pub queued_bytes: u64,
    /// The deepest queue seen since the last reset (sampled: see README,
    /// Metrics).
    pub high_water_bytes: u64,
}

// The send/receive logic over one ring. `Shared` itself (ring, mode, type,
// lock token) is defined by the transports, which open it.
impl Shared {
    #[inline]
    fn check_type(&self, msg_type: u32) -> Result<()> {
        if self.channel_type == ChannelType::Single && msg_type != 0 {
            return Err(single_type_error(msg_type));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn too_big(&self, len: usize) -> Error {
        let max = self.ring.max_message();
        Error::invalid(format!(
            "message of {len} bytes is larger than the channel's maximum of {max} bytes (ring of {} bytes)",
            self.ring.capacity()
        ))
    }

    #[inline]
    fn lock_producer(&self) -> Result<()> {
        if self.ring.try_lock_producer(self.token) {
            Ok(())
        } else {
            Err(self.producer_busy())
        }
    }

    #[cold]
    #[inline(never)]
    fn producer_busy(&self) -> Error {
        Error::invalid(format!(
                "the {:?} channel allows one sender at a time and another send or reservation is in progress; use MPSC/MPMC for concurrent senders",
                self.mode
            ))
    }

    #[inline]
    fn lock_consumer(&self) -> Result<()> {
        if self.ring.try_lock_consumer(self.token) {
            Ok(())
        } else {
            Err(self.consumer_busy())
        }
    }

    #[cold]
    #[inline(never)]
    fn consumer_busy(&self) -> Error {
        Error::invalid(format!(
                "the {:?} channel allows one receiver at a time and another receive is in progress or a received message is still held; use SPMC/MPMC for concurrent receivers",
                self.mode
            ))
    }

    /// Claims space. `limit == None`: do not wait. `side_held`: the caller
    /// already owns the producer side (an exclusive [`Producer`]).
    ///
    /// The fast path (room available) is small and always inlined; full,
    /// stopped and waiting are handled out of line in [`Shared::claim_slow`].
    #[inline(always)]
    fn claim(&self, len: usize, limit: Option<&WaitLimit<'_>>, side_held: bool) -> Result<Claim> {
        if len > self.ring.max_message() {
            return Err(self.too_big(len));
        }
        if !side_held && !self.ring.try_lock_producer(self.token) {
            return Err(self.producer_busy());
        }
        if !self.ring.is_stopped() {
            if let Some(c) = self.ring.try_claim(len) {
                return Ok(c);
            }
        }
        // The shape of this function decides whether the `Result<Claim>` a
        // reservation guard is built from is copied with loads as wide as the
        // stores that wrote it. When it was not (a 16-byte load of two 8-byte
        // stores), every reservation waited for the previous message's stores
        // into the ring to reach the cache: 24 -> 85 ns per message in
        // `spsc_64B/psyne_reserve`. Check that bench after changing it.
        let r = self.claim_slow(len, limit);
        if r.is_err() && !side_held {
            self.ring.unlock_producer();
        }
        r
    }

    /// The ring was full (or stopped): count it, then fail or wait.
    #[cold]
    #[inline(never)]
    fn claim_slow(&self, len: usize, limit: Option<&WaitLimit<'_>>) -> Result<Claim> {
        if self.ring.is_stopped() {
            return Err(self.ring.stopped_error());
        }
        // The fast path's attempt found the ring full. No second attempt:
        // callers polling with try_send would pay two per miss.
        self.ring.note_send_block();
        let Some(limit) = limit else {
            return Err(Error::ChannelFull);
        };
        let mut attempts = 0u32;
        self.ring
            .block_on(Direction::Space, *limit, |before_sleep| {
                if self.ring.is_stopped() {
                    return Err(self.ring.stopped_error());
                }
                self.ring.free_for_waiting_producer();
                attempts = attempts.wrapping_add(1);
                Ok(self.ring.try_claim_waiting(len, attempts, before_sleep))
            })
    }

    #[inline(always)]
    fn send(
        &self,
        data: &[u8],
        msg_type: u32,
        limit: Option<&WaitLimit<'_>>,
        side_held: bool,
    ) -> Result<()> {
        if self.channel_type == ChannelType::Single && msg_type != 0 {
            return Err(single_type_error(msg_type));
        }
        let claim = self.claim(data.len(), limit, side_held)?;
        // Counted before the payload is written: see Ring::count_sent.
        self.ring.count_sent(claim.len());
        // SAFETY: the claim owns `len` writable bytes at its payload pointer
        // until it is committed; `data` cannot overlap the ring's free space.
        unsafe { copy_bytes(data.as_ptr(), self.ring.payload_ptr(claim.pos), data.len()) };
        let published = self.ring.commit_counted(claim, msg_type);
        self.end_send(published, side_held)
    }

    /// Ends a send: gives the producer side back unless the caller holds
    /// it, and turns a commit refused after a stop into the stop's error.
    #[inline(always)]
    fn end_send(&self, published: bool, side_held: bool) -> Result<()> {
        if !side_held {
            self.ring.unlock_producer();
        }
        if published {
            Ok(())
        } else {
            Err(self.ring.stopped_error())
        }
    }

    /// Takes the next message of at most `max` bytes. `Ok(Err(n))`: the next
    /// message needs `n` bytes and stays queued; `Ok(Err(0))`
    /// ([`ENCODED_NEXT`]): it is encoded, to be taken by the caller's
    /// decoding path, and the side stays taken. On single-consumer channels
    /// the consumer side stays taken while the returned record is held.
    #[inline(always)]
    pub(crate) fn read(
        &self,
        max: usize,
        limit: Option<&WaitLimit<'_>>,
        side_held: bool,
    ) -> Result<std::result::Result<Record, usize>> {
        if !side_held && !self.ring.try_lock_consumer(self.token) {
            return Err(self.consumer_busy());
        }
        let max = max.min(u32::MAX as usize) as u32;
        // Every arm returns its own value: building the result once and then
        // inspecting and moving it went through the stack and stalled on
        // store forwarding, on every poll. The side stays taken only while a
        // message is held.
        match self.ring.try_read(max) {
            Ok(Some(rec)) => Ok(Ok(rec)),
            Err(needed) => {
                if needed != ENCODED_NEXT {
                    self.release_side(side_held);
                }
                Ok(Err(needed as usize))
            }
            // A poll that finds nothing: kept inline and short, because a
            // busy-polling receiver notices a message only as fast as it
            // goes round this path.
            Ok(None) if limit.is_none() && !self.ring.is_stopped() => {
                self.ring.note_receive_block();
                self.release_side(side_held);
                Err(Error::NoMessage)
            }
            Ok(None) => {
                let r = self.read_slow(max, limit);
                if !matches!(r, Ok(Ok(_)) | Ok(Err(0))) {
                    self.release_side(side_held);
                }
                r
            }
        }
    }

    /// Gives the consumer side back unless the caller holds it for good.
    #[inline(always)]
    fn release_side(&self, side_held: bool) {
        if !side_held {
            self.ring.unlock_consumer();
        }
    }

    /// The ring was empty: count it, then fail, drain after a stop, or wait.
    #[cold]
    #[inline(never)]
    fn read_slow(
        &self,
        max: u32,
        limit: Option<&WaitLimit<'_>>,
    ) -> Result<std::result::Result<Record, usize>> {
        let attempt = |_before_sleep: bool| match self.ring.try_read(max) {
            Ok(Some(r)) => Ok(Some(Ok(r))),
            Err(needed) => Ok(Some(Err(needed as usize))),
            Ok(None) if self.ring.drained_after_stop() => match self.ring.try_read(max) {
                // A message committed just before the stop is still delivered.
                Ok(Some(r)) => Ok(Some(Ok(r))),
                Err(needed) => Ok(Some(Err(needed as usize))),
                Ok(None) => Err(self.ring.stopped_error()),
            },
            Ok(None) => Ok(None),
        };
        // The fast path's attempt found the ring empty; after a stop, look once
        // more (attempt() does) so that a message committed just before the
        // stop is still delivered. Otherwise no second attempt before waiting.
        if self.ring.drained_after_stop() {
            if let Some(v) = attempt(true)? {
                return Ok(v);
            }
        }
        self.ring.note_receive_block();
        match limit {
            None => Err(Error::NoMessage),
            Some(limit) => self.ring.block_on(Direction::Data, *limit, attempt),
        }
    }

    /// Copying receive. `Ok(Err(n))`: `buf` is too small, the next message
    /// needs `n` bytes and stays queued.
    #[inline(always)]
    fn recv_into(
        &self,
        buf: &mut [u8],
        limit: Option<&WaitLimit<'_>>,
        side_held: bool,
    ) -> Result<std::result::Result<(usize, u32), usize>> {
        let rec = match self.read(buf.len(), limit, side_held)? {
            Ok(rec) => rec,
            Err(needed) => return self.recv_into_other(needed, buf, limit, side_held),
        };
        Ok(Ok(self.copy_out(rec, buf, side_held)))
    }

    /// The rest of a copying receive of a plain record.
    #[inline(always)]
    fn copy_out(&self, rec: Record, buf: &mut [u8], side_held: bool) -> (usize, u32) {
        let len = rec.len() as usize;
        self.ring.read_ahead(rec.pos);
        // SAFETY: the record is ours until released; try_read checked len <= buf.len().
        unsafe { copy_bytes(self.ring.payload_ptr(rec.pos), buf.as_mut_ptr(), len) };
        let t = rec.msg_type();
        self.ring.release(rec);
        if !side_held {
            self.ring.unlock_consumer();
        }
        (len, t)
    }
}

// Encoded messages (compression, checksums) on memory:// and ipc://: the
// ring holds an envelope and body (`codec.rs`), marked `ENCODED` in the
// record state. Senders with a codec configuration write them; every
// receiver decodes them. Plain messages never come here.
impl Shared {
    /// Largest message an encoding handle accepts: the envelope takes 16
    /// bytes of the ring's maximum.
    pub(crate) fn encoded_max(&self) -> usize {
        self.ring.max_message() - ENVELOPE_LEN
    }

    #[cold]
    #[inline(never)]
    fn too_big_encoded(&self, len: usize) -> Error {
        Error::invalid(format!(
            "message of {len} bytes is larger than the channel's maximum of {} bytes for a handle that compresses or checksums (ring of {} bytes; the envelope takes 16)",
            self.encoded_max(),
            self.ring.capacity()
        ))
    }

    /// Writes `env` and `body` at the start of the claim's payload.
    ///
    /// # Safety
    /// The claim owns at least `ENVELOPE_LEN + body.len()` bytes at `pos`.
    unsafe fn write_envelope(&self, pos: u64, env: &Envelope, body: &[u8]) {
        let dst = self.ring.payload_ptr(pos);
        // SAFETY: the caller's contract; `body` is not inside the claim.
        unsafe {
            std::ptr::copy_nonoverlapping(env.encode().as_ptr(), dst, ENVELOPE_LEN);
            std::ptr::copy_nonoverlapping(body.as_ptr(), dst.add(ENVELOPE_LEN), body.len());
        }
    }

    /// The envelope for `data`, compressed into `out` if worth it.
    fn encode(cfg: &CompressionConfig, data: &[u8], out: &mut Vec<u8>) -> Envelope {
        let (algo, body_len) =
            codec::compress(cfg, data, out).unwrap_or((codec::ALGO_NONE, data.len()));
        Envelope {
            algo,
            crc: cfg.enable_checksum.then(|| codec::checksum(data)),
            raw_len: data.len() as u32,
            body_len: body_len as u32,
        }
    }

    /// [`Shared::send`] from a handle with a codec configuration: the
    /// message is compressed into a per-thread buffer (when it is at least
    /// the threshold) and copied into the ring behind its envelope; one that
    /// is neither compressed nor checksummed goes in plain.
    #[inline(never)]
    fn send_encoded(
        &self,
        cfg: &CompressionConfig,
        data: &[u8],
        msg_type: u32,
        limit: Option<&WaitLimit<'_>>,
        side_held: bool,
    ) -> Result<()> {
        self.check_type(msg_type)?;
        if data.len() > self.encoded_max() {
            return Err(self.too_big_encoded(data.len()));
        }
        let mut out = codec::take_buffer();
        let env = Shared::encode(cfg, data, &mut out);
        let r = if env.algo == codec::ALGO_NONE && env.crc.is_none() {
            self.send(data, msg_type, limit, side_held)
        } else {
            let body = if env.algo == codec::ALGO_NONE {
                data
            } else {
                &out[..env.body_len as usize]
            };
            self.claim(ENVELOPE_LEN + body.len(), limit, side_held)
                .and_then(|claim| {
                    // SAFETY: the claim owns exactly envelope + body bytes.
                    unsafe { self.write_envelope(claim.pos, &env, body) };
                    let published =
                        self.ring
                            .commit_encoded(claim, msg_type, env.raw_len, env.algo != 0);
                    self.end_send(published, side_held)
                })
        };
        codec::give_buffer(out);
        r
    }

    /// A reservation from a handle with a codec configuration: space for
    /// the envelope and `len` bytes is claimed in the ring at once (so that
    /// the send cannot find the ring full), and the caller writes into a
    /// scratch buffer, which the send encodes into the claim.
    #[inline(never)]
    fn reserve_encoded(
        &self,
        cfg: &CompressionConfig,
        len: usize,
        limit: Option<&WaitLimit<'_>>,
        side_held: bool,
    ) -> Result<WriteGuard<'_>> {
        if len > self.encoded_max() {
            return Err(self.too_big_encoded(len));
        }
        let claim = self.claim(ENVELOPE_LEN + len, limit, side_held)?;
        let mut s = Scratch::take();
        s.buf.resize(len, 0);
        s.pos = claim.pos;
        s.cfg = *cfg;
        Ok(WriteGuard::encoded(self, claim, s, !side_held))
    }

    /// Publishes an encoding reservation: encodes its scratch buffer into
    /// the claim.
    /// False: the channel was stopped (nothing is published).
    #[inline(never)]
    fn send_reserved(&self, s: &Scratch, msg_type: u32) -> bool {
        let claim = self.ring.stashed_claim(s.pos);
        let data = &s.buf[..];
        let mut out = codec::take_buffer();
        let env = Shared::encode(&s.cfg, data, &mut out);
        if env.algo == codec::ALGO_NONE && env.crc.is_none() {
            // Plain, if the claim can shrink to it (single producer).
            let c = self.ring.shrink(claim, data.len() as u32);
            if c.len() as usize == data.len() {
                // SAFETY: the claim owns at least `data.len()` bytes.
                unsafe { copy_bytes(data.as_ptr(), self.ring.payload_ptr(c.pos), data.len()) };
                let sent = self.ring.commit(c, msg_type);
                codec::give_buffer(out);
                return sent;
            }
            return self.publish_reserved(c, env, data, msg_type, out);
        }
        self.publish_reserved(claim, env, data, msg_type, out)
    }

    fn publish_reserved(
        &self,
        claim: Claim,
        env: Envelope,
        data: &[u8],
        msg_type: u32,
        out: Vec<u8>,
    ) -> bool {
        let body = if env.algo == codec::ALGO_NONE {
            data
        } else {
            &out[..env.body_len as usize]
        };
        // SAFETY: the claim owns envelope + `data.len()` bytes, and the body
        // is at most `data.len()` bytes.
        unsafe { self.write_envelope(claim.pos, &env, body) };
        let claim = self.ring.shrink(claim, (ENVELOPE_LEN + body.len()) as u32);
        let sent =
            self.ring
                .commit_encoded(claim, msg_type, env.raw_len, env.algo != codec::ALGO_NONE);
        codec::give_buffer(out);
        sent
    }

    /// Decodes an encoded record into `dst` (exactly its decoded length).
    /// `Err(true)`: the checksum did not match; `Err(false)`: it does not
    /// decode.
    fn decode_into(&self, rec: &Record, dst: &mut [u8]) -> std::result::Result<(), bool> {
        let len = rec.len() as usize;
        // SAFETY: the record is ours until released; its producer wrote it
        // before publishing it.
        let src = unsafe { std::slice::from_raw_parts(self.ring.payload_ptr(rec.pos), len) };
        let env = Envelope::decode(src, len, dst.len() as u32).map_err(|_| false)?;
        let body = &src[ENVELOPE_LEN..ENVELOPE_LEN + env.body_len as usize];
        if env.algo == codec::ALGO_NONE {
            dst.copy_from_slice(body);
        } else {
            codec::decompress(env.algo, body, dst).map_err(|_| false)?;
        }
        match env.crc {
            Some(crc) if codec::checksum(dst) != crc => Err(true),
            _ => Ok(()),
        }
    }

    /// Decodes an encoded record into `dst` (None: into nothing, the
    /// declared size being beyond the ring's maximum), counts the outcome and
    /// releases the record.
    fn finish_decode(&self, rec: Record, dst: Option<&mut [u8]>) -> std::result::Result<(), bool> {
        let outcome = match dst {
            Some(d) => self.decode_into(&rec, d),
            None => Err(false),
        };
        self.ring.count_decoded(&rec, outcome);
        self.ring.release(rec);
        outcome
    }

    /// The next message is encoded (the side is still ours): a view of it,
    /// decoded into a scratch buffer the guard owns. A message that fails
    /// its checksum or does not decode is dropped (counted) and the next one
    /// taken, within the same `limit`.
    #[cold]
    #[inline(never)]
    fn view_encoded(&self, limit: Option<&WaitLimit<'_>>, unlock: bool) -> Result<ReadGuard<'_>> {
        loop {
            match self.ring.try_read_encoded(u32::MAX) {
                Ok(Some(rec)) if rec.decoded_len().is_none() => {
                    return Ok(ReadGuard::new(self, rec, unlock))
                }
                Ok(Some(rec)) => {
                    let raw = rec.decoded_len().unwrap_or(0) as usize;
                    if raw <= self.ring.max_message() {
                        let mut s = Scratch::take();
                        s.buf.resize(raw, 0);
                        s.msg_type = rec.msg_type();
                        if self.finish_decode(rec, Some(&mut s.buf)).is_ok() {
                            return Ok(ReadGuard::decoded(self, s, unlock));
                        }
                        s.give();
                    } else {
                        let _ = self.finish_decode(rec, None);
                    }
                }
                // Taken by another consumer, or nothing after a dropped
                // one: wait for the next under the same limit.
                Ok(None) | Err(_) => match self.read(usize::MAX, limit, true) {
                    Ok(Ok(r)) => return Ok(ReadGuard::new(self, r, unlock)),
                    Ok(Err(_)) => {} // encoded again
                    Err(e) => {
                        if unlock {
                            self.ring.unlock_consumer();
                        }
                        return Err(e);
                    }
                },
            }
        }
    }

    /// [`Shared::recv_into`] when the next message is not a plain one that
    /// fits: `needed` bytes (it stays queued), or encoded (decoded into
    /// `buf`; see [`Shared::view_encoded`] on dropped messages).
    #[cold]
    #[inline(never)]
    fn recv_into_other(
        &self,
        mut needed: usize,
        buf: &mut [u8],
        limit: Option<&WaitLimit<'_>>,
        side_held: bool,
    ) -> Result<std::result::Result<(usize, u32), usize>> {
        let max = buf.len().min(u32::MAX as usize) as u32;
        loop {
            if needed != ENCODED_NEXT as usize {
                return Ok(Err(needed));
            }
            match self.ring.try_read_encoded(max) {
                Ok(Some(rec)) if rec.decoded_len().is_none() => {
                    return Ok(Ok(self.copy_out(rec, buf, side_held)))
                }
                Ok(Some(rec)) => {
                    let raw = rec.decoded_len().unwrap_or(0) as usize;
                    let t = rec.msg_type();
                    // Larger than `buf` only when beyond the ring's maximum
                    // too (one that merely does not fit is left queued).
                    let dst = (raw <= buf.len()).then(|| &mut buf[..raw]);
                    if self.finish_decode(rec, dst).is_ok() {
                        self.release_side(side_held);
                        return Ok(Ok((raw, t)));
                    }
                    continue;
                }
                Err(n) if n != ENCODED_NEXT => {
                    self.release_side(side_held);
                    return Ok(Err(n as usize));
                }
                Ok(None) | Err(_) => {}
            }
            match self.read(buf.len(), limit, true) {
                Ok(Ok(r)) => return Ok(Ok(self.copy_out(r, buf, side_held))),
                Ok(Err(n)) if n != ENCODED_NEXT as usize => {
                    self.release_side(side_held);
                    return Ok(Err(n));
                }
                Ok(Err(n)) => needed = n,
                Err(e) => {
                    self.release_side(side_held);
                    return Err(e);
                }
            }
        }
    }
}

/// A reusable buffer behind an encoding reservation (what the caller
/// writes) or a decoded view (the decoded message), with what the guard
/// needs besides. Kept per thread and reused (`Scratch::take`/`give`).
pub(crate) struct Scratch {
    buf: Vec<u8>,
    /// Reservation: the claim's position.
    pos: u64,
    /// Reservation: the handle's configuration.
    cfg: CompressionConfig,
    /// View: the message type.
    msg_type: u32,
}

thread_local! {
    static SPARE_SCRATCH: std::cell::Cell<Option<Box<Scratch>>> = const { std::cell::Cell::new(None) };
}

impl Scratch {
    fn take() -> Box<Scratch> {
        SPARE_SCRATCH
            .try_with(|c| c.take())
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                Box::new(Scratch {
                    buf: Vec::new(),
                    pos: 0,
                    cfg: CompressionConfig::default(),
                    msg_type: 0,
                })
            })
    }

    /// Back to this thread's spare (its buffer keeps its length: growing it
    /// again to a size it had costs no zeroing).
    fn give(self: Box<Scratch>) {
        let _ = SPARE_SCRATCH.try_with(|c| {
            if let Some(other) = c.replace(Some(self)) {
                drop(other);
            }
        });
    }
}

/// `copy_nonoverlapping`, with messages of up to 64 bytes copied inline: a
/// call to the C library's memcpy costs about as much as the rest of a small
/// send. Two possibly overlapping fixed-size moves cover any length in a
/// size class, the way memcpy itself handles small sizes.
///
/// # Safety
/// As `copy_nonoverlapping`: `src` readable and `dst` writable for `len`
/// bytes, not overlapping.
#[inline(always)]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY (all arms): the caller's contract; `two_moves` and the loop stay
    // inside `[0, len)` of both buffers.
    unsafe {
        match len {
            33..=64 => two_moves::<[u8; 32]>(src, dst, len),
            16..=32 => two_moves::<[u8; 16]>(src, dst, len),
            8..=15 => two_moves::<u64>(src, dst, len),
            0..=7 => {
                for i in 0..len {
                    *dst.add(i) = *src.add(i);
                }
            }
            _ => std::ptr::copy_nonoverlapping(src, dst, len),
        }
    }
}

/// Copies `len` bytes, `size_of::<T>() <= len <= 2 * size_of::<T>()`, as the
/// first and the last `T` (which overlap unless `len` is exactly twice).
///
/// # Safety
/// As [`copy_bytes`], and the size bounds above.
#[inline(always)]
unsafe fn two_moves<T: Copy>(src: *const u8, dst: *mut u8, len: usize) {
    use std::ptr::{read_unaligned, write_unaligned};
    let n = std::mem::size_of::<T>();
    debug_assert!(n <= len && len <= 2 * n);
    // SAFETY: both reads and writes cover [0, n) and [len - n, len), inside
    // both buffers since n <= len; unaligned accesses are used throughout.
    unsafe {
        let head = read_unaligned(src as *const T);
        let tail = read_unaligned(src.add(len - n) as *const T);
        write_unaligned(dst as *mut T, head);
        write_unaligned(dst.add(len - n) as *mut T, tail);
    }
}

#[cold]
#[inline(never)]
fn single_type_error(msg_type: u32) -> Error {
    Error::invalid(format!(
        "message type {msg_type} on a SINGLE channel: SINGLE channels carry no type (use 0, or open the channel as MULTI)"
    ))
}

#[cold]
#[inline(never)]
pub(crate) fn too_small(cap: usize, needed: usize) -> Error {
    Error::BufferTooSmall {
        capacity: cap,
        needed,
    }
}

fn limit_for(
    timeout: Option<Duration>,
    cancel: Option<&CancelToken>,
    spin: Duration,
) -> WaitLimit<'_> {
    WaitLimit {
        timeout,
        cancel,
        spin,
    }
}

/// A guard's reference to its channel's state: one pointer, so that guards
/// stay two words (see [`WriteGuard`]). Borrowed for `'a` — or, for the C
/// API's guards, kept alive by the `Arc` stored beside the guard and dropped
/// after it (`OwnedWriteGuard`, `OwnedReadGuard`).
#[derive(Clone, Copy)]
struct GuardRef<'a> {
    ptr: std::ptr::NonNull<Shared>,
    _life: std::marker::PhantomData<&'a Shared>,
}

impl<'a> GuardRef<'a> {
    #[inline(always)]
    fn new(shared: &'a Shared) -> GuardRef<'a> {
        GuardRef {
            ptr: shared.into(),
            _life: std::marker::PhantomData,
        }
    }

    #[inline(always)]
    fn get(&self) -> &Shared {
        // SAFETY: see the type's comment: the pointee outlives the guard.
        unsafe { self.ptr.as_ref() }
    }
}

/// A reservation: `len` writable bytes inside the ring. [`send`](WriteGuard::send)
/// publishes them; dropping the guard cancels.
///
/// ```
/// use psyne::{Channel, Mode, ChannelType};
/// let ch = Channel::open("memory://reserve-doc", 4096, Mode::Spsc, ChannelType::Multi)?;
/// let mut msg = ch.try_reserve(5)?;
/// msg.copy_from_slice(b"hello"); // written straight into the ring
/// msg.send(7)?;
/// let got = ch.try_recv()?;      // a view of the same bytes
/// assert_eq!((&got[..], got.msg_type()), (&b"hello"[..], 7));
/// # Ok::<(), psyne::Error>(())
/// ```
pub struct WriteGuard<'a> {
    // Two words, so that the guard travels in registers: a larger guard is
    // copied through memory whenever it moves (out of a `Result`, out of a
    // retry loop, into `send`), with loads wider than the stores that built
    // it, and such a load waits for the payload stores just made into the
    // ring to reach the cache — a cross-core round trip per reservation.
    // The claim's length (and ipc crash-recovery entry) wait in the claimed
    // record's own header meanwhile (`Ring::stash_claim`).
    shared: GuardRef<'a>,
    /// The claim's position | [`HELD`] | [`UNLOCK`] (positions are multiples
    /// of 16); or, for a handle that encodes, a `Box<Scratch>` pointer |
    /// [`ENCODE`] | [`HELD`] | [`UNLOCK`] (the box is 8-aligned).
    word: u64,
}

/// [`WriteGuard`]: the claim is not yet sent or cancelled.
const HELD: u64 = 1;
/// [`WriteGuard`], [`ReadGuard`]: the guard took the producer (consumer)
/// side and must give it back.
const UNLOCK: u64 = 2;
/// [`WriteGuard`], [`ReadGuard`]: the word holds a `Box<Scratch>` (an
/// encoding reservation; a decoded view).
const ENCODE: u64 = 4;
/// The flag bits of a guard's word.
const FLAGS: u64 = HELD | UNLOCK | ENCODE;

/// The `Box<Scratch>` a guard word with [`ENCODE`] holds.
#[inline(always)]
fn scratch_of(word: u64) -> *mut Scratch {
    (word & !FLAGS) as usize as *mut Scratch
}

impl<'a> WriteGuard<'a> {
    /// Publishes the reserved bytes as one message of type `msg_type`.
    /// On a SINGLE channel a non-zero type is refused and the reservation cancelled.
    #[inline]
    pub fn send(mut self, msg_type: u32) -> Result<()> {
        self.shared().check_type(msg_type)?;
        let sent = if self.word & ENCODE != 0 {
            self.send_encoded(msg_type)
        } else {
            let claim = self.shared().ring.stashed_claim(self.plain_pos());
            self.word &= !HELD;
            self.shared().ring.commit(claim, msg_type)
        };
        if sent {
            Ok(())
        } else {
            Err(self.shared().ring.stopped_error())
        }
    }

    /// [`WriteGuard::send`] of an encoding reservation.
    #[inline(never)]
    fn send_encoded(&mut self, msg_type: u32) -> bool {
        self.word &= !HELD;
        // SAFETY: ENCODE: the word holds the guard's own Box<Scratch>,
        // alive until drop.
        let s = unsafe { &*scratch_of(self.word) };
        self.shared().send_reserved(s, msg_type)
    }

    /// Gives the space back without sending (same as dropping the guard).
    pub fn cancel(self) {}

    /// The channel's type (SINGLE channels accept only type 0).
    pub fn channel_type(&self) -> ChannelType {
        self.shared().channel_type
    }

    #[inline(always)]
    fn new(shared: &'a Shared, claim: Claim, unlock: bool) -> WriteGuard<'a> {
        shared.ring.stash_claim(&claim);
        WriteGuard {
            shared: GuardRef::new(shared),
            word: claim.pos | HELD | if unlock { UNLOCK } else { 0 },
        }
    }

    /// An encoding reservation: the claim (stashed like any other) and
    /// the scratch buffer the caller writes.
    fn encoded(shared: &'a Shared, claim: Claim, s: Box<Scratch>, unlock: bool) -> WriteGuard<'a> {
        shared.ring.stash_claim(&claim);
        let p = Box::into_raw(s) as usize as u64;
        debug_assert_eq!(p & FLAGS, 0);
        WriteGuard {
            shared: GuardRef::new(shared),
            word: p | ENCODE | HELD | if unlock { UNLOCK } else { 0 },
        }
    }

    #[inline(always)]
    fn shared(&self) -> &Shared {
        self.shared.get()
    }

    /// The claim's position, for a guard without [`ENCODE`].
    #[inline(always)]
    fn plain_pos(&self) -> u64 {
        self.word & !(HELD | UNLOCK)
    }

    #[inline(always)]
    fn payload(&self) -> (*mut u8, usize) {
        if self.word & ENCODE != 0 {
            // SAFETY: ENCODE: the guard's own Box<Scratch>; `&mut` access
            // to it goes through `&mut self` (DerefMut).
            let s = unsafe { &mut *scratch_of(self.word) };
            return (s.buf.as_mut_ptr(), s.buf.len());
        }
        let ring = &self.shared().ring;
        let pos = self.plain_pos();
        (ring.payload_ptr(pos), ring.stashed_len(pos) as usize)
    }

    /// Drop of a guard still holding its claim, or an encoding one: cancels
    /// the claim, gives the scratch buffer back.
    #[cold]
    #[inline(never)]
    fn drop_slow(&mut self) {
        let encoded = self.word & ENCODE != 0;
        if self.word & HELD != 0 {
            let pos = if encoded {
                // SAFETY: ENCODE: the guard's own Box<Scratch>.
                unsafe { (*scratch_of(self.word)).pos }
            } else {
                self.plain_pos()
            };
            self.shared()
                .ring
                .cancel(self.shared().ring.stashed_claim(pos));
        }
        if encoded {
            // SAFETY: ENCODE: the guard's own Box<Scratch>, given up here.
            unsafe { Box::from_raw(scratch_of(self.word)) }.give();
        }
    }
}

impl Deref for WriteGuard<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        let (ptr, len) = self.payload();
        // SAFETY: the claim owns `len` bytes at this pointer until committed or
        // cancelled, which needs `self` by value.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

impl DerefMut for WriteGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let (ptr, len) = self.payload();
        // SAFETY: as in deref; `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }
}

impl Drop for WriteGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.word & (HELD | ENCODE) != 0 {
            self.drop_slow();
        }
        if self.word & UNLOCK != 0 {
            self.shared().ring.unlock_producer();
        }
    }
}

/// A guard for the C API, which must outlive the call that made it, with the
/// reference that keeps its channel alive (declared after the guard, so
/// dropped after it).
///
/// The guard's `'static` lifetime is a fiction that must not escape: the
/// fields are private, and the methods lend the guard's bytes only for as
/// long as the `Owned` itself is borrowed.
pub(crate) struct Owned<G> {
    guard: G,
    _keep: SideKeep,
}

/// A reference to a channel's state counted per side: every guard the C API
/// hands out clones one, and with a single count the sender's and the
/// receiver's clones and drops pulled its cache line between their CPUs for
/// every message. Cache-padded, so that the two sides' counts never share a
/// line.
type SideKeep = Arc<crossbeam_utils::CachePadded<Arc<Shared>>>;

impl<G> Owned<G> {
    /// A guard made by `make` on `keep`'s channel state.
    fn new(keep: SideKeep, make: impl FnOnce(&'static Shared) -> Result<G>) -> Result<Self> {
        // SAFETY: `keep` holds an Arc of the state, which so stays alive at a
        // fixed address for as long as `_keep` lives, and the guard that
        // borrows it is declared first, so it is dropped (or moved out and
        // used) before `_keep`.
        let shared: &'static Shared = unsafe { &*Arc::as_ptr(&**keep) };
        Ok(Owned {
            guard: make(shared)?,
            _keep: keep,
        })
    }
}

impl<G: Deref<Target = [u8]>> Owned<G> {
    /// The guard's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.guard
    }
}

impl Owned<WriteGuard<'static>> {
    /// The reservation's bytes, writable.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.guard
    }

    /// The channel's type.
    pub(crate) fn channel_type(&self) -> ChannelType {
        self.guard.channel_type()
    }

    /// Publishes the reservation ([`WriteGuard::send`]); the channel
    /// reference is dropped after the guard.
    pub(crate) fn send(self, msg_type: u32) -> Result<()> {
        self.guard.send(msg_type)
    }
}

impl Owned<ReadGuard<'static>> {
    /// The message type.
    pub(crate) fn msg_type(&self) -> u32 {
        self.guard.msg_type()
    }
}

/// A reservation for the C API.
pub(crate) type OwnedWriteGuard = Owned<WriteGuard<'static>>;
/// A received view for the C API.
pub(crate) type OwnedReadGuard = Owned<ReadGuard<'static>>;

impl std::fmt::Debug for WriteGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGuard")
            .field("len", &self.len())
            .finish()
    }
}

/// A received message: a read-only view of the bytes in the ring. Dropping it
/// (or [`release`](ReadGuard::release)) frees the space.
pub struct ReadGuard<'a> {
    // Two words, like `WriteGuard` (see there): length and type are read from
    // the record's header, which does not change while the guard holds it.
    shared: GuardRef<'a>,
    /// The record's position | [`UNLOCK`]; or, for a message that was
    /// encoded in the ring, a `Box<Scratch>` holding it decoded | [`ENCODE`]
    /// | [`UNLOCK`] (the record itself is released already).
    word: u64,
}

impl<'a> ReadGuard<'a> {
    /// The message type (0 on SINGLE channels).
    #[inline]
    pub fn msg_type(&self) -> u32 {
        if self.word & ENCODE != 0 {
            // SAFETY: ENCODE: the guard's own Box<Scratch>.
            return unsafe { (*scratch_of(self.word)).msg_type };
        }
        self.shared().ring.record_type(self.pos())
    }

    /// Drop of a decoded message: its scratch buffer goes back.
    #[inline(never)]
    fn drop_decoded(&self) {
        // SAFETY: ENCODE: the guard's own Box<Scratch>, given up here.
        unsafe { Box::from_raw(scratch_of(self.word)) }.give();
    }

    /// A decoded message.
    fn decoded(shared: &'a Shared, s: Box<Scratch>, unlock: bool) -> ReadGuard<'a> {
        let p = Box::into_raw(s) as usize as u64;
        debug_assert_eq!(p & FLAGS, 0);
        ReadGuard {
            shared: GuardRef::new(shared),
            word: p | ENCODE | if unlock { UNLOCK } else { 0 },
        }
    }

    /// Frees the message's space (same as dropping the guard).
    pub fn release(self) {}

    #[inline(always)]
    fn new(shared: &'a Shared, rec: Record, unlock: bool) -> ReadGuard<'a> {
        shared.ring.stash_record(&rec);
        ReadGuard {
            shared: GuardRef::new(shared),
            word: rec.pos | if unlock { UNLOCK } else { 0 },
        }
    }

    #[inline(always)]
    fn shared(&self) -> &Shared {
        self.shared.get()
    }

    #[inline(always)]
    fn pos(&self) -> u64 {
        self.word & !UNLOCK
    }
}

impl Deref for ReadGuard<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        if self.word & ENCODE != 0 {
            // SAFETY: ENCODE: the guard's own Box<Scratch>, alive until drop.
            return unsafe { &(*scratch_of(self.word)).buf };
        }
        let ring = &self.shared().ring;
        let pos = self.pos();
        // SAFETY: the record is ours until released (on drop); the producer
        // finished writing it before publishing (Release/Acquire on its state).
        unsafe { std::slice::from_raw_parts(ring.payload_ptr(pos), ring.record_len(pos) as usize) }
    }
}

impl Drop for ReadGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let ring = &self.shared().ring;
        if self.word & ENCODE != 0 {
            self.drop_decoded();
        } else {
            ring.release(ring.stashed_record(self.pos()));
        }
        if self.word & UNLOCK != 0 {
            ring.unlock_consumer();
        }
    }
}

impl std::fmt::Debug for ReadGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadGuard")
            .field("len", &self.len())
            .field("msg_type", &self.msg_type())
            .finish()
    }
}

// SAFETY: guards hold positions in a ring that is Sync; nothing in them is
// tied to the thread that created them (side locks are per process, not per thread).
unsafe impl Send for WriteGuard<'_> {}
// SAFETY: as above.
unsafe impl Send for ReadGuard<'_> {}
// SAFETY: shared access only reads the payload bytes the guard owns.
unsafe impl Sync for ReadGuard<'_> {}

/// Builds a [`Channel`].
///
/// ```
/// use psyne::{Channel, Mode};
/// let ch = Channel::builder("memory://built").buffer_size(1 << 16).mode(Mode::Mpsc).build()?;
/// assert_eq!(ch.buffer_size(), 1 << 16);
/// # Ok::<(), psyne::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChannelBuilder {
    uri: String,
    buffer_size: usize,
    mode: Mode,
    channel_type: ChannelType,
    compression: Option<CompressionConfig>,
    metrics: Option<bool>,
    spin: Option<Duration>,
}

impl ChannelBuilder {
    /// Ring size in bytes (rounded up to a power of two, at least 64); 0 attaches
    /// to an existing `memory://`/`ipc://` channel and adopts its configuration.
    /// Default 1 MiB.
    pub fn buffer_size(mut self, n: usize) -> Self {
        self.buffer_size = n;
        self
    }
    /// Concurrency mode (default SPSC).
    pub fn mode(mut self, m: Mode) -> Self {
        self.mode = m;
        self
    }
    /// SINGLE or MULTI (default MULTI).
    pub fn channel_type(mut self, t: ChannelType) -> Self {
        self.channel_type = t;
        self
    }
    /// Compression and checksums of what this handle sends, on every
    /// transport (README, "Compression and checksums"). Receivers need no
    /// setting: any handle decodes any message.
    pub fn compression(mut self, c: CompressionConfig) -> Self {
        self.compression = Some(c);
        self
    }
    /// Count metrics (default on).
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = Some(on);
        self
    }
    /// How long a blocking call on this handle (and the [`Producer`] /
    /// [`Consumer`] taken from it) polls before it sleeps: default 20 µs,
    /// zero sleeps at once, at most 1 s (longer is refused). See README,
    /// "Blocking calls". The URI option `spin=` (microseconds) does the same;
    /// the builder's setting wins.
    pub fn spin(mut self, budget: Duration) -> Self {
        self.spin = Some(budget);
        self
    }
    /// Opens the channel.
    pub fn build(self) -> Result<Channel> {
        let parsed = parse_uri(&self.uri)?;
        let spin = match self.spin.or(parsed.spin) {
            Some(d) if d > Duration::from_micros(crate::config::MAX_SPIN_MICROS) => {
                return Err(Error::invalid(format!(
                    "spin of {d:?} is longer than the limit of 1 s"
                )))
            }
            Some(d) => d,
            None => crate::sync::SpinWait::BUDGET,
        };
        let compression =
            match (self.compression, parsed.compression) {
                (Some(_), Some(_)) => return Err(Error::invalid(
                    "compression is set both in the URI query and through the builder; choose one",
                )),
                (a, b) => a.or(b),
            };
        let mut net = parsed.net.clone();
        if let Some(c) = &compression {
            c.validate()?;
        }
        let compression = compression.filter(crate::codec::is_active);
        if let Some(c) = &compression {
            net.codec = *c;
        }
        // memory/ipc handles encode in the sending call; socket ends in their
        // driver, while framing.
        let codec = compression.filter(|_| {
            matches!(
                parsed.endpoint,
                Endpoint::Memory { .. } | Endpoint::Ipc { .. }
            )
        });
        let opened = transport::open(
            &parsed.endpoint,
            self.buffer_size,
            self.mode,
            self.channel_type,
            &net,
        )?;
        if let Some(on) = self.metrics.or(parsed.metrics) {
            opened.tx.ring.set_metrics_enabled(on);
            opened.rx.ring.set_metrics_enabled(on);
        }
        let keep = |s: &Arc<Shared>| Arc::new(crossbeam_utils::CachePadded::new(s.clone()));
        Ok(Channel {
            inner: Arc::new(Handle {
                keep: [keep(&opened.tx), keep(&opened.rx)],
                tx: opened.tx,
                rx: opened.rx,
                driver: opened.driver,
                spin,
                codec,
                uri: self.uri,
                dispatcher: parking_lot::Mutex::new(None),
                born: crate::fork::generation(),
            }),
        })
    }
}

struct Handle {
    /// The ring senders write into.
    tx: Arc<Shared>,
    /// The ring receivers read from (the same `Arc` as `tx` on memory and
    /// ipc; a socket end's I/O driver moves messages between them and the
    /// peers).
    rx: Arc<Shared>,
    /// What C API guards hold on to: senders' `[0]` (on `tx`), receivers'
    /// `[1]` (on `rx`).
    keep: [SideKeep; 2],
    /// A socket end's I/O driver (dropped after the dispatcher, so that a
    /// callback sees the last messages).
    driver: Option<transport::Driver>,
    /// Polling phase of this handle's blocking calls.
    spin: Duration,
    /// memory/ipc handles that compress or checksum what they send (socket
    /// ends do it in their driver instead).
    codec: Option<CompressionConfig>,
    uri: String,
    dispatcher: parking_lot::Mutex<Option<crate::callback::Dispatcher>>,
    /// Fork generation of the process that opened the handle (fork.rs).
    born: u64,
}

impl Drop for Handle {
    #[inline]
    fn drop(&mut self) {
        if let Some(d) = self.dispatcher.get_mut().take() {
            if crate::fork::is_ours(self.born) {
                d.shut_down();
            } else {
                // Inherited through fork: the thread exists only in the
                // parent, which still owns it.
                std::mem::forget(d);
            }
        }
    }
}

/// A channel handle: send and receive byte messages with a `u32` type.
///
/// ```
/// use psyne::{Channel, Mode, ChannelType};
/// let ch = Channel::open("memory://quickstart", 1 << 20, Mode::Spsc, ChannelType::Multi)?;
/// ch.try_send(b"frame", 1)?;
/// let msg = ch.try_recv()?;
/// assert_eq!(&msg[..], b"frame");
/// assert_eq!(msg.msg_type(), 1);
/// # Ok::<(), psyne::Error>(())
/// ```
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("uri", &self.inner.uri)
            .field("mode", &self.mode())
            .finish()
    }
}

impl Channel {
    /// Starts a builder for `uri`.
    pub fn builder(uri: impl Into<String>) -> ChannelBuilder {
        ChannelBuilder {
            uri: uri.into(),
            buffer_size: 1 << 20,
            mode: Mode::Spsc,
            channel_type: ChannelType::Multi,
            compression: None,
            metrics: None,
            spin: None,
        }
    }

    /// Opens `uri` with a ring of `buffer_size` bytes (0: attach to an existing channel).
    pub fn open(
        uri: &str,
        buffer_size: usize,
        mode: Mode,
        channel_type: ChannelType,
    ) -> Result<Channel> {
        Channel::builder(uri)
            .buffer_size(buffer_size)
            .mode(mode)
            .channel_type(channel_type)
            .build()
    }

    /// The ring senders write into.
    #[inline(always)]
    fn tx(&self) -> &Shared {
        &self.inner.tx
    }

    /// The ring receivers read from (the same as [`Channel::tx`] except on
    /// socket ends).
    #[inline(always)]
    fn rx(&self) -> &Shared {
        &self.inner.rx
    }

    /// Both rings, or the one: what `stop` and the metrics go over.
    fn rings(&self) -> impl Iterator<Item = &Shared> {
        let two = !Arc::ptr_eq(&self.inner.tx, &self.inner.rx);
        std::iter::once(self.tx()).chain(two.then(|| self.rx()))
    }

    /// The URI this handle was opened with.
    pub fn uri(&self) -> &str {
        &self.inner.uri
    }
    /// How long this handle's blocking calls poll before they sleep
    /// ([`ChannelBuilder::spin`]).
    pub fn spin(&self) -> Duration {
        self.inner.spin
    }
    /// Ring size in bytes.
    pub fn buffer_size(&self) -> usize {
        self.tx().ring.capacity()
    }
    /// Largest message accepted: half the ring size minus 16 bytes (so that an
    /// empty ring always has room for it).
    /// On `memory://`/`ipc://` handles that compress or checksum, 16 bytes
    /// less (the envelope that records what was done).
    pub fn max_message_size(&self) -> usize {
        if self.inner.codec.is_some() {
            return self.tx().encoded_max();
        }
        self.tx().ring.max_message()
    }
    /// The channel's mode.
    pub fn mode(&self) -> Mode {
        self.tx().mode
    }
    /// The channel's type.
    pub fn channel_type(&self) -> ChannelType {
        self.tx().channel_type
    }

    // ---- sending -------------------------------------------------------

    /// Sends a copy of `data`; [`Error::ChannelFull`] at once when there is no room.
    ///
    /// On single-consumer channels the receiver returns freed space to senders
    /// in batches (1/16 of the ring), at once when it has drained the ring, and
    /// at once while a blocking sender waits — so right after a receive on a
    /// full ring, `try_send` may still report full for a moment.
    ///
    /// A thread whose `try_` calls keep failing while no message moves
    /// yields its CPU once (`sched_yield`): after 128 failures if another
    /// thread's unfinished step holds the ring up (a reservation claimed but
    /// not sent, the oldest received view not released), otherwise with
    /// probability 1/2 after 1024 — the thread it waits for may be queued on
    /// this CPU (README, "Polling on busy machines").
    pub fn try_send(&self, data: &[u8], msg_type: u32) -> Result<()> {
        if let Some(cfg) = &self.inner.codec {
            return self.tx().send_encoded(cfg, data, msg_type, None, false);
        }
        self.tx().send(data, msg_type, None, false)
    }
    /// Sends, waiting for room until the channel stops.
    pub fn send(&self, data: &[u8], msg_type: u32) -> Result<()> {
        self.send_until(data, msg_type, None, None)
    }
    /// Sends, waiting up to `timeout` for room ([`Error::Timeout`]).
    pub fn send_timeout(&self, data: &[u8], msg_type: u32, timeout: Duration) -> Result<()> {
        self.send_until(data, msg_type, Some(timeout), None)
    }
    /// Sends, waiting up to `timeout` (None: no limit) unless `cancel` fires.
    pub fn send_until(
        &self,
        data: &[u8],
        msg_type: u32,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<()> {
        let limit = Some(&limit_for(timeout, cancel, self.inner.spin));
        if let Some(cfg) = &self.inner.codec {
            return self.tx().send_encoded(cfg, data, msg_type, limit, false);
        }
        self.tx().send(data, msg_type, limit, false)
    }

    /// Reserves `len` bytes in the ring; [`Error::ChannelFull`] at once when there is no room.
    pub fn try_reserve(&self, len: usize) -> Result<WriteGuard<'_>> {
        self.reserve_inner(len, None)
    }
    /// Reserves, waiting for room until the channel stops.
    pub fn reserve(&self, len: usize) -> Result<WriteGuard<'_>> {
        self.reserve_until(len, None, None)
    }
    /// Reserves, waiting up to `timeout` for room.
    pub fn reserve_timeout(&self, len: usize, timeout: Duration) -> Result<WriteGuard<'_>> {
        self.reserve_until(len, Some(timeout), None)
    }
    /// Reserves, waiting up to `timeout` (None: no limit) unless `cancel` fires.
    pub fn reserve_until(
        &self,
        len: usize,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<WriteGuard<'_>> {
        self.reserve_inner(len, Some(&limit_for(timeout, cancel, self.inner.spin)))
    }

    fn reserve_inner(&self, len: usize, limit: Option<&WaitLimit<'_>>) -> Result<WriteGuard<'_>> {
        if let Some(cfg) = &self.inner.codec {
            return self.tx().reserve_encoded(cfg, len, limit, false);
        }
        let claim = self.tx().claim(len, limit, false)?;
        Ok(WriteGuard::new(self.tx(), claim, true))
    }

    /// A reservation that owns a reference to the channel (for the C API).
    pub(crate) fn reserve_owned(
        &self,
        len: usize,
        limit: Option<&WaitLimit<'_>>,
    ) -> Result<OwnedWriteGuard> {
        let codec = self.inner.codec;
        Owned::new(self.inner.keep[0].clone(), |shared| {
            if let Some(cfg) = &codec {
                return shared.reserve_encoded(cfg, len, limit, false);
            }
            let claim = shared.claim(len, limit, false)?;
            Ok(WriteGuard::new(shared, claim, true))
        })
    }

    // ---- receiving -----------------------------------------------------

    /// Takes the next message as a zero-copy view; [`Error::NoMessage`] at once when empty.
    ///
    /// Like [`Channel::try_send`], it may yield the CPU once when it keeps
    /// failing while no message moves.
    pub fn try_recv(&self) -> Result<ReadGuard<'_>> {
        self.recv_inner(None)
    }
    /// Waits for the next message until the channel stops (then drains, then
    /// [`Error::ChannelStopped`]).
    pub fn recv(&self) -> Result<ReadGuard<'_>> {
        self.recv_until(None, None)
    }
    /// Waits up to `timeout` ([`Error::Timeout`]).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<ReadGuard<'_>> {
        self.recv_until(Some(timeout), None)
    }
    /// Waits up to `timeout` (None: no limit) unless `cancel` fires.
    pub fn recv_until(
        &self,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<ReadGuard<'_>> {
        self.recv_inner(Some(&limit_for(timeout, cancel, self.inner.spin)))
    }

    fn recv_inner(&self, limit: Option<&WaitLimit<'_>>) -> Result<ReadGuard<'_>> {
        match self.rx().read(usize::MAX, limit, false)? {
            Ok(rec) => Ok(ReadGuard::new(self.rx(), rec, true)),
            // No message exceeds usize::MAX: the next one is encoded.
            Err(_) => self.rx().view_encoded(limit, true),
        }
    }

    /// A received view that owns a reference to the channel (for the C API).
    pub(crate) fn recv_owned(&self, limit: Option<&WaitLimit<'_>>) -> Result<OwnedReadGuard> {
        Owned::new(self.inner.keep[1].clone(), |shared| {
            match shared.read(usize::MAX, limit, false)? {
                Ok(rec) => Ok(ReadGuard::new(shared, rec, true)),
                // No message exceeds usize::MAX: the next one is encoded.
                Err(_) => shared.view_encoded(limit, true),
            }
        })
    }

    /// Copies the next message into `buf`: `(length, type)`. If `buf` is too
    /// small the error says the size needed and the message stays queued.
    pub fn try_recv_into(&self, buf: &mut [u8]) -> Result<(usize, u32)> {
        let cap = buf.len();
        self.rx()
            .recv_into(buf, None, false)?
            .map_err(|n| too_small(cap, n))
    }
    /// Like [`try_recv_into`](Channel::try_recv_into), waiting without limit.
    pub fn recv_into(&self, buf: &mut [u8]) -> Result<(usize, u32)> {
        self.recv_into_until(buf, None, None)
    }
    /// Like [`try_recv_into`](Channel::try_recv_into), waiting up to `timeout`
    /// ([`Error::Timeout`]).
    pub fn recv_into_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<(usize, u32)> {
        self.recv_into_until(buf, Some(timeout), None)
    }
    /// Like [`try_recv_into`](Channel::try_recv_into), waiting up to `timeout`
    /// (None: no limit) unless `cancel` fires.
    pub fn recv_into_until(
        &self,
        buf: &mut [u8],
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<(usize, u32)> {
        let cap = buf.len();
        self.rx()
            .recv_into(
                buf,
                Some(&limit_for(timeout, cancel, self.inner.spin)),
                false,
            )?
            .map_err(|n| too_small(cap, n))
    }

    /// Copying receive for the C API: `Ok(Err(needed))` when `buf` is too small.
    pub(crate) fn recv_into_raw(
        &self,
        buf: &mut [u8],
        limit: Option<&WaitLimit<'_>>,
    ) -> Result<std::result::Result<(usize, u32), usize>> {
        self.rx().recv_into(buf, limit, false)
    }

    // ---- exclusive sides -------------------------------------------------

    /// Takes the producer side for as long as the returned handle lives. On
    /// SPSC/SPMC channels that makes it the only sender (a second call, or a
    /// `send` through a `Channel`, is refused meanwhile) and lets each send skip
    /// the per-call side lock.
    pub fn producer(&self) -> Result<Producer> {
        self.tx().lock_producer()?;
        Ok(Producer {
            shared: self.inner.tx.clone(),
            spin: self.inner.spin,
            codec: self.inner.codec,
        })
    }

    /// Takes the consumer side for as long as the returned handle lives (see
    /// [`producer`](Channel::producer)).
    pub fn consumer(&self) -> Result<Consumer> {
        self.rx().lock_consumer()?;
        Ok(Consumer {
            shared: self.inner.rx.clone(),
            spin: self.inner.spin,
        })
    }

    // ---- control ---------------------------------------------------------

    /// Stops the channel (every handle on it): wakes all waiters; sends fail
    /// with [`Error::ChannelStopped`]; receivers drain what is queued first.
    /// A socket end also stops accepting and reconnecting; its driver writes
    /// out what was sent before the stop, then closes its connections.
    pub fn stop(&self) {
        for s in self.rings() {
            s.ring.stop();
        }
        if let Some(d) = &self.inner.driver {
            d.stop();
        }
    }
    /// Whether the channel was stopped.
    pub fn is_stopped(&self) -> bool {
        self.tx().ring.is_stopped()
    }
    /// The channel's counters.
    pub fn metrics(&self) -> Metrics {
        let [messages_sent, bytes_sent, _, _, send_blocks, _] = self.tx().ring.counters();
        let [_, _, messages_received, bytes_received, _, receive_blocks] =
            self.rx().ring.counters();
        let (queued, high_water) = self.rings().fold((0, 0), |(q, h), s| {
            (q + s.ring.used_bytes(), h + s.ring.high_water_bytes())
        });
        // Encoded messages took other sizes in the ring than the application's.
        let (cs, cr) = (
            self.tx().ring.codec_counters(),
            self.rx().ring.codec_counters(),
        );
        let mut m = Metrics {
            messages_sent,
            bytes_sent,
            messages_received,
            bytes_received,
            send_blocks,
            receive_blocks,
            wire_bytes_sent: bytes_sent
                .wrapping_sub(cs.sent_raw)
                .wrapping_add(cs.sent_ring),
            wire_bytes_received: bytes_received
                .wrapping_sub(cr.received_raw)
                .wrapping_add(cr.received_ring),
            messages_compressed: cs.compressed,
            checksum_failures: cr.checksum_failures,
            frames_refused: cr.malformed,
            queued_bytes: queued,
            high_water_bytes: high_water.max(queued),
            ..Metrics::default()
        };
        if let Some(d) = &self.inner.driver {
            let w = d.counters();
            m.wire_bytes_sent = w.wire_bytes_sent;
            m.wire_bytes_received = w.wire_bytes_received;
            m.messages_compressed = w.messages_compressed;
            m.checksum_failures = w.checksum_failures;
            m.frames_refused = w.frames_refused;
            m.connects = w.connects;
            m.reconnects = w.reconnects;
            m.peers = w.peers;
        }
        m
    }
    /// Bytes currently queued (messages not yet released, with their headers
    /// and padding): the ring's depth (both rings' on a socket end).
    pub fn queued_bytes(&self) -> usize {
        self.rings().map(|s| s.ring.used_bytes() as usize).sum()
    }
    /// Sets every counter to zero (the connection counts too; `peers` and
    /// `queued_bytes` describe the present and stay).
    pub fn reset_metrics(&self) {
        for s in self.rings() {
            s.ring.reset_counters();
        }
        if let Some(d) = &self.inner.driver {
            d.reset_counters();
        }
    }
    /// Turns counting on or off (on by default).
    pub fn set_metrics_enabled(&self, on: bool) {
        for s in self.rings() {
            s.ring.set_metrics_enabled(on);
        }
    }
    /// A socket end's bound address: `HOST:PORT` of a tcp listener (with the
    /// port the system chose for port 0), the path of a unix listener, the
    /// peer address of a connector. `None` on memory:// and ipc://.
    pub fn local_addr(&self) -> Option<String> {
        self.inner.driver.as_ref().map(|d| d.local_addr())
    }
    /// The last protocol violation or close reason seen on a socket end,
    /// e.g. `"checksum-mismatch: ..."` (docs/PROTOCOL.md lists the tags).
    pub fn last_peer_error(&self) -> Option<String> {
        self.inner.driver.as_ref().and_then(|d| d.last_peer_error())
    }

    /// Calls `callback(payload, type)` on a dispatcher thread for every message
    /// received through this handle; `None` turns it off (waiting for a running
    /// call to finish, unless called from inside the callback). While it is on,
    /// the dispatcher is a receiver like any other: on SPSC/MPSC channels it holds
    /// the consumer side, and this call fails if another receive is in progress.
    pub fn set_receive_callback(
        &self,
        callback: Option<crate::callback::ReceiveCallback>,
    ) -> Result<()> {
        let mut slot = self.inner.dispatcher.lock();
        if let Some(d) = slot.take() {
            d.shut_down();
        }
        if let Some(cb) = callback {
            *slot = Some(crate::callback::Dispatcher::start(self.consumer()?, cb)?);
        }
        Ok(())
    }
}

/// The producer side, held exclusively on single-producer channels.
/// See [`Channel::producer`].
pub struct Producer {
    shared: Arc<Shared>,
    spin: Duration,
    /// The handle's encoding (memory/ipc with compression or checksums).
    codec: Option<CompressionConfig>,
}

impl Producer {
    /// As [`Channel::try_send`].
    #[inline]
    pub fn try_send(&mut self, data: &[u8], msg_type: u32) -> Result<()> {
        if let Some(cfg) = &self.codec {
            return self.shared.send_encoded(cfg, data, msg_type, None, true);
        }
        self.shared.send(data, msg_type, None, true)
    }
    /// As [`Channel::send`].
    pub fn send(&mut self, data: &[u8], msg_type: u32) -> Result<()> {
        self.send_until(data, msg_type, None, None)
    }
    /// As [`Channel::send_timeout`].
    pub fn send_timeout(&mut self, data: &[u8], msg_type: u32, timeout: Duration) -> Result<()> {
        self.send_until(data, msg_type, Some(timeout), None)
    }
    /// As [`Channel::send_until`].
    pub fn send_until(
        &mut self,
        data: &[u8],
        msg_type: u32,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<()> {
        let limit = Some(&limit_for(timeout, cancel, self.spin));
        self.send_limited(data, msg_type, limit)
    }
    /// As [`Channel::try_reserve`].
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<WriteGuard<'_>> {
        if let Some(cfg) = &self.codec {
            return self.shared.reserve_encoded(cfg, len, None, true);
        }
        let claim = self.shared.claim(len, None, true)?;
        Ok(WriteGuard::new(&self.shared, claim, false))
    }
    /// As [`Channel::reserve`].
    pub fn reserve(&mut self, len: usize) -> Result<WriteGuard<'_>> {
        self.reserve_until(len, None, None)
    }
    /// As [`Channel::reserve_timeout`].
    pub fn reserve_timeout(&mut self, len: usize, timeout: Duration) -> Result<WriteGuard<'_>> {
        self.reserve_until(len, Some(timeout), None)
    }
    /// As [`Channel::reserve_until`].
    pub fn reserve_until(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<WriteGuard<'_>> {
        let limit = Some(&limit_for(timeout, cancel, self.spin));
        self.reserve_limited(len, limit)
    }

    /// A reservation; `limit == None`: do not wait.
    #[inline]
    pub(crate) fn reserve_limited(
        &mut self,
        len: usize,
        limit: Option<&WaitLimit<'_>>,
    ) -> Result<WriteGuard<'_>> {
        if let Some(cfg) = &self.codec {
            return self.shared.reserve_encoded(cfg, len, limit, true);
        }
        let claim = self.shared.claim(len, limit, true)?;
        Ok(WriteGuard::new(&self.shared, claim, false))
    }

    /// A copying send; `limit == None`: do not wait.
    #[inline]
    pub(crate) fn send_limited(
        &mut self,
        data: &[u8],
        msg_type: u32,
        limit: Option<&WaitLimit<'_>>,
    ) -> Result<()> {
        if let Some(cfg) = &self.codec {
            return self.shared.send_encoded(cfg, data, msg_type, limit, true);
        }
        self.shared.send(data, msg_type, limit, true)
    }

    /// The polling phase of blocking calls.
    pub(crate) fn spin(&self) -> Duration {
        self.spin
    }
}

impl Drop for Producer {
    #[inline]
    fn drop(&mut self) {
        self.shared.ring.unlock_producer();
    }
}

/// The consumer side, held exclusively on single-consumer channels.
/// See [`Channel::consumer`].
pub struct Consumer {
    shared: Arc<Shared>,
    spin: Duration,
}

impl Consumer {
    /// As [`Channel::try_recv`].
    #[inline]
    pub fn try_recv(&mut self) -> Result<ReadGuard<'_>> {
        self.recv_inner(None)
    }
    /// As [`Channel::recv`].
    pub fn recv(&mut self) -> Result<ReadGuard<'_>> {
        self.recv_inner(Some(&limit_for(None, None, self.spin)))
    }
    /// As [`Channel::recv_timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ReadGuard<'_>> {
        self.recv_inner(Some(&limit_for(Some(timeout), None, self.spin)))
    }
    /// As [`Channel::recv_until`].
    pub fn recv_until(
        &mut self,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<ReadGuard<'_>> {
        self.recv_inner(Some(&limit_for(timeout, cancel, self.spin)))
    }
    /// As [`Channel::try_recv_into`].
    #[inline(always)]
    pub fn try_recv_into(&mut self, buf: &mut [u8]) -> Result<(usize, u32)> {
        let cap = buf.len();
        self.shared
            .recv_into(buf, None, true)?
            .map_err(|n| too_small(cap, n))
    }
    /// As [`Channel::recv_into`].
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<(usize, u32)> {
        self.recv_into_until(buf, None, None)
    }
    /// As [`Channel::recv_into_timeout`].
    pub fn recv_into_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<(usize, u32)> {
        self.recv_into_until(buf, Some(timeout), None)
    }
    /// As [`Channel::recv_into_until`].
    pub fn recv_into_until(
        &mut self,
        buf: &mut [u8],
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<(usize, u32)> {
        let cap = buf.len();
        self.shared
            .recv_into(buf, Some(&limit_for(timeout, cancel, self.spin)), true)?
            .map_err(|n| too_small(cap, n))
    }

    /// A copying receive that reports a too-small `buf` as `Ok(Err(needed))`
    /// (the message stays queued); `limit == None`: do not wait.
    #[inline]
    pub(crate) fn recv_into_limited(
        &mut self,
        buf: &mut [u8],
        limit: Option<&WaitLimit<'_>>,
    ) -> Result<std::result::Result<(usize, u32), usize>> {
        self.shared.recv_into(buf, limit, true)
    }

    /// The polling phase of blocking calls.
    pub(crate) fn spin(&self) -> Duration {
        self.spin
    }

    /// A zero-copy receive; `limit == None`: do not wait.
    #[inline]
    pub(crate) fn recv_inner(&mut self, limit: Option<&WaitLimit<'_>>) -> Result<ReadGuard<'_>> {
        match self.shared.read(usize::MAX, limit, true)? {
            Ok(rec) => Ok(ReadGuard::new(&self.shared, rec, false)),
            // No message exceeds usize::MAX: the next one is encoded.
            Err(_) => self.shared.view_encoded(limit, false),
        }
    }
}

impl Drop for Consumer {
    #[inline]
    fn drop(&mut self) {
        self.shared.ring.unlock_consumer();
    }
}

#[cfg(all(test, not(loom)))]
mod copy_tests {
    #[test]
    fn copy_bytes_copies_every_length_exactly() {
        let src: Vec<u8> = (0..200u8).collect();
        for len in 0..=130 {
            let mut dst = vec![0xAAu8; 140];
            // SAFETY: src has 200 bytes, dst 140, len <= 130; distinct buffers.
            unsafe { super::copy_bytes(src.as_ptr(), dst.as_mut_ptr(), len) };
            assert_eq!(&dst[..len], &src[..len], "len {len}");
            assert!(dst[len..].iter().all(|&b| b == 0xAA), "wrote past {len}");
        }
    }
}

#[cfg(all(test, not(loom)))]
mod codec_tests {
    use super::*;
    use crate::CompressionType;

    /// Flips one bit of the first record's payload, `at` bytes in.
    fn flip(ch: &Channel, at: usize) {
        let p = ch.tx().ring.payload_ptr(0);
        // SAFETY: the ring's first record (position 0) holds at least `at`
        // bytes of payload, and no guard is held on it.
        unsafe { *p.add(at) ^= 0x08 };
    }

    #[test]
    fn memory_checksums_catch_flipped_bits_in_every_encoding() {
        for (i, kind) in [
            CompressionType::None,
            CompressionType::Lz4,
            CompressionType::Zstd,
            CompressionType::Snappy,
        ]
        .into_iter()
        .enumerate()
        {
            let uri = format!("memory://flip-{i}");
            let tx = Channel::builder(&uri)
                .buffer_size(1 << 16)
                .compression(CompressionConfig {
                    kind,
                    level: 0,
                    min_size_threshold: 0,
                    enable_checksum: true,
                })
                .build()
                .unwrap();
            let rx = Channel::open(&uri, 0, Mode::Spsc, ChannelType::Multi).unwrap();
            let data = b"abcdefgh".repeat(100);
            tx.try_send(&data, 1).unwrap();
            tx.try_send(b"next", 2).unwrap();
            // Inside the body, past the 16-byte envelope.
            flip(&tx, ENVELOPE_LEN + 3);
            let m = rx.try_recv().unwrap();
            assert_eq!((&m[..], m.msg_type()), (&b"next"[..], 2), "{kind:?}");
            drop(m);
            let got = rx.metrics();
            assert_eq!(
                got.checksum_failures + got.frames_refused,
                1,
                "{kind:?}: {got:?}"
            );
            if kind == CompressionType::None {
                assert_eq!(got.checksum_failures, 1);
            }
            assert!(matches!(rx.try_recv(), Err(Error::NoMessage)));
        }
    }
}
