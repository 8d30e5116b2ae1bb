//! A bounded ring of variable-size records in one contiguous memory region.
//!
//! Each record is a 16-byte [`RecordHeader`] plus its payload, rounded up to 16
//! bytes. A record that would cross the end of the data area is preceded by a
//! padding record that fills the rest of the lap, so every payload is contiguous
//! and can be handed out as a slice (zero-copy reservation and receive).
//!
//! # How consumers find messages
//!
//! As in Aeron's log buffers, a consumer learns that a record is ready from the
//! record's own `state` word, not from a shared tail index: producers never write
//! a cache line that consumers poll except the record itself. For that to be
//! sound, a header slot must read `EMPTY` until its record is published, even
//! though the bytes there may be an old payload. Two ways to guarantee it:
//!
//! * **single producer**: before publishing a record, the producer zeroes the
//!   state word of the slot right after it (it always keeps [`SLACK`] bytes free
//!   for this). A consumer only reaches that slot after seeing the record before
//!   it, so it sees the zero.
//! * **multi producer**: producers claim space with a CAS and publish in any
//!   order, so nobody knows where the next header lies when publishing. Instead
//!   the space is zeroed when it is freed: every byte between `tail` and
//!   `head + capacity` is zero.
//!
//! # Modes
//!
//! | side     | single (SP / SC)                         | multi (MP / MC)                                   |
//! |----------|------------------------------------------|---------------------------------------------------|
//! | claim    | plain load/store of `tail`               | CAS on `tail`                                     |
//! | read     | plain load/store of `read`               | CAS on `read`                                     |
//! | release  | store `head` (one view at a time)        | mark `RELEASED`; free runs of released records    |
//!
//! # Handing space back in batches
//!
//! Moving `head` for every message would make producers and consumers trade
//! cache lines per message. So consumers hand space back in batches of 1/16 of
//! the ring, at once when they find the ring drained, and at once while a
//! producer sleeps for space; producers that wait for space also free for
//! themselves. Single consumers publish `head` in batches. Multi consumers mark
//! records `RELEASED` and the one that crosses the batch walks the run of
//! released records at the front and moves `head` over it with one CAS (under
//! `HEAD_LOCK` where the run must be zeroed first). Tracked (`ipc://`) rings
//! hand back every record at once: crash recovery reasons record by record.
//! Single sides are exclusive: the channel layer lets one thread at a time use
//! them (see [`Ring::try_lock_producer`]), which is what makes plain stores
//! enough there.
//!
//! # Failed polls
//!
//! Each failed non-blocking attempt counts a block (metrics) and may yield the
//! CPU when the ring stays stalled — on a peer preempted mid-step, or on
//! threads queued behind the poller (`stall.rs`).
//!
//! # Prefetching
//!
//! Single producers ask for the next record's lines while the caller fills
//! this one, and SPSC consumers that trail the producer read ahead
//! (`ahead.rs`).

mod ahead;
mod counters;
pub(crate) mod layout;
mod stall;
pub(crate) mod track;
pub(crate) mod wait;

use crate::mode::Mode;
use crate::sync::{fence, light_barrier, AtomicU32, AtomicU64, Ordering, Scope};
use layout::*;
use std::ptr::NonNull;

/// A claimed, not yet published record.
///
/// Claims and records are built in one function and read in its caller,
/// often through the stack: every field is a whole 8-byte word, written by one
/// store, so that reading it back is store-forwarded. (With `u32` fields the
/// compiler wrote them separately and read them together, and each such read
/// stalled for the store buffer — a third of the reservation path's time.)
#[derive(Debug)]
pub(crate) struct Claim {
    pub pos: u64,
    /// Payload length (low half) and ipc crash-recovery entry (high half;
    /// `track::NO_TRACK` when untracked).
    meta: u64,
}

impl Claim {
    #[inline(always)]
    fn new(pos: u64, len: u32, track: u32) -> Claim {
        Claim {
            pos,
            meta: len as u64 | (track as u64) << 32,
        }
    }
    #[inline(always)]
    pub fn len(&self) -> u32 {
        self.meta as u32
    }
    #[inline(always)]
    pub fn track(&self) -> u32 {
        (self.meta >> 32) as u32
    }
}

/// A record taken by a consumer, not yet released (see [`Claim`] on the
/// layout).
#[derive(Debug)]
pub(crate) struct Record {
    pub pos: u64,
    /// Payload length (low half) and message type (high half).
    meta: u64,
    /// ipc crash-recovery entry (`track::NO_TRACK` when untracked; low
    /// half) and, for an encoded message, its decoded length plus one
    /// (high half; 0 for a plain message).
    track: u64,
}

impl Record {
    #[inline(always)]
    fn new(pos: u64, len: u32, msg_type: u32, track: u32) -> Record {
        Record {
            pos,
            meta: len as u64 | (msg_type as u64) << 32,
            track: track as u64,
        }
    }
    /// An `ENCODED` record whose message decodes to `decoded` bytes
    /// (`decoded < u32::MAX`, see [`Ring::commit_encoded`]).
    #[inline(always)]
    fn encoded(pos: u64, len: u32, msg_type: u32, track: u32, decoded: u32) -> Record {
        Record {
            pos,
            meta: len as u64 | (msg_type as u64) << 32,
            track: track as u64 | (decoded as u64 + 1) << 32,
        }
    }
    /// An encoded message's decoded length; `None` for a plain message.
    #[inline(always)]
    pub fn decoded_len(&self) -> Option<u32> {
        match (self.track >> 32) as u32 {
            0 => None,
            n => Some(n - 1),
        }
    }
    #[inline(always)]
    pub fn len(&self) -> u32 {
        self.meta as u32
    }
    #[inline(always)]
    pub fn msg_type(&self) -> u32 {
        (self.meta >> 32) as u32
    }
    #[inline(always)]
    pub fn track(&self) -> u32 {
        self.track as u32
    }
}

/// `Err` of [`Ring::try_read`]: the next message is encoded (no message
/// too large to fit can need 0 bytes).
pub(crate) const ENCODED_NEXT: u32 = 0;

/// A ring's counts of encoded messages ([`Ring::codec_counters`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CodecCounters {
    pub sent_raw: u64,
    pub sent_ring: u64,
    pub received_raw: u64,
    pub received_ring: u64,
    pub compressed: u64,
    pub checksum_failures: u64,
    pub malformed: u64,
}

/// Which way a waiter waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// A consumer waiting for a message.
    Data,
    /// A producer waiting for space.
    Space,
}

/// Keeps a ring's memory alive (a heap allocation, or a mapping).
pub(crate) trait RegionOwner: Send + Sync {}
impl<T: Send + Sync> RegionOwner for T {}

/// The ring itself: pointers into memory owned by `_region`.
pub(crate) struct Ring {
    ctrl: NonNull<Control>,
    data: NonNull<u8>,
    capacity: u64,
    mask: u64,
    /// `max_message_for(capacity)`, computed once: it is checked on every send.
    max_message: usize,
    /// Single-consumer rings without crash tracking: publish `head` once this
    /// many bytes are freed (0 = after every record).
    head_batch: u64,
    /// Multi-consumer rings without crash tracking: a release frees released
    /// records (and moves `head`) only once this many bytes wait to be freed,
    /// or when a producer sleeps for space; consumers that find the ring
    /// empty and producers about to wait free them too (0 = free at every
    /// release).
    free_batch: u64,
    multi_producer: bool,
    multi_consumer: bool,
    /// Single-producer rings on CPUs with `prefetchw`: claims ask for the
    /// next record's lines (`ahead.rs`).
    writes_ahead: bool,
    scope: Scope,
    #[cfg(loom)]
    headers: Box<[RecordHeader]>,
    /// ipc:// only: crash-recovery entries and liveness check (see track.rs).
    track: Option<Box<track::Tracker>>,
    /// The deepest this process saw the ring (bytes), sampled off the hot
    /// path: when a producer refreshes its view of `head`, when a send finds
    /// the ring full, and when the depth is read. A statistic only, so a
    /// plain std atomic (not modelled by loom), on a line of its own.
    high_water: crossbeam_utils::CachePadded<std::sync::atomic::AtomicU64>,
    _region: Box<dyn RegionOwner>,
}

// SAFETY: the ring only hands out shared access to atomics and to payload bytes
// whose ownership the claim/read protocol transfers between threads; the region
// owner is Send + Sync.
unsafe impl Send for Ring {}
// SAFETY: as above; every shared mutable word is atomic.
unsafe impl Sync for Ring {}

/// A zeroed heap region holding control block and data area.
#[cfg(not(loom))]
struct HeapRegion {
    ptr: NonNull<u8>,
    layout: std::alloc::Layout,
}

#[cfg(not(loom))]
impl Drop for HeapRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `Ring::new_heap` with exactly this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

// SAFETY: a plain allocation with no thread affinity.
#[cfg(not(loom))]
unsafe impl Send for HeapRegion {}
// SAFETY: the region itself is never accessed through HeapRegion.
#[cfg(not(loom))]
unsafe impl Sync for HeapRegion {}

/// Maps a position to its offset in the data area. Positions are always
/// multiples of 16, so clearing the low bits changes nothing for them — but a
/// misaligned position written into shared memory by a faulty or hostile
/// process can then never place a 16-byte header across the end of the area.
const fn offset_mask(capacity: u64) -> u64 {
    (capacity - 1) & !(RECORD_ALIGN - 1)
}

/// How far ahead of the freeing walk to prefetch (see `Ring::prefetch`).
const PREFETCH_AHEAD: u64 = 512;

/// A blocking send on a ring whose `head` moves per message reads `head` on
/// every this-many-th polling attempt (see [`Ring::try_claim_waiting`]).
const HEAD_READ_EVERY: u32 = 16;

/// `flags.stopped` values: stopped by a caller, or by the ring itself on
/// finding its shared memory corrupt.
const STOPPED: u32 = 1;
const STOPPED_CORRUPT: u32 = 2;

/// Bytes a ring of `capacity` needs: control block plus data area.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const fn region_size(capacity: usize) -> usize {
    std::mem::size_of::<Control>() + capacity
}

impl Ring {
    /// A ring on the heap, for `memory://`.
    #[cfg(not(loom))]
    pub(crate) fn new_heap(capacity: usize, mode: Mode) -> Result<Ring, crate::Error> {
        debug_assert!(capacity.is_power_of_two() && capacity >= MIN_CAPACITY);
        let layout =
            std::alloc::Layout::from_size_align(region_size(capacity), 128).map_err(|_| {
                crate::Error::OutOfMemory(format!("ring of {capacity} bytes is too large"))
            })?;
        // SAFETY: layout has non-zero size. Zeroed memory is a valid initial state:
        // every atomic is 0 and every record state is EMPTY.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| {
            crate::Error::OutOfMemory(format!("could not allocate a ring of {capacity} bytes"))
        })?;
        let region = HeapRegion { ptr, layout };
        // SAFETY: the region is zeroed, 128-aligned and region_size(capacity) long.
        let ring = unsafe { Ring::from_raw(ptr, capacity, mode, Scope::Process, Box::new(region)) };
        ring.ctrl()
            .flags
            .0
            .metrics_enabled
            .store(1, Ordering::Relaxed);
        Ok(ring)
    }

    /// A ring over caller-provided memory (`ipc://`).
    ///
    /// # Safety
    /// `base` points to at least [`region_size`]`(capacity)` bytes, 128-aligned,
    /// that stay mapped while `owner` lives, and that hold either all zeros or a
    /// control block and data area left by rings of the same capacity and mode.
    #[cfg(not(loom))]
    pub(crate) unsafe fn from_raw(
        base: NonNull<u8>,
        capacity: usize,
        mode: Mode,
        scope: Scope,
        owner: Box<dyn RegionOwner>,
    ) -> Ring {
        crate::sync::init_barriers();
        Ring {
            ctrl: base.cast(),
            // SAFETY: the data area follows the control block inside the region,
            // so the pointer is in bounds and non-null.
            data: unsafe {
                NonNull::new_unchecked(base.as_ptr().add(std::mem::size_of::<Control>()))
            },
            capacity: capacity as u64,
            mask: offset_mask(capacity as u64),
            max_message: max_message_for(capacity),
            head_batch: if mode.multi_consumer() {
                0
            } else {
                (capacity as u64 / 16).max(RECORD_ALIGN)
            },
            free_batch: if mode.multi_consumer() {
                (capacity as u64 / 16).max(RECORD_ALIGN)
            } else {
                0
            },
            multi_producer: mode.multi_producer(),
            multi_consumer: mode.multi_consumer(),
            writes_ahead: !mode.multi_producer() && ahead::cpu_prefetches_for_write(),
            scope,
            track: None,
            high_water: Default::default(),
            _region: owner,
        }
    }

    /// Under loom the control block and headers are loom objects built normally.
    #[cfg(loom)]
    pub(crate) fn new_heap(capacity: usize, mode: Mode) -> Result<Ring, crate::Error> {
        let line = || WakeLine {
            event: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        };
        let counters = || SideCounters {
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            encoded_raw: AtomicU64::new(0),
            encoded_ring: AtomicU64::new(0),
            compressed_or_bad_checksum: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
        };
        let ctrl = Box::new(Control {
            producer: Padded(ProducerLine {
                tail: AtomicU64::new(0),
                head_cache: AtomicU64::new(0),
                lock: AtomicU32::new(0),
                reserved_len: AtomicU32::new(0),
            }),
            consumer: Padded(ConsumerLine {
                read: AtomicU64::new(0),
                lock: AtomicU32::new(0),
                streak: AtomicU32::new(0),
                published: AtomicU64::new(0),
            }),
            head: Padded(AtomicU64::new(0)),
            data: Padded(line()),
            space: Padded(line()),
            flags: Padded(FlagsLine {
                stopped: AtomicU32::new(0),
                metrics_enabled: AtomicU32::new(1),
                stop_tail: AtomicU64::new(0),
            }),
            sent: std::array::from_fn(|_| Padded(counters())),
            received: std::array::from_fn(|_| Padded(counters())),
        });
        let data = vec![0u8; capacity].into_boxed_slice();
        let headers = (0..capacity / HEADER_SIZE as usize)
            .map(|_| RecordHeader {
                state: AtomicU32::new(0),
                len: AtomicU32::new(0),
                msg_type: AtomicU32::new(0),
                flags: AtomicU32::new(0),
            })
            .collect();
        let ctrl_ptr = NonNull::from(&*ctrl);
        let data_ptr = NonNull::new(data.as_ptr() as *mut u8).unwrap();
        Ok(Ring {
            ctrl: ctrl_ptr,
            data: data_ptr,
            capacity: capacity as u64,
            mask: offset_mask(capacity as u64),
            max_message: max_message_for(capacity),
            head_batch: if mode.multi_consumer() {
                0
            } else {
                // Half the ring: the models' few small records then exercise
                // deferred publication and the flush on empty.
                capacity as u64 / 2
            },
            // Half the ring, for the same reason: releases that defer the
            // freeing, releases that do it, and producers that free for
            // themselves all occur.
            free_batch: if mode.multi_consumer() {
                capacity as u64 / 2
            } else {
                0
            },
            multi_producer: mode.multi_producer(),
            multi_consumer: mode.multi_consumer(),
            writes_ahead: false,
            scope: Scope::Process,
            headers,
            track: None,
            high_water: Default::default(),
            _region: Box::new(LoomRegion(ctrl, std::sync::Mutex::new(data))),
        })
    }

    #[inline]
    pub(crate) fn ctrl(&self) -> &Control {
        // SAFETY: ctrl points into the region, which lives as long as self.
        unsafe { self.ctrl.as_ref() }
    }

    /// Data-area bytes.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Largest payload accepted.
    #[inline]
    pub(crate) fn max_message(&self) -> usize {
        self.max_message
    }

    /// Whether several consumers may read at once.
    #[inline]
    #[cfg_attr(loom, allow(dead_code))] // used by the socket driver
    pub(crate) fn is_multi_consumer(&self) -> bool {
        self.multi_consumer
    }

    pub(crate) fn scope(&self) -> Scope {
        self.scope
    }

    #[inline]
    fn header(&self, pos: u64) -> &RecordHeader {
        #[cfg(not(loom))]
        {
            let off = (pos & self.mask) as usize;
            // SAFETY: positions are multiples of 16 and `off + 16 <= capacity`
            // (capacity is a multiple of 16), so the header lies inside the data
            // area, 16-byte aligned (the area starts 128-aligned).
            unsafe { &*(self.data.as_ptr().add(off) as *const RecordHeader) }
        }
        #[cfg(loom)]
        {
            &self.headers[((pos & self.mask) / HEADER_SIZE) as usize]
        }
    }

    /// Pointer to the payload of the record at `pos`.
    #[inline]
    pub(crate) fn payload_ptr(&self, pos: u64) -> *mut u8 {
        let off = ((pos & self.mask) + HEADER_SIZE) as usize;
        // SAFETY: a record's payload follows its header inside the data area
        // (records never cross the end), so the offset is in bounds.
        unsafe { self.data.as_ptr().add(off) }
    }

    #[inline]
    fn count(&self, lines: &counters::CounterLines, multi: bool, bytes: u64) {
        if self.ctrl().flags.0.metrics_enabled.load(Ordering::Relaxed) != 0 {
            counters::count_message(lines, multi, self.scope, bytes);
        }
    }

    /// Records that a send found the ring full (once per call), and yields
    /// the CPU if the ring seems stalled (stall.rs).
    #[inline]
    pub(crate) fn note_send_block(&self) {
        self.track_poll(); // ipc: liveness check, rate-limited (track.rs)
        self.note_depth(self.used_bytes());
        if self.ctrl().flags.0.metrics_enabled.load(Ordering::Relaxed) != 0 {
            counters::count_block(&self.ctrl().sent, self.multi_producer, self.scope);
        }
        self.note_failed_poll();
    }

    /// Yields the CPU to a stalled ring (stall.rs). Progress marker: `read`,
    /// loaded every few dozen failed polls. Every receive moves it, and a
    /// failing poller needs nothing else: a sender finds the ring full only
    /// until receivers take something, and a receiver finds nothing only
    /// until somebody receives (or the sender it waits for publishes).
    /// Producers' `tail` would do for senders too, but receivers must not
    /// read it: on single-producer rings it is the producer's private line.
    #[inline]
    fn note_failed_poll(&self) {
        stall::failed_poll(
            self.ctrl.as_ptr() as usize,
            || self.ctrl().consumer.0.read.load(Ordering::Relaxed),
            || self.stalled_on_peer(),
        );
    }

    /// Whether the ring is held up by another thread in the middle of a
    /// step (stall.rs): the oldest unread record is claimed but not yet
    /// published, or the oldest unfreed one is taken but not yet released.
    /// Racy by design — the words may change while we look, and a wrong
    /// answer costs one needless yield or one missed — so plain loads.
    #[cold]
    fn stalled_on_peer(&self) -> bool {
        let c = self.ctrl();
        let read = c.consumer.0.read.load(Ordering::Relaxed);
        if self.multi_producer
            && c.producer.0.tail.load(Ordering::Relaxed) != read
            && self.header(read).state.load(Ordering::Relaxed) == state::EMPTY
        {
            return true;
        }
        // Not HEAD_LOCK: a consumer freeing the front holds it for
        // microseconds while it zeroes, and yielding to it then cost more
        // than it saved (MPMC 2x2 went from 26 to 45 ns per message).
        let head = c.head.0.load(Ordering::Relaxed);
        self.multi_consumer
            && head & HEAD_LOCK == 0
            && head != read
            && self.header(head).state.load(Ordering::Relaxed) & state::RELEASED == 0
    }

    /// Records that a receive found the ring empty (once per call), and
    /// yields like [`Ring::note_send_block`]. Inline: busy-polling receivers
    /// run it on every miss, and a shorter miss path is a shorter time to
    /// notice the next message.
    #[inline(always)]
    pub(crate) fn note_receive_block(&self) {
        if self.reads_ahead() {
            let streak = &self.ctrl().consumer.0.streak;
            if streak.load(Ordering::Relaxed) != 0 {
                streak.store(0, Ordering::Relaxed);
            }
        }
        self.track_poll(); // ipc: liveness check, rate-limited (track.rs)
        if self.ctrl().flags.0.metrics_enabled.load(Ordering::Relaxed) != 0 {
            counters::count_block(&self.ctrl().received, self.multi_consumer, self.scope);
        }
        self.note_failed_poll();
    }

    // ------------------------------------------------------------------
    // Single-side ownership
    // ------------------------------------------------------------------

    /// Single-producer rings: takes the producer side for `token` (non-zero).
    /// Multi-producer rings: always succeeds.
    pub(crate) fn try_lock_producer(&self, token: u32) -> bool {
        self.multi_producer
            || try_lock(&self.ctrl().producer.0.lock, token)
            // ipc: the owner may be a dead process; check (rate-limited), retry once.
            || (self.is_tracked() && {
                self.track_idle();
                try_lock(&self.ctrl().producer.0.lock, token)
            })
    }

    pub(crate) fn unlock_producer(&self) {
        if !self.multi_producer {
            self.ctrl().producer.0.lock.store(0, Ordering::Release);
        }
    }

    /// Single-consumer rings: takes the consumer side for `token` (non-zero).
    pub(crate) fn try_lock_consumer(&self, token: u32) -> bool {
        self.multi_consumer
            || try_lock(&self.ctrl().consumer.0.lock, token)
            // ipc: the owner may be a dead process; check (rate-limited), retry once.
            || (self.is_tracked() && {
                self.track_idle();
                try_lock(&self.ctrl().consumer.0.lock, token)
            })
    }

    pub(crate) fn unlock_consumer(&self) {
        if !self.multi_consumer {
            self.ctrl().consumer.0.lock.store(0, Ordering::Release);
        }
    }

    // ------------------------------------------------------------------
    // Producer side
    // ------------------------------------------------------------------

    /// Whether `need` more bytes fit after position `t` (keeping the slack
    /// free). `refresh`: when the cached `head` says no, read `head` itself.
    #[inline]
    fn has_room(&self, t: u64, need: u64, refresh: bool) -> bool {
        let p = &self.ctrl().producer.0;
        // Acquire/Release on the cache too: with several producers, the one
        // that refreshed it is not the one that uses it, and the user must
        // still synchronise with the consumer that freed (and zeroed) the
        // space — else the consumer's zeroing may land after our writes.
        // (Found by the loom model `loom_mpsc`; free on x86.)
        // Compared without a subtraction: with several producers, `t` may be
        // stale (another producer's claim moved `tail` past it) and `head`
        // already beyond it; `t + need + SLACK - head` then underflowed (a
        // panic in debug builds, a spurious "full" in release ones).
        t + need + SLACK <= p.head_cache.load(Ordering::Acquire) + self.capacity
            || (refresh && self.has_room_slow(t, need))
    }

    /// [`Ring::has_room`] when the cached `head` says no: reads `head`.
    #[inline]
    fn has_room_slow(&self, t: u64, need: u64) -> bool {
        let fits = |head: u64| t + need + SLACK <= head + self.capacity;
        // Acquire: pairs with the consumer's Release store of `head`, so that
        // its reads of (and, multi-producer, its zeroing of) the freed bytes
        // happen before we write them.
        let head = self.ctrl().head.0.load(Ordering::Acquire) & !HEAD_LOCK;
        self.ctrl()
            .producer
            .0
            .head_cache
            .store(head, Ordering::Release);
        self.note_depth(t.saturating_sub(head));
        fits(head)
    }

    /// A producer about to wait for space: on rings that free lazily, frees
    /// what consumers released but left for later (slow path only: it reads
    /// the consumers' lines).
    pub(crate) fn free_for_waiting_producer(&self) {
        if self.free_batch != 0 {
            self.free_released(track::NO_TRACK);
        }
    }

    /// Claims space for a `len`-byte payload. `Ok(None)` when the ring is full.
    /// Single-producer rings: the caller holds the producer side.
    #[inline(always)]
    pub(crate) fn try_claim(&self, len: usize) -> Option<Claim> {
        self.try_claim_refreshing(len, true)
    }

    /// [`Ring::try_claim`] for the `attempt`-th try (from 1) of a blocking
    /// send; `before_sleep`: the last try before it sleeps. Where receivers
    /// move `head` for every message ([`Ring::head_moves_per_message`]), only
    /// every [`HEAD_READ_EVERY`]-th try and the one before sleeping read
    /// `head`; the others trust the producer's cached copy.
    #[inline]
    pub(crate) fn try_claim_waiting(
        &self,
        len: usize,
        attempt: u32,
        before_sleep: bool,
    ) -> Option<Claim> {
        let refresh =
            before_sleep || !self.head_moves_per_message() || attempt % HEAD_READ_EVERY == 0;
        self.try_claim_refreshing(len, refresh)
    }

    /// [`Ring::try_claim`]; with `refresh` false, a ring that the producer's
    /// cached `head` shows full is reported full without reading `head`.
    #[inline(always)]
    fn try_claim_refreshing(&self, len: usize, refresh: bool) -> Option<Claim> {
        debug_assert!(len <= self.max_message());
        let rec = record_size(len as u64);
        if self.multi_producer {
            self.try_claim_multi(len as u32, rec, refresh)
        } else {
            self.try_claim_single(len as u32, rec, refresh)
        }
    }

    /// Whether receivers move `head` for every message: multi-consumer
    /// tracked (`ipc://`) rings, which free each record when it is released.
    /// There a sender that polls a full ring and reads `head` on every
    /// attempt takes `head`'s line from the receivers each time, and every
    /// free then waits for it (measured: a polling sender made one sender
    /// and one receiver 3–4× slower than one that backed off). Blocking
    /// sends on such rings read it only on some attempts
    /// ([`Ring::try_claim_waiting`]).
    #[inline]
    fn head_moves_per_message(&self) -> bool {
        self.multi_consumer && self.is_tracked()
    }

    #[inline(always)]
    fn try_claim_single(&self, len: u32, rec: u64, refresh: bool) -> Option<Claim> {
        let p = &self.ctrl().producer.0;
        // Only this producer writes `tail`.
        let mut t = p.tail.load(Ordering::Relaxed);
        let to_end = self.capacity - (t & self.mask);
        if rec > to_end {
            if !self.has_room(t, to_end, refresh) {
                return None;
            }
            self.publish_padding(t, to_end, true);
            t += to_end;
            p.tail.store(t, Ordering::Relaxed);
        }
        if !self.has_room(t, rec, refresh) {
            return None;
        }
        self.write_ahead(t + rec, rec); // while the caller fills this one
        Some(Claim::new(t, len, track::NO_TRACK))
    }

    fn try_claim_multi(&self, len: u32, rec: u64, refresh: bool) -> Option<Claim> {
        // ipc: a crash-recovery entry for this claim (track.rs).
        let slot = self.track_claim_begin()?;
        let p = &self.ctrl().producer.0;
        let mut t = p.tail.load(Ordering::Relaxed);
        loop {
            let to_end = self.capacity - (t & self.mask);
            // Claim the rest of the lap as padding first if the record does not fit.
            let need = if rec > to_end { to_end } else { rec };
            if !self.has_room(t, need, refresh) {
                self.track_claim_done(slot);
                return None;
            }
            self.track_claim_intent(slot, t, need);
            // Relaxed is enough: the claim orders nothing by itself. Space
            // reuse is ordered by the Acquire load of `head` in has_room, and
            // publication by the record's state word.
            match p
                .tail
                .compare_exchange_weak(t, t + need, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) if need == rec => {
                    self.track_claim_held(slot, rec);
                    return Some(Claim::new(t, len, slot));
                }
                Ok(_) => {
                    self.publish_padding(t, to_end, false);
                    t += to_end;
                }
                Err(actual) => t = actual,
            }
        }
    }

    /// Writes and publishes a padding record of `size` bytes at `pos`.
    #[inline]
    fn publish_padding(&self, pos: u64, size: u64, zero_next: bool) {
        let h = self.header(pos);
        h.len.store((size - HEADER_SIZE) as u32, Ordering::Relaxed);
        if zero_next {
            self.header(pos + size)
                .state
                .store(state::EMPTY, Ordering::Relaxed);
        }
        // Release: the length (and the zeroed next slot) are visible to whoever
        // sees PADDING.
        h.state.store(state::PADDING, Ordering::Release);
    }

    /// Publishes a claimed record and counts it. Wakes sleeping consumers.
    /// False: the ring was stopped (see [`Ring::commit_counted`]).
    #[inline(always)]
    #[must_use]
    pub(crate) fn commit(&self, claim: Claim, msg_type: u32) -> bool {
        self.count_sent(claim.len());
        self.commit_counted(claim, msg_type)
    }

    /// Counts a message of `len` bytes as sent. The copying send counts
    /// before it writes the payload and then commits with
    /// [`Ring::commit_counted`] (it cannot fail in between): on shared
    /// (`ipc://`) multi-producer rings the count is a locked add, which after
    /// the payload stores would wait for them to reach the cache — taking
    /// back the lines the receiver just read — before the sender could go on.
    #[inline(always)]
    pub(crate) fn count_sent(&self, len: u32) {
        self.count(&self.ctrl().sent, self.multi_producer, len as u64);
    }

    /// Takes back a [`Ring::count_sent`] of a message that was not sent.
    fn uncount_sent(&self, len: u32) {
        if self.ctrl().flags.0.metrics_enabled.load(Ordering::Relaxed) != 0 {
            counters::uncount_message(
                &self.ctrl().sent,
                self.multi_producer,
                self.scope,
                len as u64,
            );
        }
    }

    /// [`Ring::commit`] of a message already counted ([`Ring::count_sent`]).
    /// False: the ring was stopped, and the record is published as padding
    /// instead (see [`Ring::stop`]); the message counts as not sent.
    #[inline(always)]
    #[must_use]
    pub(crate) fn commit_counted(&self, claim: Claim, msg_type: u32) -> bool {
        let len = claim.len();
        if self.publish(claim, msg_type, state::MESSAGE) {
            true
        } else {
            self.uncount_sent(len);
            false
        }
    }

    /// Writes a claimed record's header and publishes it with state `st`.
    /// False: the ring was stopped, and the record became padding.
    #[inline(always)]
    fn publish(&self, claim: Claim, msg_type: u32, st: u32) -> bool {
        let h = self.header(claim.pos);
        let rec = record_size(claim.len() as u64);
        h.len.store(claim.len(), Ordering::Relaxed);
        h.msg_type.store(msg_type, Ordering::Relaxed);
        let p = &self.ctrl().producer.0;
        if !self.multi_producer {
            // The slot after this record is inside our slack: nobody reads it
            // until they have seen this record, and the Release below makes
            // the zero visible first.
            self.header(claim.pos + rec)
                .state
                .store(state::EMPTY, Ordering::Relaxed);
            p.tail.store(claim.pos + rec, Ordering::Relaxed);
        }
        // The claim is visible in `tail` now (stored above, or by the claim's
        // CAS): either a stop's read of `tail` sees it, or this load sees the
        // stop (Dekker's pattern; `Ring::stop` has the heavy side).
        light_barrier();
        if self.ctrl().flags.0.stopped.load(Ordering::Relaxed) != 0 {
            return self.refuse_after_stop(claim, rec);
        }
        // Release: payload and header fields happen-before a consumer's Acquire
        // load that sees MESSAGE.
        h.state.store(st, Ordering::Release);
        self.track_claim_done(claim.track()); // ipc: after the publish (track.rs)
        self.wake_if_sleeping(Direction::Data);
        true
    }

    /// A commit that found the ring stopped: the record becomes padding
    /// (receivers skip it).
    #[cold]
    #[inline(never)]
    fn refuse_after_stop(&self, claim: Claim, rec: u64) -> bool {
        self.publish_padding(claim.pos, rec, false);
        self.track_claim_done(claim.track()); // ipc: after the publish (track.rs)
        self.wake_if_sleeping(Direction::Data);
        false
    }

    /// Publishes a claimed record holding an encoded message (an envelope
    /// and body, `codec.rs`) that decodes to `decoded` bytes, and counts
    /// it; `compressed`: its body is compressed. `decoded < u32::MAX`.
    /// False: the ring was stopped (see [`Ring::commit_counted`]).
    #[must_use]
    pub(crate) fn commit_encoded(
        &self,
        claim: Claim,
        msg_type: u32,
        decoded: u32,
        compressed: bool,
    ) -> bool {
        debug_assert!(decoded < u32::MAX);
        self.header(claim.pos)
            .flags
            .store(decoded, Ordering::Relaxed);
        let ring_len = claim.len() as u64;
        if !self.publish(claim, msg_type, state::MESSAGE | state::ENCODED) {
            return false;
        }
        if self.ctrl().flags.0.metrics_enabled.load(Ordering::Relaxed) != 0 {
            counters::count_encoded(
                &self.ctrl().sent,
                self.multi_producer,
                self.scope,
                decoded as u64,
                ring_len,
                compressed,
            );
        }
        true
    }

    /// Single-producer rings: the claim cut down to `len <= claim.len()`
    /// bytes (nothing after it is claimed yet, so the rest goes back to the
    /// free space). Multi-producer rings: the claim unchanged (others may
    /// have claimed the space after it).
    pub(crate) fn shrink(&self, claim: Claim, len: u32) -> Claim {
        debug_assert!(len <= claim.len());
        if self.multi_producer {
            claim
        } else {
            Claim::new(claim.pos, len, claim.track())
        }
    }

    /// Keeps a claim's length (and, on tracked rings, its crash-recovery
    /// entry) until commit or cancel, so that a reservation guard needs only
    /// the position. Single producer: on the producer's own line (it holds
    /// the side while it holds the reservation). Multi producer: in the
    /// claimed record's header, which belongs to the claimer until it
    /// publishes the state word (nobody reads `len` before that; `flags` only
    /// holds the entry meanwhile). Not in the header on single-producer rings:
    /// there the header slot is the one an idle consumer polls, and a write
    /// to it before the payload is written would pull that line back and
    /// forth once more per message.
    #[inline(always)]
    pub(crate) fn stash_claim(&self, claim: &Claim) {
        if !self.multi_producer {
            self.ctrl()
                .producer
                .0
                .reserved_len
                .store(claim.len(), Ordering::Relaxed);
            return;
        }
        let h = self.header(claim.pos);
        h.len.store(claim.len(), Ordering::Relaxed);
        if self.is_tracked() {
            h.flags.store(claim.track(), Ordering::Relaxed);
        }
    }

    /// The stashed length of the claim at `pos`.
    #[inline(always)]
    pub(crate) fn stashed_len(&self, pos: u64) -> u32 {
        let len = if self.multi_producer {
            self.header(pos).len.load(Ordering::Relaxed)
        } else {
            self.ctrl().producer.0.reserved_len.load(Ordering::Relaxed)
        };
        self.fit_len(pos, len)
    }

    /// The claim [`Ring::stash_claim`] stashed at `pos` (and `flags` back to
    /// zero).
    #[inline(always)]
    pub(crate) fn stashed_claim(&self, pos: u64) -> Claim {
        if !self.multi_producer {
            // Single-producer claims carry no crash-recovery entry.
            return Claim::new(pos, self.stashed_len(pos), track::NO_TRACK);
        }
        let h = self.header(pos);
        Claim::new(
            pos,
            self.fit_len(pos, h.len.load(Ordering::Relaxed)),
            self.take_stashed_track(h),
        )
    }

    /// The crash-recovery entry a guard stashed in `h.flags` (tracked rings;
    /// `flags` back to zero), `NO_TRACK` on untracked rings.
    #[inline(always)]
    fn take_stashed_track(&self, h: &RecordHeader) -> u32 {
        if self.is_tracked() {
            h.flags.swap(0, Ordering::Relaxed)
        } else {
            track::NO_TRACK
        }
    }

    /// The length of a record a consumer holds (its header does not change
    /// until the consumer releases it).
    #[inline(always)]
    pub(crate) fn record_len(&self, pos: u64) -> u32 {
        self.fit_len(pos, self.header(pos).len.load(Ordering::Relaxed))
    }

    /// The type of a record a consumer holds.
    #[inline(always)]
    pub(crate) fn record_type(&self, pos: u64) -> u32 {
        self.header(pos).msg_type.load(Ordering::Relaxed)
    }

    /// Keeps a held record's crash-recovery entry (tracked multi-consumer
    /// rings) in its header's `flags` until release, so that a receive guard
    /// needs only the position; length and type are in the header already.
    #[inline(always)]
    pub(crate) fn stash_record(&self, rec: &Record) {
        if self.multi_consumer && self.is_tracked() {
            self.header(rec.pos)
                .flags
                .store(rec.track(), Ordering::Relaxed);
        }
    }

    /// The record [`Ring::stash_record`] stashed at `pos` (and `flags` back to
    /// zero).
    #[inline(always)]
    pub(crate) fn stashed_record(&self, pos: u64) -> Record {
        let h = self.header(pos);
        let track = if self.multi_consumer {
            self.take_stashed_track(h)
        } else {
            track::NO_TRACK
        };
        Record::new(
            pos,
            self.fit_len(pos, h.len.load(Ordering::Relaxed)),
            h.msg_type.load(Ordering::Relaxed),
            track,
        )
    }

    /// Gives a claimed record back.
    pub(crate) fn cancel(&self, claim: Claim) {
        if self.multi_producer {
            // Others may have claimed space after ours: the record must stay,
            // as padding that consumers skip and free.
            let size = record_size(claim.len() as u64);
            self.publish_padding(claim.pos, size, false);
            self.track_claim_done(claim.track()); // ipc: after the publish (track.rs)
            self.wake_if_sleeping(Direction::Data);
        }
        // Single producer: `tail` never moved past the claim, so the space is
        // simply reused by the next claim.
    }

    // ------------------------------------------------------------------
    // Consumer side
    // ------------------------------------------------------------------

    /// Takes the next message, skipping padding. `Ok(None)` when empty;
    /// `Err(len)` when the next message is longer than `max` (it stays queued).
    /// Single-consumer rings: the caller holds the consumer side and has
    /// released every earlier record.
    ///
    /// An encoded message (`state::ENCODED`) is left queued and reported as
    /// `Err(ENCODED_NEXT)`: the caller takes it with
    /// [`Ring::try_read_encoded`] and decodes it. So the plain path carries
    /// nothing for encoded messages but one test of the state it loads.
    #[inline(always)]
    pub(crate) fn try_read(&self, max: u32) -> Result<Option<Record>, u32> {
        if self.multi_consumer {
            self.try_read_multi::<false>(max)
        } else {
            self.try_read_single::<false>(max)
        }
    }

    /// [`Ring::try_read`] that takes encoded messages too: their records
    /// carry the decoded length ([`Record::decoded_len`]), which decides
    /// whether they fit `max`.
    #[inline(never)]
    pub(crate) fn try_read_encoded(&self, max: u32) -> Result<Option<Record>, u32> {
        if self.multi_consumer {
            self.try_read_multi::<true>(max)
        } else {
            self.try_read_single::<true>(max)
        }
    }

    #[inline(always)]
    fn try_read_single<const ENCODED: bool>(&self, max: u32) -> Result<Option<Record>, u32> {
        let c = &self.ctrl().consumer.0;
        let mut r = c.read.load(Ordering::Relaxed);
        loop {
            let h = self.header(r);
            // Acquire: pairs with the producer's Release store of the state.
            let st = h.state.load(Ordering::Acquire);
            if st == state::EMPTY {
                // Caught up: every record before `r` is released (one view at
                // a time on single-consumer rings), so publish what is pending.
                if self.head_batch != 0 && c.published.load(Ordering::Relaxed) != r {
                    self.publish_head(r);
                }
                return Ok(None);
            }
            let len = h.len.load(Ordering::Relaxed);
            if !self.record_fits(r, len) {
                // ipc: a corrupt segment (track.rs)
                self.corrupt();
                return Ok(None);
            }
            if st != state::MESSAGE {
                if st & state::ENCODED != 0 {
                    if !ENCODED {
                        return Err(ENCODED_NEXT);
                    }
                    return self.take_encoded_single(r, len, max);
                }
                // Padding (or, in a corrupt segment, an unknown state:
                // skipped the same way).
                let next = r + record_size(len as u64);
                c.read.store(next, Ordering::Relaxed);
                self.free_single(r, next);
                r = next;
                continue;
            }
            if len > max {
                return Err(len);
            }
            let next = r + record_size(len as u64);
            c.read.store(next, Ordering::Relaxed);
            let msg_type = h.msg_type.load(Ordering::Relaxed);
            self.count(&self.ctrl().received, false, len as u64);
            return Ok(Some(Record::new(r, len, msg_type, track::NO_TRACK)));
        }
    }

    /// [`Ring::try_read_single`] of an encoded record at `r`: taken if it
    /// decodes to at most `max` bytes (counted when decoded, not here).
    #[cold]
    #[inline(never)]
    fn take_encoded_single(&self, r: u64, len: u32, max: u32) -> Result<Option<Record>, u32> {
        let h = self.header(r);
        let decoded = h.flags.load(Ordering::Relaxed);
        // A decoded length beyond the ring's maximum is a corrupt record:
        // taken, so that the channel drops it, rather than left to block
        // every copying receive.
        if decoded > max && decoded as usize <= self.max_message {
            return Err(decoded);
        }
        let msg_type = h.msg_type.load(Ordering::Relaxed);
        let c = &self.ctrl().consumer.0;
        c.read.store(r + record_size(len as u64), Ordering::Relaxed);
        Ok(Some(Record::encoded(
            r,
            len,
            msg_type,
            track::NO_TRACK,
            decoded.min(u32::MAX - 1),
        )))
    }

    fn try_read_multi<const ENCODED: bool>(&self, max: u32) -> Result<Option<Record>, u32> {
        let c = &self.ctrl().consumer.0;
        // ipc: a crash-recovery entry for this view (track.rs); none left
        // (this process holds too many views) reads as empty.
        let Some(slot) = self.track_view_begin() else {
            return Ok(None);
        };
        loop {
            let r = c.read.load(Ordering::Acquire);
            let h = self.header(r);
            let st = h.state.load(Ordering::Acquire);
            if st & (state::MESSAGE | state::PADDING) == 0 || st & state::RELEASED != 0 {
                // EMPTY: nothing yet — unless `read` moved while we looked, in
                // which case the slot may be a recycled one: look again.
                // RELEASED: another consumer already took it; `read` has moved.
                if c.read.load(Ordering::Acquire) == r {
                    if st == state::EMPTY {
                        self.track_view_done(slot);
                        self.free_on_drain(r);
                        return Ok(None);
                    }
                    // `read` stayed at `r` while we looked, so the header is
                    // the untaken record's own: EMPTY, MESSAGE or PADDING.
                    // Anything else is shared memory gone bad (ipc).
                    if self.is_tracked() {
                        self.corrupt();
                        self.track_view_done(slot);
                        return Ok(None);
                    }
                }
                continue;
            }
            if !ENCODED && st & state::ENCODED != 0 {
                // Left for `try_read_encoded` if it is the front record now.
                if c.read.load(Ordering::Acquire) == r {
                    self.track_view_done(slot);
                    return Err(ENCODED_NEXT);
                }
                continue;
            }
            let len = h.len.load(Ordering::Relaxed);
            let msg_type = h.msg_type.load(Ordering::Relaxed);
            // Encoded: the decoded length decides whether it fits.
            let decoded = if ENCODED && st & state::ENCODED != 0 {
                Some(h.flags.load(Ordering::Relaxed).min(u32::MAX - 1))
            } else {
                None
            };
            let need = decoded.unwrap_or(len);
            // (A decoded length beyond the ring's maximum is corrupt: taken
            // and dropped, see `take_encoded_single`.)
            if st & state::MESSAGE != 0 && need > max && need as usize <= self.max_message {
                // Only report it if it really is the front message right now.
                if c.read.load(Ordering::Acquire) == r {
                    self.track_view_done(slot);
                    return Err(need);
                }
                continue;
            }
            if !self.record_fits(r, len) {
                // ipc: garbage from a stale look, or a corrupt segment.
                if c.read.load(Ordering::Acquire) == r {
                    self.corrupt();
                    self.track_view_done(slot);
                    return Ok(None);
                }
                continue;
            }
            self.track_view_intent(slot, r);
            let next = r + record_size(len as u64);
            // The CAS decides ownership. If `r` was stale, the header may have
            // belonged to another lap and len/type are garbage — but then the
            // CAS fails and we discard them.
            if c.read
                .compare_exchange(r, next, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            if st == state::PADDING {
                self.release_multi(r, len, slot);
                continue;
            }
            self.track_view_held(slot);
            if let Some(decoded) = decoded {
                // Counted once decoded (`Ring::count_decoded`).
                return Ok(Some(Record::encoded(r, len, msg_type, slot, decoded)));
            }
            self.count(&self.ctrl().received, true, len as u64);
            return Ok(Some(Record::new(r, len, msg_type, slot)));
        }
    }

    /// Single-consumer rings: takes the run of published messages after the
    /// last one taken — at most `max_records` of them, and no more once
    /// `max_bytes` of payload are reached — calling `take` on each, without
    /// freeing anything. Returns the end of the run; the caller hands the
    /// whole run back with [`Ring::free_run`]`(start, end)` once it is done
    /// with every record in it (`start`: [`Ring::read_position`] before this
    /// call). Padding inside the run is skipped and freed with it. An I/O
    /// driver writes a run to its socket with one vectored write.
    #[cfg_attr(loom, allow(dead_code))] // used by the socket driver
    pub(crate) fn read_run(
        &self,
        max_records: usize,
        max_bytes: u64,
        mut take: impl FnMut(Record),
    ) -> u64 {
        debug_assert!(!self.multi_consumer && self.track.is_none());
        let c = &self.ctrl().consumer.0;
        let start = c.read.load(Ordering::Relaxed);
        let (mut r, mut n, mut bytes) = (start, 0usize, 0u64);
        while n < max_records && bytes < max_bytes {
            let h = self.header(r);
            // Acquire: pairs with the producer's Release store of the state.
            let st = h.state.load(Ordering::Acquire);
            if st == state::EMPTY {
                break;
            }
            let len = h.len.load(Ordering::Relaxed);
            if !self.record_fits(r, len) {
                self.corrupt();
                break;
            }
            let next = r + record_size(len as u64);
            // A socket end's send ring holds plain messages only (the
            // driver compresses while framing).
            debug_assert!(st & state::ENCODED == 0);
            if st == state::MESSAGE {
                let msg_type = h.msg_type.load(Ordering::Relaxed);
                self.count(&self.ctrl().received, false, len as u64);
                take(Record::new(r, len, msg_type, track::NO_TRACK));
                n += 1;
                bytes += len as u64;
            }
            r = next;
        }
        c.read.store(r, Ordering::Relaxed);
        if r == start && self.head_batch != 0 && c.published.load(Ordering::Relaxed) != r {
            // Caught up with nothing held: publish what is pending, as
            // try_read_single does.
            self.publish_head(r);
        }
        r
    }

    /// Single-consumer rings: where the next [`Ring::read_run`] starts.
    #[cfg_attr(loom, allow(dead_code))] // used by the socket driver
    pub(crate) fn read_position(&self) -> u64 {
        self.ctrl().consumer.0.read.load(Ordering::Relaxed)
    }

    /// Hands back a run taken by [`Ring::read_run`].
    #[cfg_attr(loom, allow(dead_code))] // used by the socket driver
    pub(crate) fn free_run(&self, start: u64, end: u64) {
        if end != start {
            self.free_single(start, end);
        }
    }

    /// Frees a record taken by [`Ring::try_read`].
    #[inline(always)]
    pub(crate) fn release(&self, rec: Record) {
        if self.multi_consumer {
            self.release_multi(rec.pos, rec.len(), rec.track());
            self.track_view_done(rec.track()); // ipc: after RELEASED (track.rs)
        } else {
            self.free_single(rec.pos, rec.pos + record_size(rec.len() as u64));
        }
    }

    /// Single consumer: records are freed in order, so `pos == head`.
    #[inline(always)]
    fn free_single(&self, pos: u64, end: u64) {
        // ipc: `end` came from a header in shared memory (track.rs).
        if self.is_tracked() && !self.span_is_taken(pos, end) {
            self.corrupt();
            return;
        }
        if self.multi_producer {
            self.zero(pos, end);
        }
        if self.head_batch != 0 {
            // Publish freed space in batches, so that a producer running
            // against a full ring does not pull the `head` line across cores
            // for every message. The rest is published when the consumer
            // finds the ring empty (try_read_single), so a producer is never
            // left waiting for space that is free — and at once if a producer
            // is already asleep waiting for it.
            let c = &self.ctrl().consumer.0;
            if end - c.published.load(Ordering::Relaxed) < self.head_batch {
                light_barrier();
                if self.ctrl().space.0.sleepers.load(Ordering::Relaxed) == 0 {
                    return;
                }
            }
        }
        self.publish_head(end);
    }

    /// Single consumer: makes everything before `end` free for producers.
    #[inline]
    fn publish_head(&self, end: u64) {
        // Release: our reads of the records (and the zeroing) happen-before a
        // producer's Acquire load of `head` that lets it reuse the space.
        self.ctrl().head.0.store(end, Ordering::Release);
        self.ctrl()
            .consumer
            .0
            .published
            .store(end, Ordering::Relaxed);
        self.wake_if_sleeping(Direction::Space);
    }

    /// Multi consumer: mark released, then — at once on tracked rings, in
    /// batches otherwise — free every released record at the front of the
    /// ring. Whoever finds the front released frees it: by a CAS of `head`
    /// over the run, or, where the run must be zeroed (multi-producer) or
    /// recorded for crash recovery (tracked), under `HEAD_LOCK`.
    ///
    /// A releaser that finds the lock taken can leave, because the lock holder
    /// will see its RELEASED: a Dekker handshake between (RELEASED store, SeqCst
    /// fence or store, SeqCst load of `head`) here and (SeqCst store of `head`,
    /// SeqCst load of the state) in the loop.
    ///
    /// Deferring (no handshake, a plain Release store) leaves at most a batch
    /// of released space unfreed, and never strands it: a consumer that finds
    /// the ring empty frees it (`free_on_drain`), and a producer that waits for
    /// space frees it before every try (`free_for_waiting_producer`). One about
    /// to sleep has announced itself and run a heavy barrier before its last
    /// try — so either that try sees our RELEASED or we see its `sleepers`
    /// here and free (the pattern of `wake_if_sleeping`). Producers that only
    /// poll (`try_send`) never free: that would pull `read`, `head` and the
    /// released headers across cores on every miss, and a producer outrunning
    /// its consumers misses on every send. They may see the ring full while up
    /// to a batch of released space awaits freeing.
    /// `slot`: the caller's ipc crash-recovery entry, reused to record the
    /// `HEAD_LOCK` it takes (track.rs); `NO_TRACK` otherwise.
    #[inline]
    fn release_multi(&self, pos: u64, len: u32, slot: u32) {
        let h = self.header(pos);
        let st = h.state.load(Ordering::Relaxed);
        if self.free_batch == 0 {
            h.state.store(st | state::RELEASED, Ordering::SeqCst);
        } else {
            // Release: our reads of the record happen-before the Acquire load
            // (in free_released) of whoever frees it.
            h.state.store(st | state::RELEASED, Ordering::Release);
            let end = pos + record_size(len as u64);
            let head = self.ctrl().head.0.load(Ordering::Relaxed) & !HEAD_LOCK;
            if end.wrapping_sub(head) < self.free_batch {
                light_barrier();
                if self.ctrl().space.0.sleepers.load(Ordering::Relaxed) == 0 {
                    return;
                }
            }
            // Freeing after all: complete the handshake (once per batch).
            fence(Ordering::SeqCst);
        }
        self.free_released(slot);
    }

    /// Multi consumer, lazily freeing ring: a consumer that finds the ring
    /// empty at `read` frees what is released, so that released space does
    /// not wait for a batch that may never fill (as single consumers publish
    /// `head` on drain). Cheap when there is nothing to do: a load of the
    /// read-mostly `head` line and, if records wait, of the front header —
    /// no fence while the front record is still held by its consumer.
    #[inline]
    fn free_on_drain(&self, read: u64) {
        if self.free_batch == 0 {
            return;
        }
        let head = self.ctrl().head.0.load(Ordering::Relaxed);
        // head < read: the front record was claimed, so its header is this
        // lap's (with HEAD_LOCK set, someone is freeing already).
        if head != read
            && head & HEAD_LOCK == 0
            && self.header(head).state.load(Ordering::Relaxed) & state::RELEASED != 0
        {
            // Our own last RELEASED store was a plain Release: complete the
            // handshake with a lock holder (see release_multi).
            fence(Ordering::SeqCst);
            self.free_released(track::NO_TRACK);
        }
    }

    /// Frees every released record at the front of the ring (the loop of
    /// [`Ring::release_multi`]; also run on drain, by producers about to wait,
    /// and by ipc recovery after taking over a dead process's `HEAD_LOCK`).
    fn free_released(&self, slot: u32) {
        let head = &self.ctrl().head.0;
        let read = &self.ctrl().consumer.0.read;
        let mut freed = false;
        loop {
            let front = head.load(Ordering::SeqCst);
            if front & HEAD_LOCK != 0 || front == read.load(Ordering::SeqCst) {
                break;
            }
            let fh = self.header(front);
            if fh.state.load(Ordering::SeqCst) & state::RELEASED == 0 {
                break;
            }
            let mut end = front + record_size(fh.len.load(Ordering::Relaxed) as u64);
            // ipc: the length is read from shared memory; a record that does
            // not lie inside [front, read) would move `head` past unread
            // records (or zero past the data area).
            if self.is_tracked() && !self.span_is_taken(front, end) {
                // `head` may have moved since we loaded `front`: then the
                // header was another lap's and nothing is wrong.
                if head.load(Ordering::SeqCst) == front {
                    self.corrupt();
                }
                break;
            }
            if !self.is_tracked() {
                // Walk on before taking anything: the walk is a chain of cache
                // misses, and a lock holder that gets preempted stalls every
                // producer once the ring fills.
                end = self.released_run(end, front + self.capacity / 4);
            }
            self.track_head_intent(slot, front, end); // ipc (track.rs)

            // Positions never repeat, so this CAS cannot succeed on a recycled
            // slot: if `front` was freed meanwhile, head is no longer `front`.
            // And if it succeeds, nobody freed anything since we loaded
            // `front`, so every record we saw released still is (a record only
            // leaves RELEASED by being freed): the walk was valid.
            //
            // Single producer, untracked: nothing to zero, so move `head`
            // straight to `end`. Otherwise take HEAD_LOCK, zero, then publish:
            // the zeroing must be done before producers may reuse the space,
            // and only by the one thread that owns it.
            let lock_free = !self.multi_producer && !self.is_tracked();
            let to = if lock_free { end } else { front | HEAD_LOCK };
            if head
                .compare_exchange(front, to, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            if !lock_free {
                self.track_head_locked(slot, front, end); // ipc (track.rs)
                if self.multi_producer {
                    self.zero(front, end);
                }
                head.store(end, Ordering::SeqCst);
            }
            freed = true;
        }
        if freed {
            self.wake_if_sleeping(Direction::Space);
        }
    }

    /// The end of the run of released records that starts at `pos`, stopping
    /// before `limit`. Without any lock: a run seen here is only used if the
    /// caller's CAS on `head` proves nothing was freed meanwhile. (Tracked
    /// rings free one record at a time: crash recovery records each range
    /// before taking the lock.)
    fn released_run(&self, mut pos: u64, limit: u64) -> u64 {
        // Every record before `read` was claimed by a consumer, so its header
        // is this lap's (SeqCst/Acquire: the claim's CAS published the state
        // it saw); beyond `read` a single-producer ring may hold stale bytes.
        // If `head` moved meanwhile the headers may be recycled and the
        // lengths garbage; the walk still ends (every step is >= 16 bytes,
        // and `header` masks every position into the data area).
        let read = self
            .ctrl()
            .consumer
            .0
            .read
            .load(Ordering::SeqCst)
            .min(limit);
        while pos < read {
            if pos + PREFETCH_AHEAD < read {
                self.prefetch(pos + PREFETCH_AHEAD);
            }
            let h = self.header(pos);
            if h.state.load(Ordering::SeqCst) & state::RELEASED == 0 {
                break;
            }
            pos += record_size(h.len.load(Ordering::Relaxed) as u64);
        }
        pos
    }

    /// Zeroes `[pos, end)` (multi-producer rings keep free space zeroed). The
    /// range is one or more whole records and may wrap once.
    fn zero(&self, pos: u64, end: u64) {
        #[cfg(not(loom))]
        {
            let off = (pos & self.mask) as usize;
            let len = (end - pos) as usize;
            let first = len.min(self.capacity as usize - off);
            // SAFETY: [pos, end) is at most one lap of whole records that the
            // caller owns (released, not yet freed); split at the end of the
            // data area, both parts are in bounds. A late multi-consumer may
            // still atomically load a header word inside it; it then fails
            // its CAS on `read` and discards the value.
            unsafe {
                std::ptr::write_bytes(self.data.as_ptr().add(off), 0, first);
                std::ptr::write_bytes(self.data.as_ptr(), 0, len - first);
            }
        }
        #[cfg(loom)]
        {
            let mut p = pos;
            while p < end {
                let h = self.header(p);
                h.state.store(0, Ordering::Relaxed);
                h.len.store(0, Ordering::Relaxed);
                h.msg_type.store(0, Ordering::Relaxed);
                p += HEADER_SIZE;
            }
        }
    }

    // ------------------------------------------------------------------
    // Waking
    // ------------------------------------------------------------------

    fn wake_line(&self, d: Direction) -> &WakeLine {
        match d {
            Direction::Data => &self.ctrl().data.0,
            Direction::Space => &self.ctrl().space.0,
        }
    }

    /// Called after publishing (Data) or freeing (Space): wakes sleepers, if any.
    #[inline]
    fn wake_if_sleeping(&self, d: Direction) {
        let line = self.wake_line(d);
        // Pairs with the heavy barrier a sleeper runs between announcing itself
        // and re-checking the ring (see crate::sync).
        light_barrier();
        if line.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake(d);
        }
    }

    /// Wakes every thread sleeping in direction `d`.
    pub(crate) fn wake(&self, d: Direction) {
        let line = self.wake_line(d);
        // Clearing first means several producers do not all pay the syscall;
        // sleepers set it again before sleeping again.
        if line.sleepers.swap(0, Ordering::SeqCst) != 0 || self.is_stopped() {
            line.event.fetch_add(1, Ordering::SeqCst);
            crate::sync::futex_wake_all(&line.event, self.scope);
        }
    }

    /// Stops the ring: wakes everybody; sends fail from now on.
    ///
    /// A stop is one point in time. Producers check for it after their claim
    /// is visible in `tail` and before they publish (light side of an
    /// asymmetric barrier, [`Ring::commit_counted`]); the stop makes itself
    /// visible to every producer (heavy side) and then reads `tail`. So each
    /// claim either sees the stop and becomes padding, or lies before the
    /// `tail` read, which is recorded as `stop_tail`. Receivers report the
    /// stop only once they have read up to `stop_tail`
    /// ([`Ring::drained_after_stop`]): a message that succeeded is never
    /// left behind a receiver that was told the channel stopped.
    pub(crate) fn stop(&self) {
        // A corrupt ring stays marked so (see track.rs).
        let _ = self.ctrl().flags.0.stopped.compare_exchange(
            0,
            STOPPED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.settle_stop();
        for d in [Direction::Data, Direction::Space] {
            let line = self.wake_line(d);
            line.event.fetch_add(1, Ordering::SeqCst);
            crate::sync::futex_wake_all(&line.event, self.scope);
        }
    }

    /// Records `stop_tail` unless it is known already. Any thread may do it
    /// (a stopping process may die before it gets there): the first value
    /// stored stays, and any later read of `tail` would do as well.
    fn settle_stop(&self) {
        let f = &self.ctrl().flags.0;
        if f.stop_tail.load(Ordering::Acquire) != 0 {
            return;
        }
        crate::sync::heavy_barrier(self.scope);
        let tail = self.ctrl().producer.0.tail.load(Ordering::Acquire);
        let _ = f.stop_tail.compare_exchange(
            0,
            tail.wrapping_add(1).max(1),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Whether a receiver that found nothing to take may report the stop:
    /// the ring is stopped and every record before `stop_tail` was taken
    /// (or the ring stopped itself on corrupt shared memory).
    pub(crate) fn drained_after_stop(&self) -> bool {
        let f = &self.ctrl().flags.0;
        match f.stopped.load(Ordering::Acquire) {
            0 => return false,
            STOPPED_CORRUPT => return true,
            _ => {}
        }
        let mut end = f.stop_tail.load(Ordering::Acquire);
        if end == 0 {
            self.settle_stop();
            end = f.stop_tail.load(Ordering::Acquire);
        }
        let read = self.ctrl().consumer.0.read.load(Ordering::Acquire);
        read >= end - 1
    }

    #[inline]
    pub(crate) fn is_stopped(&self) -> bool {
        self.ctrl().flags.0.stopped.load(Ordering::Acquire) != 0
    }

    /// What a call on a stopped ring fails with: `ChannelStopped`, or `Io`
    /// when the ring stopped itself because its shared memory was found
    /// corrupt.
    #[cold]
    pub(crate) fn stopped_error(&self) -> crate::Error {
        if self.ctrl().flags.0.stopped.load(Ordering::Acquire) == STOPPED_CORRUPT {
            crate::Error::Io(
                "the channel's shared memory is corrupt (a record or position read from it is out of bounds); the channel was stopped".into(),
            )
        } else {
            crate::Error::ChannelStopped
        }
    }

    // ------------------------------------------------------------------
    // Metrics
    // ------------------------------------------------------------------

    pub(crate) fn counters(&self) -> [u64; 6] {
        let (sent, received) = (&self.ctrl().sent, &self.ctrl().received);
        [
            counters::sum(sent, |c| &c.messages),
            counters::sum(sent, |c| &c.bytes),
            counters::sum(received, |c| &c.messages),
            counters::sum(received, |c| &c.bytes),
            counters::sum(sent, |c| &c.blocks),
            counters::sum(received, |c| &c.blocks),
        ]
    }

    /// Counts an encoded record a consumer decoded (`Some(ok)`) or dropped
    /// (`bad_checksum`: its checksum did not match; else it did not decode).
    pub(crate) fn count_decoded(&self, rec: &Record, outcome: Result<(), bool>) {
        if self.ctrl().flags.0.metrics_enabled.load(Ordering::Relaxed) == 0 {
            return;
        }
        let lines = &self.ctrl().received;
        match outcome {
            Ok(()) => counters::count_encoded(
                lines,
                self.multi_consumer,
                self.scope,
                rec.decoded_len().unwrap_or(0) as u64,
                rec.len() as u64,
                false,
            ),
            Err(bad_checksum) => {
                counters::count_dropped(lines, self.multi_consumer, self.scope, bad_checksum)
            }
        }
    }

    /// What encoding did: `[encoded_raw, encoded_ring]` of each side,
    /// messages compressed, checksum failures, malformed records.
    pub(crate) fn codec_counters(&self) -> CodecCounters {
        let (sent, received) = (&self.ctrl().sent, &self.ctrl().received);
        CodecCounters {
            sent_raw: counters::sum(sent, |c| &c.encoded_raw),
            sent_ring: counters::sum(sent, |c| &c.encoded_ring),
            received_raw: counters::sum(received, |c| &c.encoded_raw),
            received_ring: counters::sum(received, |c| &c.encoded_ring),
            compressed: counters::sum(sent, |c| &c.compressed_or_bad_checksum),
            checksum_failures: counters::sum(received, |c| &c.compressed_or_bad_checksum),
            malformed: counters::sum(received, |c| &c.malformed),
        }
    }

    pub(crate) fn reset_counters(&self) {
        counters::reset(&self.ctrl().sent);
        counters::reset(&self.ctrl().received);
        self.high_water
            .store(self.used_bytes(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Records a depth seen (see the `high_water` field).
    #[inline]
    fn note_depth(&self, depth: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        if depth > self.high_water.load(Relaxed) {
            self.high_water.fetch_max(depth, Relaxed);
        }
    }

    /// The deepest the ring was seen since the last reset, counting now.
    pub(crate) fn high_water_bytes(&self) -> u64 {
        self.note_depth(self.used_bytes());
        self.high_water.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_metrics_enabled(&self, on: bool) {
        self.ctrl()
            .flags
            .0
            .metrics_enabled
            .store(on as u32, Ordering::Relaxed);
    }

    /// Bytes between the oldest unfreed record and the newest claim.
    pub(crate) fn used_bytes(&self) -> u64 {
        let head = self.ctrl().head.0.load(Ordering::Acquire) & !HEAD_LOCK;
        let tail = self.ctrl().producer.0.tail.load(Ordering::Acquire);
        tail.saturating_sub(head)
    }
}

/// Bytes of records published or claimed but not yet taken by a receiver
/// (records taken but not yet freed do not count). Read from a control block
/// that may be foreign: any values give an answer, never a fault.
pub(crate) fn unread_bytes(ctrl: &Control) -> u64 {
    let read = ctrl.consumer.0.read.load(Ordering::Acquire);
    let tail = ctrl.producer.0.tail.load(Ordering::Acquire);
    tail.saturating_sub(read)
}

fn try_lock(word: &AtomicU32, token: u32) -> bool {
    debug_assert!(token != 0);
    // Acquire: everything the previous owner did on this side happens-before us.
    word.compare_exchange(0, token, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// Keeps a loom ring's control block and data alive (never read).
#[cfg(loom)]
#[allow(dead_code)]
struct LoomRegion(Box<Control>, std::sync::Mutex<Box<[u8]>>);

#[cfg(test)]
mod test_support;

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
