//! The fixed, `#[repr(C)]` layout of a ring: a control block followed by the
//! data area. Nothing in it is a pointer — only positions and lengths — so the
//! same bytes work in a heap allocation (`memory://`) and in a shared-memory
//! segment mapped at different addresses by different processes (`ipc://`).
//!
//! ```text
//! Control (22 × 128 B)          data area (capacity bytes, power of two)
//! ┌────────┬────────┬──────┬────┐ ┌──────────┬─────────┬──────────┬───┐
//! │producer│consumer│ head │wake│ │hdr│payload│hdr│pad..│hdr│payload│...│
//! │ flags │ 2 × 8 counter lines │ └──────────┴─────────┴──────────┴───┘
//! └────────┴────────┴──────┴────┘
//! ```
//!
//! Positions are byte offsets that grow forever (u64, never wrap in practice);
//! `position & (capacity - 1)` is the offset in the data area. Because they never
//! repeat, a compare-and-swap on a position cannot suffer ABA.

use crate::sync::{AtomicU32, AtomicU64};

/// Size of a record header; records start on multiples of it.
pub(crate) const RECORD_ALIGN: u64 = 16;
/// Header bytes before each payload.
pub(crate) const HEADER_SIZE: u64 = 16;
/// Free bytes a producer always leaves: the header slot after its record, which
/// single-producer rings zero before publishing (see `Ring::commit`).
pub(crate) const SLACK: u64 = HEADER_SIZE;
/// Smallest ring; smaller requests are rounded up to it.
pub const MIN_CAPACITY: usize = 64;
/// Largest ring.
pub const MAX_CAPACITY: usize = 1 << 40;

/// Record states (the `state` word of a [`RecordHeader`]).
pub(crate) mod state {
    /// Not written yet: the consumer stops here.
    pub const EMPTY: u32 = 0;
    /// A message.
    pub const MESSAGE: u32 = 1;
    /// With `MESSAGE`: the payload is an encoded message (compressed and/or
    /// checksummed, `codec.rs`); `flags` holds its decoded length until a
    /// consumer takes it. Plain messages never have it, so that a receiver
    /// tells them apart from the state word it loads anyway.
    pub const ENCODED: u32 = 8;
    /// Space to skip (the end of the data area before a wrap, or a cancelled
    /// multi-producer reservation).
    pub const PADDING: u32 = 2;
    /// Multi-consumer rings: the record was read and released, its space can be
    /// freed once every earlier record is released too.
    pub const RELEASED: u32 = 4;
}

/// The 16 bytes before each payload. All fields are atomics because in
/// multi-consumer rings a late consumer may look at a header that is being
/// recycled (it then fails its CAS and retries); plain fields would make that
/// look a data race.
#[repr(C)]
pub(crate) struct RecordHeader {
    /// One of [`state`]; written last by the producer (Release).
    pub state: AtomicU32,
    /// Payload length in bytes.
    pub len: AtomicU32,
    /// Message type (0 on SINGLE channels).
    pub msg_type: AtomicU32,
    /// While a multi-producer claim or a multi-consumer view is held on an
    /// `ipc://` ring: its crash-recovery entry (`Ring::stash_claim`,
    /// `Ring::stash_record`). Between the commit and the read of an
    /// `ENCODED` message: its decoded length, so that a receive into a
    /// buffer too small for it leaves it queued. Otherwise unused (zero on
    /// multi-producer rings, stale bytes on single-producer ones).
    pub flags: AtomicU32,
}

/// One cache-line pair. 128 bytes because Intel's adjacent-line prefetcher pulls
/// lines in pairs (the same choice as crossbeam's `CachePadded`); our own
/// `repr(C)` type so that the layout is fixed for shared memory.
#[repr(C, align(128))]
pub(crate) struct Padded<T>(pub T);

/// Lines of counters per side: single sides count on line 0, threads on a
/// multi side each on a line of their own (see `counters.rs`), so that counting
/// writes no cache line another thread writes.
pub(crate) const COUNTER_STRIPES: usize = 8;

/// One side's counters on one line (see [`COUNTER_STRIPES`]).
#[repr(C)]
pub(crate) struct SideCounters {
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    /// Times an operation found the ring full (producers) or empty
    /// (consumers). Callers that poll with `try_*` bump it on every miss,
    /// which is why it must not share a line with `tail` or `read`.
    pub blocks: AtomicU64,
    /// Encoded messages (`state::ENCODED`): their decoded bytes (included
    /// in `bytes`) and the bytes they took in the ring, so that the wire
    /// bytes are `bytes - encoded_raw + encoded_ring`.
    pub encoded_raw: AtomicU64,
    /// See `encoded_raw`.
    pub encoded_ring: AtomicU64,
    /// Producers: messages stored compressed. Consumers: messages dropped
    /// because their checksum did not match.
    pub compressed_or_bad_checksum: AtomicU64,
    /// Consumers: encoded messages dropped as malformed (an envelope or
    /// body that does not decode).
    pub malformed: AtomicU64,
}

/// What producers write.
#[repr(C)]
pub(crate) struct ProducerLine {
    /// Next position to claim. Multi-producer: claimed by CAS.
    pub tail: AtomicU64,
    /// Producers' last view of `head`, so that they rarely read the head line.
    pub head_cache: AtomicU64,
    /// Single-producer rings: owner token of the one active producer (0 = free).
    pub lock: AtomicU32,
    /// Single-producer rings: the length of the reservation the producer
    /// holds (see `Ring::stash_claim`).
    pub reserved_len: AtomicU32,
}

/// What consumers write.
#[repr(C)]
pub(crate) struct ConsumerLine {
    /// Next record to read. Multi-consumer: claimed by CAS.
    pub read: AtomicU64,
    /// Single-consumer rings: owner token of the one active consumer (0 = free).
    pub lock: AtomicU32,
    /// SPSC rings: copying receives since the consumer last found the ring
    /// empty, capped (a read-ahead hint, see `Ring::read_ahead`).
    pub streak: AtomicU32,
    /// Single-consumer rings that publish `head` in batches: the last value
    /// stored to `head` (everything up to `read` is already freed).
    pub published: AtomicU64,
}

/// Sleep/wake words for one direction.
#[repr(C)]
pub(crate) struct WakeLine {
    /// Futex word, bumped to wake sleepers.
    pub event: AtomicU32,
    /// Non-zero while someone may be asleep on `event`.
    pub sleepers: AtomicU32,
}

/// The control block at the start of every ring.
#[repr(C)]
pub(crate) struct Control {
    pub producer: Padded<ProducerLine>,
    pub consumer: Padded<ConsumerLine>,
    /// Everything before `head` is free for producers. Bit 0 is a lock taken by
    /// the multi-consumer thread that is freeing released records.
    pub head: Padded<AtomicU64>,
    /// Consumers sleep here when the ring is empty; producers wake them.
    pub data: Padded<WakeLine>,
    /// Producers sleep here when the ring is full; consumers wake them.
    pub space: Padded<WakeLine>,
    /// Read-mostly flags.
    pub flags: Padded<FlagsLine>,
    /// Producers' counters (`blocks`: sends that found the ring full).
    pub sent: [Padded<SideCounters>; COUNTER_STRIPES],
    /// Consumers' counters (`blocks`: receives that found the ring empty).
    pub received: [Padded<SideCounters>; COUNTER_STRIPES],
}

#[repr(C)]
pub(crate) struct FlagsLine {
    /// Non-zero once the channel is stopped.
    pub stopped: AtomicU32,
    /// Non-zero while metrics are counted.
    pub metrics_enabled: AtomicU32,
    /// 0 until a stop has settled; then 1 + the `tail` read after the stop
    /// was made visible to every producer: every record before it is
    /// published, as a message or as padding, and none after it ever is as a
    /// message (`Ring::stop`).
    pub stop_tail: AtomicU64,
}

/// Bit 0 of `head`: the multi-consumer free lock.
pub(crate) const HEAD_LOCK: u64 = 1;

#[inline]
pub(crate) const fn align_up(n: u64, a: u64) -> u64 {
    (n + a - 1) & !(a - 1)
}

/// Bytes a record with `len` payload bytes occupies.
#[inline]
pub(crate) const fn record_size(len: u64) -> u64 {
    align_up(HEADER_SIZE + len, RECORD_ALIGN)
}

/// The capacity a requested buffer size becomes.
pub fn capacity_for(requested: usize) -> Option<usize> {
    if requested > MAX_CAPACITY {
        return None;
    }
    Some(requested.max(MIN_CAPACITY).next_power_of_two())
}

/// Largest payload a ring of `capacity` bytes accepts: half the ring minus one
/// header. Then a record (≤ capacity/2), the padding a wrap may need before it
/// (< the record) and the slack always fit together, so an *empty* ring accepts
/// any legal message at once, wherever its write position is. (Were records
/// allowed up to the whole ring, a send into an empty ring could find only
/// unconsumed padding and report full.)
pub fn max_message_for(capacity: usize) -> usize {
    (capacity as u64 / 2 - HEADER_SIZE).min(u32::MAX as u64) as usize
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn layout_is_fixed() {
        assert_eq!(std::mem::size_of::<RecordHeader>(), HEADER_SIZE as usize);
        assert_eq!(std::mem::align_of::<Control>(), 128);
        assert_eq!(
            std::mem::size_of::<Control>(),
            (6 + 2 * COUNTER_STRIPES) * 128
        );
        assert_eq!(record_size(0), 16);
        assert_eq!(record_size(1), 32);
        assert_eq!(record_size(16), 32);
        assert_eq!(record_size(64), 80);
    }

    #[test]
    fn capacity_rounds_up_to_a_power_of_two() {
        assert_eq!(capacity_for(0), Some(64));
        assert_eq!(capacity_for(1000), Some(1024));
        assert_eq!(capacity_for(1 << 20), Some(1 << 20));
        assert_eq!(capacity_for(usize::MAX), None);
        assert_eq!(max_message_for(64), 16);
        assert_eq!(max_message_for(1 << 20), (1 << 19) - 16);
    }
}
