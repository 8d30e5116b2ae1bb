//! Crash-recovery hooks for rings shared between processes (`ipc://`).
//!
//! A process can die at any instruction — between claiming space and
//! publishing it, or between taking a record and releasing it. In a ring on the
//! heap that cannot happen without the whole ring dying too; in a shared
//! segment the survivors must finish what the dead process left half done, or
//! they wait forever. The ring cannot do that from its own state alone: a
//! multi-producer claim that was never published is an `EMPTY` header whose
//! length nobody knows, and a multi-consumer view that was never released is a
//! record nobody will mark `RELEASED`.
//!
//! So a tracked ring (`ipc://` only; `memory://` rings have no [`Tracker`] and
//! pay one predictable branch on the multi-side paths) writes down, in the
//! shared segment, what each operation is about to do:
//!
//! * **multi-producer claim**: before the CAS on `tail`, the producer stores
//!   `(pos, record size)` as an *intent* in one of its process's entries; after
//!   a successful CAS it marks the entry *held*; after publishing (commit or
//!   cancel) it clears the entry.
//! * **multi-consumer view**: before the CAS on `read`, `(pos)` as an intent;
//!   *held* after the CAS; cleared after the record is marked `RELEASED`.
//!
//! Single sides need no entries: their lock word holds the owner's process id,
//! and the state a dead owner leaves is recognisable (see
//! [`Ring::recover_single_producer`] / [`Ring::recover_single_consumer`]).
//!
//! The transport (`transport/ipc.rs`) decides which processes are dead and
//! calls the `recover_*` functions below for their entries and locks, one
//! recoverer at a time (it holds the segment's recovery lock).
//!
//! # Memory orderings
//!
//! Entry stores are `Release` and the recoverer's entry loads `Acquire`, and a
//! `Release` fence sits between a claim intent and the CAS on `tail`:
//!
//! * A recoverer that loads `tail` (Acquire) and finds it past `pos` sees the
//!   intent of whichever producer's CAS claimed `pos` (fence → CAS → Acquire
//!   load of a later value in the RMW chain of `tail`).
//! * A producer clears its entry (Release) only after publishing the record
//!   (Release store of its state), so a recoverer that sees the cleared entry
//!   (Acquire) also sees the published header: it never pads over a live
//!   record. Likewise a consumer clears its view entry only after the SeqCst
//!   store of `RELEASED`.
//! * A live entry whose intent is stale (its CAS failed) only makes the
//!   recoverer wait for a later pass (`Pending`); it is rewritten or cleared
//!   within a few instructions.

// Under loom there is no ipc:// transport to use these hooks.
#![cfg_attr(loom, allow(dead_code))]

use super::*;
use crate::sync::fence;
use crossbeam_utils::CachePadded;
use std::time::{Duration, Instant};

/// Sentinel for an untracked claim or record (heap rings, single sides).
pub(crate) const NO_TRACK: u32 = u32::MAX;
/// Entries per process for claims, and again for views: the most reservations
/// (and, separately, received views) one process can hold at once on a
/// multi-producer (multi-consumer) `ipc://` channel.
pub(crate) const ENTRIES: usize = 64;
/// Entry flag: written before the CAS.
pub(crate) const INTENT: u64 = 1;
/// Entry flag: the CAS succeeded; the position is this process's.
pub(crate) const HELD: u64 = 2;
/// Entry flag (view entries): the entry is about `HEAD_LOCK` at `pos` (the
/// multi-consumer free loop), not about a view.
pub(crate) const LOCK: u64 = 4;
const FLAG_BITS: u32 = 3;
/// How long a waiter sleeps on a tracked ring before it checks whether the
/// processes it waits for are still alive. This bounds recovery: a dead
/// holder's space is reclaimed within about this long after a survivor starts
/// waiting on it (or polling it).
pub(crate) const LIVENESS_INTERVAL: Duration = Duration::from_millis(100);

/// One tracked operation, in the shared segment.
#[repr(C)]
pub(crate) struct TrackEntry {
    /// Record position (claim: `tail` at the CAS; view: `read` at the CAS).
    pub pos: AtomicU64,
    /// 0 = free; otherwise `size << 3 | LOCK? | HELD? | INTENT` (size 0 for
    /// views; the record being freed for LOCK entries).
    pub word: AtomicU64,
}

/// What another process's entries say about a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Naming {
    /// No live entry names it.
    Nobody,
    /// A live entry names it as an intent (its CAS may or may not win).
    Intent,
    /// A live entry holds it.
    Held,
}

/// What a recovery step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing more to do for this entry; `dropped`: a message was discarded.
    Resolved { dropped: bool },
    /// Undecidable now (a live process is mid-operation on the position); retry later.
    Pending,
}

/// A process's entries of one kind. Entry `i < DEDICATED` belongs to the
/// thread holding thread slot `i` (the index its counters use, exclusive
/// among the process's live threads: `counters::thread_slot`), which takes
/// and frees it with plain loads and stores; the rest, and a thread's second
/// and later entries at once, come from the free-list `free` (bit i set =
/// entry i free), process-local.
///
/// Why: taking and freeing through `free` is a locked read-modify-write per
/// message, and the one after publishing a record made the sender wait for
/// its payload stores to reach the cache (the lines the receiver had just
/// read) before it could go on.
struct Pool {
    entries: NonNull<TrackEntry>,
    free: AtomicU64,
}

/// Entries of each pool that belong to one thread each (see [`Pool`]).
const DEDICATED: u32 = super::counters::THREAD_SLOTS as u32;

/// The entry this thread owns in every pool, if it holds a thread slot.
fn own_entry() -> Option<u32> {
    super::counters::thread_slot().map(|i| i as u32)
}

impl Pool {
    /// The bits of the entries handed out through `free`.
    const SHARED: u64 = u64::MAX << DEDICATED;

    fn acquire(&self) -> Option<u32> {
        // Only the holder of thread slot i takes entry i (and recovery only
        // touches dead processes' entries), so a plain load tells whether it
        // is free. (A guard may be released on another thread, or after the
        // slot's previous holder exited: it only ever stores 0.)
        if let Some(i) = own_entry() {
            if self.entry(i).word.load(Ordering::Relaxed) == 0 {
                return Some(i);
            }
        }
        let mut f = self.free.load(Ordering::Relaxed);
        loop {
            if f == 0 {
                return None;
            }
            let i = f.trailing_zeros();
            match self.free.compare_exchange_weak(
                f,
                f & !(1u64 << i),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(i),
                Err(actual) => f = actual,
            }
        }
    }

    #[inline]
    fn entry(&self, i: u32) -> &TrackEntry {
        debug_assert!((i as usize) < ENTRIES);
        // SAFETY: `entries` points to ENTRIES entries that live as long as the
        // tracker (see Tracker::new), and i < ENTRIES.
        unsafe { &*self.entries.as_ptr().add(i as usize) }
    }

    /// Clears entry `i` (Release: everything the operation did comes first)
    /// and returns it to the pool.
    fn done(&self, i: u32) {
        let e = self.entry(i);
        e.word.store(0, Ordering::Release);
        if i >= DEDICATED {
            self.free.fetch_or(1u64 << i, Ordering::Release);
        }
    }
}

/// A process's view of its own entries in a shared segment, plus the liveness
/// check the transport runs when a waiter has been idle for a while.
///
/// Senders use `claims`, receivers `views`, and each side writes its pool's
/// free-list word on every message: the pools, and the idle-poll counters
/// failing pollers write, each sit on cache lines of their own. (Side by
/// side they made every message on a multi-producer or multi-consumer
/// `ipc://` ring pull one line between the sender's and the receiver's CPU.)
pub(crate) struct Tracker {
    claims: CachePadded<Pool>,
    views: CachePadded<Pool>,
    liveness: CachePadded<Liveness>,
    check: Box<dyn Fn(&Ring) + Send + Sync>,
}

/// When the liveness check last ran; see [`Tracker::poll`].
struct Liveness {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last liveness check.
    last_check: AtomicU64,
    /// Idle polls since the clock was last read (see [`Tracker::poll`]).
    polls: AtomicU32,
}

// SAFETY: the entry pointers refer to shared memory that the tracker's owner
// keeps mapped; all access goes through atomics.
unsafe impl Send for Tracker {}
// SAFETY: as above.
unsafe impl Sync for Tracker {}

impl Tracker {
    /// # Safety
    /// `claims` and `views` each point to [`ENTRIES`] zeroed (or cleared)
    /// entries owned by this process, which stay mapped as long as the ring
    /// the tracker is installed in (`check` should hold what keeps them mapped).
    pub(crate) unsafe fn new(
        claims: NonNull<TrackEntry>,
        views: NonNull<TrackEntry>,
        check: Box<dyn Fn(&Ring) + Send + Sync>,
    ) -> Tracker {
        Tracker {
            claims: CachePadded::new(Pool {
                entries: claims,
                free: AtomicU64::new(Pool::SHARED),
            }),
            views: CachePadded::new(Pool {
                entries: views,
                free: AtomicU64::new(Pool::SHARED),
            }),
            liveness: CachePadded::new(Liveness {
                epoch: Instant::now(),
                last_check: AtomicU64::new(0),
                polls: AtomicU32::new(0),
            }),
            check,
        }
    }

    /// A non-blocking call found nothing to do. Reads the clock only every
    /// [`Tracker::POLLS_PER_CHECK`] such calls, so that a busy-polling
    /// receiver stays fast; then as [`Tracker::idle`].
    #[inline]
    fn poll(&self, ring: &Ring) {
        // Racy increment on purpose: an approximate count is enough.
        let n = self.liveness.polls.load(Ordering::Relaxed).wrapping_add(1);
        self.liveness.polls.store(n, Ordering::Relaxed);
        if n % Self::POLLS_PER_CHECK == 0 {
            self.idle(ring);
        }
    }

    const POLLS_PER_CHECK: u32 = 64;

    /// Runs the liveness check if none ran for [`LIVENESS_INTERVAL`].
    pub(crate) fn idle(&self, ring: &Ring) {
        let now =
            self.liveness.epoch.elapsed().as_millis() as u64 + LIVENESS_INTERVAL.as_millis() as u64;
        let last = self.liveness.last_check.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LIVENESS_INTERVAL.as_millis() as u64
            && self
                .liveness
                .last_check
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            (self.check)(ring);
        }
    }
}

// ----------------------------------------------------------------------
// Hooks called from the ring's hot paths. Each is a no-op on untracked rings.
// ----------------------------------------------------------------------

impl Ring {
    /// Installs the tracker (before the ring is shared with other threads).
    pub(crate) fn set_tracker(&mut self, t: Tracker) {
        // Crash recovery reasons about `head` as the consumer left it: publish
        // it after every record on tracked rings (no batching), and free
        // released records at once, one per HEAD_LOCK.
        self.head_batch = 0;
        self.free_batch = 0;
        self.track = Some(Box::new(t));
    }

    #[inline]
    pub(super) fn is_tracked(&self) -> bool {
        self.track.is_some()
    }

    /// Multi-producer: takes a claim entry. `None`: this process holds
    /// [`ENTRIES`] reservations already (reported like a full ring).
    #[inline]
    pub(super) fn track_claim_begin(&self) -> Option<u32> {
        match &self.track {
            None => Some(NO_TRACK),
            Some(t) => t.claims.acquire(),
        }
    }

    /// Multi-producer: records the intent to claim `[pos, pos + size)`. Must
    /// come right before the CAS on `tail`.
    #[inline]
    pub(super) fn track_claim_intent(&self, slot: u32, pos: u64, size: u64) {
        if slot == NO_TRACK {
            return;
        }
        if let Some(t) = &self.track {
            let e = t.claims.entry(slot);
            e.pos.store(pos, Ordering::Release);
            e.word.store(size << FLAG_BITS | INTENT, Ordering::Release);
            // The intent must be visible to anyone who sees the CAS's result
            // (the CAS itself is Relaxed).
            fence(Ordering::Release);
        }
    }

    /// Multi-producer: the CAS for the intent succeeded.
    #[inline]
    pub(super) fn track_claim_held(&self, slot: u32, size: u64) {
        if slot == NO_TRACK {
            return;
        }
        if let Some(t) = &self.track {
            t.claims
                .entry(slot)
                .word
                .store(size << FLAG_BITS | INTENT | HELD, Ordering::Release);
        }
    }

    /// Multi-producer: the claim was published (or never made): frees the entry.
    #[inline]
    pub(super) fn track_claim_done(&self, slot: u32) {
        if slot == NO_TRACK {
            return;
        }
        if let Some(t) = &self.track {
            t.claims.done(slot);
        }
    }

    /// Multi-consumer: takes a view entry (`None`: too many views held).
    #[inline]
    pub(super) fn track_view_begin(&self) -> Option<u32> {
        match &self.track {
            None => Some(NO_TRACK),
            Some(t) => t.views.acquire(),
        }
    }

    /// Multi-consumer: records the intent to take the record at `pos`. The
    /// CAS on `read` that follows is AcqRel, which orders this store first.
    #[inline]
    pub(super) fn track_view_intent(&self, slot: u32, pos: u64) {
        if slot == NO_TRACK {
            return;
        }
        if let Some(t) = &self.track {
            let e = t.views.entry(slot);
            e.pos.store(pos, Ordering::Release);
            e.word.store(INTENT, Ordering::Release);
        }
    }

    #[inline]
    pub(super) fn track_view_held(&self, slot: u32) {
        if slot == NO_TRACK {
            return;
        }
        if let Some(t) = &self.track {
            t.views
                .entry(slot)
                .word
                .store(INTENT | HELD, Ordering::Release);
        }
    }

    /// Multi-consumer free loop: records the intent to take `HEAD_LOCK` at
    /// `front` to free `[front, end)`. The CAS on `head` that follows is
    /// SeqCst, which orders these stores first.
    #[inline]
    pub(super) fn track_head_intent(&self, slot: u32, front: u64, end: u64) {
        if slot == NO_TRACK {
            return;
        }
        if let Some(t) = &self.track {
            let e = t.views.entry(slot);
            e.pos.store(front, Ordering::Release);
            e.word.store(
                (end - front) << FLAG_BITS | LOCK | INTENT,
                Ordering::Release,
            );
        }
    }

    /// The CAS taking `HEAD_LOCK` at `front` succeeded.
    #[inline]
    pub(super) fn track_head_locked(&self, slot: u32, front: u64, end: u64) {
        if slot == NO_TRACK {
            return;
        }
        if let Some(t) = &self.track {
            t.views.entry(slot).word.store(
                (end - front) << FLAG_BITS | LOCK | INTENT | HELD,
                Ordering::Release,
            );
        }
    }

    /// Multi-consumer: the record was released (or none taken): frees the entry.
    #[inline]
    pub(super) fn track_view_done(&self, slot: u32) {
        if slot == NO_TRACK {
            return;
        }
        if let Some(t) = &self.track {
            t.views.done(slot);
        }
    }

    /// Tracked rings: whether a record of `len` payload bytes at `pos` lies
    /// inside the data area. A record read from shared memory is checked
    /// before its length is used, so a corrupted segment cannot make us read
    /// or write outside the mapping. Untracked rings trust their own memory.
    #[inline]
    pub(super) fn record_fits(&self, pos: u64, len: u32) -> bool {
        !self.is_tracked() || (pos & self.mask) + record_size(len as u64) <= self.capacity
    }

    /// Tracked rings: whether `[pos, end)` is a span of whole records that
    /// consumers have taken: inside the data area, and not past `read`.
    /// Checked before a length read from shared memory moves `head` or is
    /// zeroed.
    #[inline]
    pub(super) fn span_is_taken(&self, pos: u64, end: u64) -> bool {
        end > pos
            && end - pos <= self.capacity
            && (pos & self.mask) + (end - pos) <= self.capacity
            && end <= self.ctrl().consumer.0.read.load(Ordering::Acquire)
    }

    /// Tracked rings: a payload length read back from shared memory for a
    /// record this process holds, cut to what fits in the data area after
    /// `pos` (a process that rewrote the header meanwhile must not make a
    /// guard's slice run past the mapping). Untracked rings: `len`.
    #[inline(always)]
    pub(super) fn fit_len(&self, pos: u64, len: u32) -> u32 {
        if !self.is_tracked() {
            return len;
        }
        let room = self.capacity - (pos & self.mask) - HEADER_SIZE;
        (len as u64).min(room) as u32
    }

    /// A record or position read from shared memory is out of bounds: the
    /// segment is corrupt. Stops the ring for every process (`stopped` =
    /// [`STOPPED_CORRUPT`]), so that calls fail with
    /// [`Ring::stopped_error`] instead of reading garbage.
    #[cold]
    pub(crate) fn corrupt(&self) {
        self.ctrl()
            .flags
            .0
            .stopped
            .store(STOPPED_CORRUPT, Ordering::SeqCst);
        self.stop();
    }

    /// Called after each bounded sleep and where a side lock is taken: runs
    /// the liveness check at most every [`LIVENESS_INTERVAL`].
    #[inline]
    pub(crate) fn track_idle(&self) {
        if let Some(t) = &self.track {
            t.idle(self);
        }
    }

    /// Called where a send or receive found the ring full or empty: as
    /// [`Ring::track_idle`], looking at the clock only every few calls.
    #[inline]
    pub(crate) fn track_poll(&self) {
        if let Some(t) = &self.track {
            t.poll(self);
        }
    }

    /// The longest a waiter may sleep before it should call [`Ring::track_idle`].
    #[inline]
    pub(crate) fn bound_sleep(&self, timeout: Option<Duration>) -> Option<Duration> {
        if self.is_tracked() {
            Some(timeout.map_or(LIVENESS_INTERVAL, |t| t.min(LIVENESS_INTERVAL)))
        } else {
            timeout
        }
    }

    // ------------------------------------------------------------------
    // Recovery (the caller holds the segment's recovery lock)
    // ------------------------------------------------------------------

    /// Reads a claim or view entry: `(pos, size, flags)`, or `None` when free.
    pub(crate) fn read_entry(e: &TrackEntry) -> Option<(u64, u64, u64)> {
        let w = e.word.load(Ordering::Acquire);
        if w == 0 {
            return None;
        }
        let pos = e.pos.load(Ordering::Acquire);
        Some((pos, w >> FLAG_BITS, w & (INTENT | HELD | LOCK)))
    }

    /// The single-producer lock's owner (0: free). Multi-producer rings: 0.
    pub(crate) fn producer_lock_owner(&self) -> u32 {
        if self.multi_producer {
            0
        } else {
            self.ctrl().producer.0.lock.load(Ordering::Acquire)
        }
    }

    /// The single-consumer lock's owner (0: free). Multi-consumer rings: 0.
    pub(crate) fn consumer_lock_owner(&self) -> u32 {
        if self.multi_consumer {
            0
        } else {
            self.ctrl().consumer.0.lock.load(Ordering::Acquire)
        }
    }

    /// The single producer `owner` is dead. If it died between moving `tail`
    /// and publishing its record (the last one before `tail`), that record is
    /// turned into padding (dropped). Then the lock is freed. Returns the
    /// number of messages dropped.
    pub(crate) fn recover_single_producer(&self, owner: u32) -> std::result::Result<u64, String> {
        let p = &self.ctrl().producer.0;
        if self.multi_producer || p.lock.load(Ordering::Acquire) != owner {
            return Ok(0);
        }
        // Nobody writes records while the dead owner holds the lock, so the
        // headers in [read, tail) are stable (consumers only add RELEASED).
        let tail = p.tail.load(Ordering::Acquire);
        let mut r = self.ctrl().consumer.0.read.load(Ordering::Acquire);
        let mut dropped = 0;
        let mut steps = 0u64;
        while r < tail {
            steps += 1;
            if r % RECORD_ALIGN != 0 || steps > self.capacity / HEADER_SIZE {
                return Err(format!("record position {r} is not a record boundary"));
            }
            let h = self.header(r);
            let st = h.state.load(Ordering::Acquire);
            let len = h.len.load(Ordering::Relaxed);
            let size = record_size(len as u64);
            if (r & self.mask) + size > self.capacity || r + size > tail {
                return Err(format!(
                    "record at {r} of {len} bytes runs past the ring (tail {tail})"
                ));
            }
            if st & (state::MESSAGE | state::PADDING) == 0 {
                // The dead producer's half-finished commit: its length is set
                // and `tail` is right after it. The slot after it was zeroed
                // before `tail` moved.
                if r + size != tail {
                    return Err(format!(
                        "unpublished record at {r} is not the last one before tail {tail}"
                    ));
                }
                self.publish_padding(r, size, false);
                self.wake_if_sleeping(Direction::Data);
                dropped = 1;
                break;
            }
            r += size;
        }
        let _ = p
            .lock
            .compare_exchange(owner, 0, Ordering::Release, Ordering::Relaxed);
        self.wake_if_sleeping(Direction::Space);
        Ok(dropped)
    }

    /// The single consumer `owner` is dead. Whatever it had taken (`[head,
    /// read)`: the view it held, or a padding record it was freeing) is freed,
    /// then the lock. Returns the number of messages dropped.
    pub(crate) fn recover_single_consumer(&self, owner: u32) -> std::result::Result<u64, String> {
        let c = &self.ctrl().consumer.0;
        if self.multi_consumer || c.lock.load(Ordering::Acquire) != owner {
            return Ok(0);
        }
        let head = self.ctrl().head.0.load(Ordering::Acquire);
        let read = c.read.load(Ordering::Acquire);
        if head > read || read - head > self.capacity || (read - head) % RECORD_ALIGN != 0 {
            return Err(format!(
                "consumer positions are inconsistent (head {head}, read {read})"
            ));
        }
        let mut dropped = 0;
        if head < read {
            if self.header(head).state.load(Ordering::Acquire) & state::MESSAGE != 0 {
                dropped = 1;
            }
            if self.multi_producer {
                self.zero_span(head, read);
            }
            self.ctrl().head.0.store(read, Ordering::Release);
            self.wake_if_sleeping(Direction::Space);
        }
        let _ = c
            .lock
            .compare_exchange(owner, 0, Ordering::Release, Ordering::Relaxed);
        Ok(dropped)
    }

    /// Zeroes `[a, b)`, which may cross the end of the data area once.
    fn zero_span(&self, a: u64, b: u64) {
        let first = (b - a).min(self.capacity - (a & self.mask));
        if first > 0 {
            self.zero(a, a + first);
        }
        if a + first < b {
            self.zero(a + first, b);
        }
    }

    /// A dead process's claim entry `(pos, size, flags)`. `others(pos)` says
    /// whether a live process's entry names `pos`; it must read the entries
    /// with Acquire (it is called after `tail` is loaded and before the header).
    pub(crate) fn recover_claim(
        &self,
        pos: u64,
        size: u64,
        flags: u64,
        others: &dyn Fn(u64) -> Naming,
    ) -> std::result::Result<Outcome, String> {
        let tail = self.ctrl().producer.0.tail.load(Ordering::Acquire);
        let head = self.ctrl().head.0.load(Ordering::Acquire) & !HEAD_LOCK;
        let read = &self.ctrl().consumer.0.read;
        // `read` only passes published records: a claim before it was
        // published (and consumed) whatever its entry says.
        if pos < head || pos >= tail || pos < read.load(Ordering::SeqCst) {
            // Already consumed (maybe being freed), or the CAS never happened.
            return Ok(Outcome::Resolved { dropped: false });
        }
        match others(pos) {
            // Our entry was a stale intent: a live producer owns `pos`.
            Naming::Held => return Ok(Outcome::Resolved { dropped: false }),
            Naming::Intent => return Ok(Outcome::Pending),
            Naming::Nobody => {}
        }
        let h = self.header(pos);
        if h.state.load(Ordering::SeqCst) != state::EMPTY || read.load(Ordering::SeqCst) > pos {
            // Published: by the dead process before it died, or by whoever
            // really claimed `pos`. (EMPTY with `read` past `pos`: a live
            // consumer took it since we looked and is freeing it — it zeroes
            // the record before it moves `head`.)
            return Ok(Outcome::Resolved { dropped: false });
        }
        if size < HEADER_SIZE
            || size % RECORD_ALIGN != 0
            || (pos & self.mask) + size > self.capacity
            || pos + size > tail
            || pos % RECORD_ALIGN != 0
        {
            return Err(format!(
                "claim entry ({pos}, {size}) does not describe a record before tail {tail}"
            ));
        }
        // Nobody alive can publish `pos`: we are the only writer now.
        self.publish_padding(pos, size, false);
        self.wake_if_sleeping(Direction::Data);
        Ok(Outcome::Resolved {
            dropped: flags & HELD != 0,
        })
    }

    /// A dead process's view entry at `pos` (see [`Ring::recover_claim`]).
    pub(crate) fn recover_view(
        &self,
        pos: u64,
        others: &dyn Fn(u64) -> Naming,
    ) -> std::result::Result<Outcome, String> {
        let read = self.ctrl().consumer.0.read.load(Ordering::Acquire);
        let head = self.ctrl().head.0.load(Ordering::Acquire) & !HEAD_LOCK;
        if pos < head || pos >= read {
            return Ok(Outcome::Resolved { dropped: false });
        }
        match others(pos) {
            Naming::Held => return Ok(Outcome::Resolved { dropped: false }),
            Naming::Intent => return Ok(Outcome::Pending),
            Naming::Nobody => {}
        }
        if pos % RECORD_ALIGN != 0 {
            return Err(format!("view entry {pos} is not a record boundary"));
        }
        let st = self.header(pos).state.load(Ordering::Acquire);
        if st & state::RELEASED != 0 {
            return Ok(Outcome::Resolved { dropped: false });
        }
        if st & (state::MESSAGE | state::PADDING) == 0 {
            // A live consumer freeing the record (released, now zeroed under
            // HEAD_LOCK, `head` not yet moved over it): look again later.
            if self.ctrl().head.0.load(Ordering::SeqCst) & HEAD_LOCK != 0 {
                return Ok(Outcome::Pending);
            }
            return Err(format!(
                "record at {pos} was taken but is not a message (state {st})"
            ));
        }
        let len = self.header(pos).len.load(Ordering::Relaxed);
        if !self.span_is_taken(pos, pos + record_size(len as u64)) {
            return Err(format!(
                "record at {pos} of {len} bytes runs past the ring or past read {read}"
            ));
        }
        self.with_view_slot(|slot| self.release_multi(pos, len, slot));
        Ok(Outcome::Resolved {
            dropped: st & state::MESSAGE != 0,
        })
    }

    /// Runs `f` with one of our view entries (so that our own death in `f`
    /// is recoverable too), or untracked if none is free.
    fn with_view_slot(&self, f: impl FnOnce(u32)) {
        let slot = self.track_view_begin().unwrap_or(NO_TRACK);
        f(slot);
        self.track_view_done(slot);
    }

    /// A dead process's LOCK entry: it may have died holding `HEAD_LOCK` at
    /// `front` while freeing `[front, front + size)`. `others(front)` looks
    /// at live processes' LOCK entries. The caller has checked rival dead
    /// entries (one marked held wins; otherwise their sizes agree).
    pub(crate) fn recover_head_lock(
        &self,
        front: u64,
        size: u64,
        others: &dyn Fn(u64) -> Naming,
    ) -> std::result::Result<Outcome, String> {
        let head = &self.ctrl().head.0;
        if head.load(Ordering::SeqCst) != front | HEAD_LOCK {
            // Not locked at `front`: the free finished (or never started).
            return Ok(Outcome::Resolved { dropped: false });
        }
        match others(front) {
            Naming::Held => return Ok(Outcome::Resolved { dropped: false }),
            Naming::Intent => return Ok(Outcome::Pending),
            Naming::Nobody => {}
        }
        if size < HEADER_SIZE
            || size % RECORD_ALIGN != 0
            || front % RECORD_ALIGN != 0
            || !self.span_is_taken(front, front + size)
        {
            return Err(format!(
                "head-lock entry ({front}, {size}) does not describe a record"
            ));
        }
        // The holder is dead and nobody else can take the lock: finish its
        // free (zeroing again is harmless), unlock, and go on freeing.
        if self.multi_producer {
            self.zero(front, front + size);
        }
        head.store(front + size, Ordering::SeqCst);
        self.with_view_slot(|slot| self.free_released(slot));
        self.wake_if_sleeping(Direction::Space);
        Ok(Outcome::Resolved { dropped: false })
    }

    /// Checks the control block's positions after attaching (they are read
    /// from a file another process wrote).
    pub(crate) fn check_positions(&self) -> std::result::Result<(), String> {
        let head = self.ctrl().head.0.load(Ordering::Acquire) & !HEAD_LOCK;
        let read = self.ctrl().consumer.0.read.load(Ordering::Acquire);
        let tail = self.ctrl().producer.0.tail.load(Ordering::Acquire);
        let aligned = |p: u64| p % RECORD_ALIGN == 0;
        if !(aligned(head) && aligned(read) && aligned(tail)) {
            return Err(format!(
                "positions are not {RECORD_ALIGN}-byte aligned (head {head}, read {read}, tail {tail})"
            ));
        }
        // `read` may pass `tail` by one padding record when a single producer
        // died between publishing wrap padding and moving `tail`.
        if head > read || read.max(tail) - head > self.capacity {
            return Err(format!(
                "positions are inconsistent (head {head}, read {read}, tail {tail}, ring {} bytes)",
                self.capacity
            ));
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! Deterministic tests of the recovery steps: each builds the exact state
    //! a process leaves when it dies at one point of the protocol, then checks
    //! that recovery lets the survivors go on. (The kill -9 tests in
    //! tests/ipc.rs hit these states only by chance.)
    use super::*;

    struct Entries(Box<[TrackEntry]>);

    fn entries() -> Entries {
        Entries(
            (0..ENTRIES)
                .map(|_| TrackEntry {
                    pos: AtomicU64::new(0),
                    word: AtomicU64::new(0),
                })
                .collect(),
        )
    }

    /// A heap ring with a tracker over heap entries (`dead` plays the dead
    /// process's table, the tracker's own are the survivor's).
    fn ring(mode: Mode) -> (Ring, &'static Entries, &'static Entries) {
        let mut r = Ring::new_heap(1024, mode).unwrap();
        let claims: &'static Entries = Box::leak(Box::new(entries()));
        let views: &'static Entries = Box::leak(Box::new(entries()));
        // SAFETY: the entries are leaked, so they outlive the ring.
        let t = unsafe {
            Tracker::new(
                NonNull::from(&claims.0[0]),
                NonNull::from(&views.0[0]),
                Box::new(|_: &Ring| {}),
            )
        };
        r.set_tracker(t);
        (r, claims, views)
    }

    #[test]
    fn multi_consumer_tracked_rings_move_head_per_message() {
        for (mode, per_message) in [
            (Mode::Spsc, false),
            (Mode::Mpsc, false),
            (Mode::Spmc, true),
            (Mode::Mpmc, true),
        ] {
            assert_eq!(
                ring(mode).0.head_moves_per_message(),
                per_message,
                "{mode:?}"
            );
        }
    }

    #[test]
    fn a_thread_claims_with_its_own_entry_first_then_from_the_shared_ones() {
        // A fresh thread: the index it draws is its own for good.
        std::thread::spawn(|| {
            let (r, _, _) = ring(Mode::Mpmc);
            let mine = r.track_claim_begin().unwrap();
            if let Some(own) = own_entry() {
                assert_eq!(mine, own, "its dedicated entry");
                // Not taken yet: the entry only counts as held once written.
                r.track_claim_intent(mine, 0, 64);
            }
            let mut held = vec![mine];
            while let Some(e) = r.track_claim_begin() {
                assert!(e >= DEDICATED, "shared entries only: {e}");
                r.track_claim_intent(e, 0, 64);
                held.push(e);
            }
            // (A thread beyond the first DEDICATED has no entry of its own.)
            let own = usize::from(own_entry().is_some());
            let most = own + ENTRIES - DEDICATED as usize;
            assert_eq!(held.len(), most, "its own entry + the shared ones");
            for &e in &held {
                r.track_claim_done(e);
            }
            // Everything came back, the own entry first again.
            assert_eq!(r.track_claim_begin(), Some(mine));
            r.track_claim_done(mine);
            let again: Vec<u32> = std::iter::from_fn(|| {
                let e = r.track_claim_begin()?;
                r.track_claim_intent(e, 0, 64);
                Some(e)
            })
            .collect();
            assert_eq!(again.len(), most);
            // Views come from a pool of their own.
            assert!(r.track_view_begin().is_some());
        })
        .join()
        .unwrap();
    }

    fn send(r: &Ring, data: &[u8]) {
        let c = r.try_claim(data.len()).unwrap();
        // SAFETY: the claim owns data.len() bytes.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), r.payload_ptr(c.pos), data.len()) };
        assert!(r.commit(c, 1));
    }

    fn recv(r: &Ring) -> Option<Vec<u8>> {
        let rec = r.try_read(u32::MAX).unwrap()?;
        // SAFETY: the record is ours until released.
        let v = unsafe { std::slice::from_raw_parts(r.payload_ptr(rec.pos), rec.len() as usize) }
            .to_vec();
        r.release(rec);
        Some(v)
    }

    fn nobody(_: u64) -> Naming {
        Naming::Nobody
    }

    #[test]
    fn dead_multi_producer_claim_becomes_padding() {
        for mode in [Mode::Mpsc, Mode::Mpmc] {
            let (r, claims, _) = ring(mode);
            send(&r, b"before");
            // The dead producer: claimed (entry held) and never published.
            let dead = r.try_claim(5).unwrap();
            let (pos, size, flags) = Ring::read_entry(&claims.0[dead.track() as usize]).unwrap();
            assert_eq!(
                (pos, size, flags),
                (dead.pos, record_size(5), INTENT | HELD)
            );
            let _ = dead; // never committed / released: the process "dies" here
            send(&r, b"after");
            assert_eq!(recv(&r).unwrap(), b"before");
            assert_eq!(recv(&r), None, "{mode:?}: blocked behind the dead claim");
            assert_eq!(
                r.recover_claim(pos, size, flags, &nobody),
                Ok(Outcome::Resolved { dropped: true })
            );
            assert_eq!(recv(&r).unwrap(), b"after", "{mode:?}");
            // A second pass finds nothing to do.
            assert_eq!(
                r.recover_claim(pos, size, flags, &nobody),
                Ok(Outcome::Resolved { dropped: false })
            );
            // Space is reused correctly for many laps afterwards.
            for i in 0..500u32 {
                send(&r, &i.to_le_bytes());
                assert_eq!(recv(&r).unwrap(), i.to_le_bytes());
            }
        }
    }

    #[test]
    fn live_claims_are_never_padded() {
        let (r, claims, _) = ring(Mode::Mpsc);
        let live = r.try_claim(5).unwrap();
        let (pos, size, flags) = Ring::read_entry(&claims.0[live.track() as usize]).unwrap();
        let held = |p: u64| {
            if p == pos {
                Naming::Held
            } else {
                Naming::Nobody
            }
        };
        let intent = |p: u64| {
            if p == pos {
                Naming::Intent
            } else {
                Naming::Nobody
            }
        };
        // A dead process's stale intent at the same position.
        assert_eq!(
            r.recover_claim(pos, size, INTENT, &held),
            Ok(Outcome::Resolved { dropped: false })
        );
        assert_eq!(
            r.recover_claim(pos, size, INTENT, &intent),
            Ok(Outcome::Pending)
        );
        let _ = flags;
        assert!(r.commit(live, 1));
        assert_eq!(recv(&r).unwrap().len(), 5);
    }

    #[test]
    fn dead_multi_consumer_view_is_released() {
        for mode in [Mode::Spmc, Mode::Mpmc] {
            let (r, _, views) = ring(mode);
            for i in 0..3u8 {
                send(&r, &[i; 100]);
            }
            // The dead consumer holds the first record.
            let held = r.try_read(u32::MAX).unwrap().unwrap();
            let (pos, _, flags) = Ring::read_entry(&views.0[held.track() as usize]).unwrap();
            assert_eq!((pos, flags), (held.pos, INTENT | HELD));
            let _ = held; // never committed / released: the process "dies" here
            assert_eq!(recv(&r).unwrap(), [1; 100]);
            assert_eq!(recv(&r).unwrap(), [2; 100]);
            // Nothing is freed behind the held record: the ring fills up.
            let mut n = 0;
            while r.try_claim(100).is_some_and(|c| {
                assert!(r.commit(c, 1));
                true
            }) {
                n += 1;
            }
            assert!(n < 10, "{mode:?}");
            assert_eq!(
                r.recover_view(pos, &nobody),
                Ok(Outcome::Resolved { dropped: true })
            );
            while recv(&r).is_some() {}
            assert_eq!(
                r.ctrl().head.0.load(Ordering::SeqCst),
                r.ctrl().producer.0.tail.load(Ordering::SeqCst)
            );
        }
    }

    #[test]
    fn dead_holder_of_the_head_lock_is_taken_over() {
        let (r, _, views) = ring(Mode::Mpmc);
        send(&r, &[1; 40]);
        send(&r, &[2; 40]);
        let a = r.try_read(u32::MAX).unwrap().unwrap();
        let b = r.try_read(u32::MAX).unwrap().unwrap();
        r.release(b); // marked, not freed: `a` is in front
                      // The dead consumer released `a` and died inside the free loop,
                      // holding HEAD_LOCK at `a` (entry LOCK|HELD), half-way through zeroing.
        let size = record_size(a.len() as u64);
        r.track_head_intent(a.track(), a.pos, a.pos + size);
        r.header(a.pos)
            .state
            .fetch_or(state::RELEASED, Ordering::SeqCst);
        r.ctrl().head.0.store(a.pos | HEAD_LOCK, Ordering::SeqCst);
        r.track_head_locked(a.track(), a.pos, a.pos + size);
        r.zero(a.pos, a.pos + HEADER_SIZE);
        let (pos, sz, flags) = Ring::read_entry(&views.0[a.track() as usize]).unwrap();
        assert_eq!((pos, sz, flags), (a.pos, size, LOCK | INTENT | HELD));
        let _ = a; // never committed / released: the process "dies" here
        assert_eq!(
            r.ctrl().head.0.load(Ordering::SeqCst),
            pos | HEAD_LOCK,
            "wedged"
        );
        assert_eq!(
            r.recover_head_lock(pos, sz, &nobody),
            Ok(Outcome::Resolved { dropped: false })
        );
        // Both records are freed: the lock holder's and the released one behind it.
        assert_eq!(
            r.ctrl().head.0.load(Ordering::SeqCst),
            r.ctrl().producer.0.tail.load(Ordering::SeqCst)
        );
        send(&r, &[3; 400]);
        assert_eq!(recv(&r).unwrap(), [3; 400]);
    }

    #[test]
    fn dead_single_consumer_view_is_freed_and_lock_released() {
        for mode in [Mode::Spsc, Mode::Mpsc] {
            let (r, _, _) = ring(mode);
            assert!(r.try_lock_consumer(4242));
            send(&r, &[1; 300]);
            send(&r, &[2; 300]);
            let held = r.try_read(u32::MAX).unwrap().unwrap();
            let _ = held; // never committed / released: the process "dies" here
            assert!(!r.try_lock_consumer(7));
            assert_eq!(r.consumer_lock_owner(), 4242);
            assert_eq!(r.recover_single_consumer(4242), Ok(1));
            assert_eq!(r.consumer_lock_owner(), 0);
            assert_eq!(recv(&r).unwrap(), [2; 300], "{mode:?}");
            for i in 0..300u32 {
                send(&r, &i.to_le_bytes());
                assert_eq!(recv(&r).unwrap(), i.to_le_bytes());
            }
        }
    }

    #[test]
    fn dead_single_producer_half_commit_becomes_padding() {
        for mode in [Mode::Spsc, Mode::Spmc] {
            let (r, _, _) = ring(mode);
            assert!(r.try_lock_producer(4242));
            send(&r, b"one");
            // Died in commit after moving `tail`, before publishing the state.
            let c = r.try_claim(10).unwrap();
            let rec = record_size(10);
            let h = r.header(c.pos);
            h.len.store(10, Ordering::Relaxed);
            r.header(c.pos + rec)
                .state
                .store(state::EMPTY, Ordering::Relaxed);
            r.ctrl()
                .producer
                .0
                .tail
                .store(c.pos + rec, Ordering::Relaxed);
            assert_eq!(recv(&r).unwrap(), b"one");
            assert_eq!(recv(&r), None);
            assert_eq!(r.recover_single_producer(4242), Ok(1));
            assert_eq!(r.producer_lock_owner(), 0);
            assert!(r.try_lock_producer(7));
            send(&r, b"two");
            assert_eq!(recv(&r).unwrap(), b"two", "{mode:?}");
            // A producer that died holding an uncommitted claim: nothing to drop.
            let _ = r.try_claim(10).unwrap();
            assert_eq!(r.recover_single_producer(7), Ok(0));
            assert!(r.try_lock_producer(8));
            send(&r, b"three");
            assert_eq!(recv(&r).unwrap(), b"three");
        }
    }

    /// A live single consumer of a multi-producer ring between zeroing a
    /// record it freed and moving `head` over it, while a dead producer's
    /// entry (published, never cleared) still names the record: recovery
    /// must not write padding into the space being freed.
    #[test]
    fn recovery_of_a_claim_leaves_a_record_being_freed_alone() {
        let (r, claims, _) = ring(Mode::Mpsc);
        let c = r.try_claim(40).unwrap();
        let (pos, size, flags) = Ring::read_entry(&claims.0[c.track() as usize]).unwrap();
        assert!(r.commit(c, 1)); // published; the "dead" entry is the copy read above
        let rec = r.try_read(u32::MAX).unwrap().unwrap();
        assert_eq!(rec.pos, pos);
        // The consumer's free, interrupted after the zeroing.
        r.zero(pos, pos + size);
        assert_eq!(
            r.recover_claim(pos, size, flags, &nobody),
            Ok(Outcome::Resolved { dropped: false })
        );
        assert_eq!(r.header(pos).state.load(Ordering::SeqCst), state::EMPTY);
        r.ctrl().head.0.store(pos + size, Ordering::SeqCst);
        send(&r, b"next");
        assert_eq!(recv(&r).unwrap(), b"next");
    }

    /// A dead consumer's stale view intent names a record that a live
    /// consumer took, released and is freeing under HEAD_LOCK (zeroed,
    /// `head` not yet moved): recovery waits instead of calling the segment
    /// corrupt.
    #[test]
    fn recovery_of_a_view_waits_for_a_live_free() {
        let (r, _, _) = ring(Mode::Mpmc);
        send(&r, &[7; 40]);
        let rec = r.try_read(u32::MAX).unwrap().unwrap();
        let (pos, size) = (rec.pos, record_size(rec.len() as u64));
        // The live consumer releases and frees: RELEASED, HEAD_LOCK, zeroed.
        r.header(pos)
            .state
            .fetch_or(state::RELEASED, Ordering::SeqCst);
        r.ctrl().head.0.store(pos | HEAD_LOCK, Ordering::SeqCst);
        r.zero(pos, pos + size);
        assert_eq!(r.recover_view(pos, &nobody), Ok(Outcome::Pending));
        assert!(!r.is_stopped());
        r.ctrl().head.0.store(pos + size, Ordering::SeqCst);
        assert_eq!(
            r.recover_view(pos, &nobody),
            Ok(Outcome::Resolved { dropped: false })
        );
        let _ = rec;
        send(&r, b"next");
        assert_eq!(recv(&r).unwrap(), b"next");
    }

    #[test]
    fn corrupt_lengths_stop_the_ring_instead_of_reading_out_of_bounds() {
        for mode in [Mode::Spsc, Mode::Mpmc] {
            let (r, _, _) = ring(mode);
            send(&r, b"x");
            r.header(0).len.store(u32::MAX, Ordering::Relaxed);
            assert!(matches!(r.try_read(u32::MAX), Ok(None)));
            assert!(r.is_stopped(), "{mode:?}");
        }
    }
}
