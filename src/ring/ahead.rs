//! Asking for cache lines before they are needed.
//!
//! Every record crosses cores twice: the consumer's reads pull the lines the
//! producer wrote, and a lap later the producer's writes take them back from
//! the consumer's cache. Each side can overlap those transfers with the copy
//! it is doing instead of meeting them line by line inside it:
//!
//! * **write-ahead** (single-producer rings, records of [`WRITE_AHEAD_MIN`]
//!   bytes and more): a claim asks for ownership (`prefetchw`) of the next
//!   record's lines — assuming it is as long as this one, up to
//!   [`WRITE_AHEAD`] bytes — while the caller fills this one. Only lines the
//!   producer already knows to be free (before its cached `head` plus the
//!   capacity), so it never takes a line a consumer still reads. Measured
//!   with 4 KiB records (SPSC, copy or reservation): 235 → 191 ns per
//!   message; 16 KiB: 870 → 800 ns; nothing to gain below 1 KiB, where the
//!   hardware's own prefetch keeps up, and a further 0.9 ns per message to
//!   lose. Further ahead is worse (16 KiB records with the whole next record
//!   asked for: 800 → 920 ns; the requests crowd out the copy's own). A read
//!   prefetch in its place made 4 KiB messages three times slower: the lines
//!   arrive shared and the stores must fetch them once more.
//! * **read-ahead** (single-producer single-consumer rings, copying
//!   receives): see [`Ring::read_ahead`].

use super::layout::SLACK;
use super::Ring;
use crate::sync::Ordering;

/// How far ahead of a trailing consumer to read (see [`Ring::read_ahead`]).
pub(super) const READ_AHEAD: u64 = 1024;

/// Receives without finding the ring empty before a consumer reads ahead.
pub(super) const READ_AHEAD_AFTER: u32 = 64;

/// Records (header included) shorter than this claim no lines ahead.
pub(super) const WRITE_AHEAD_MIN: u64 = 1024;

/// At most this many bytes of the next record are asked for.
pub(super) const WRITE_AHEAD: u64 = 8192;

const LINE: u64 = 64;

/// The lines a claim that ends at `end` with a record of `rec` bytes asks
/// for: from the line after the one holding the next header (that line the
/// producer writes at commit anyway, and an idle consumer polls it), to the
/// end of a next record as long as this one (at most [`WRITE_AHEAD`]),
/// clamped to `free_end`, the end of the space known to be free. Empty for
/// records under [`WRITE_AHEAD_MIN`] bytes.
pub(super) fn write_ahead_lines(end: u64, rec: u64, free_end: u64) -> std::ops::Range<u64> {
    if rec < WRITE_AHEAD_MIN {
        return 0..0;
    }
    let first = (end & !(LINE - 1)) + LINE;
    let last = (end + rec.min(WRITE_AHEAD)).min(free_end);
    first..last.max(first)
}

/// Whether this CPU has `prefetchw`. (Intel CPUs before Broadwell that lack
/// it execute it as a no-op, but some older x86-64 CPUs raise #UD.)
#[cfg(all(target_arch = "x86_64", not(loom)))]
pub(super) fn cpu_prefetches_for_write() -> bool {
    use std::arch::x86_64::__cpuid;
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 0x8000_0000 gives the
    // highest extended leaf, checked before leaf 0x8000_0001 is asked.
    // (Safe functions on newer compilers, hence the allow.)
    #[allow(unused_unsafe)]
    unsafe {
        __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
    }
}

#[cfg(not(all(target_arch = "x86_64", not(loom))))]
#[cfg_attr(loom, allow(dead_code))]
pub(super) fn cpu_prefetches_for_write() -> bool {
    false
}

impl Ring {
    /// Single-producer rings, after claiming a `rec`-byte record that ends at
    /// `end`: asks for ownership of the lines the next claim will probably
    /// write (see the module docs and [`write_ahead_lines`]).
    #[inline(always)]
    pub(super) fn write_ahead(&self, end: u64, rec: u64) {
        if !self.writes_ahead || rec < WRITE_AHEAD_MIN {
            return;
        }
        // Relaxed: our own line, and only a bound for a hint; `head` only
        // grows, so a stale value only asks for fewer lines.
        let head = self.ctrl().producer.0.head_cache.load(Ordering::Relaxed);
        let free_end = head + self.capacity - SLACK;
        for line in write_ahead_lines(end, rec, free_end).step_by(LINE as usize) {
            self.prefetch_for_write(line);
        }
    }

    /// Single-producer single-consumer rings, copying receive of the record
    /// at `pos`: once the consumer has gone [`READ_AHEAD_AFTER`] receives
    /// without finding the ring empty, it trails the producer by a backlog,
    /// and asks for the line [`READ_AHEAD`] bytes on, so that the next
    /// records' cross-core transfers overlap this one's copy instead of
    /// following it one by one (each header gives the next record's
    /// position, a chain of misses). Not while it runs right behind the
    /// producer: there the line may not be written yet, and taking it early
    /// makes the producer fetch it back.
    #[inline(always)]
    pub(crate) fn read_ahead(&self, pos: u64) {
        if !self.reads_ahead() {
            return;
        }
        let streak = &self.ctrl().consumer.0.streak;
        let s = streak.load(Ordering::Relaxed);
        if s >= READ_AHEAD_AFTER {
            self.prefetch(pos + READ_AHEAD);
        } else {
            streak.store(s + 1, Ordering::Relaxed);
        }
    }

    /// Whether copying receives read ahead ([`Ring::read_ahead`]): only with
    /// a single producer and a single consumer.
    #[inline(always)]
    pub(super) fn reads_ahead(&self) -> bool {
        !self.multi_producer && !self.multi_consumer
    }

    /// Asks for the line at `pos` (a hint: never faults, changes nothing).
    /// Used ahead of the walk in `released_run` — a chain of dependent loads
    /// (each length gives the next position), where without it every record
    /// costs a full miss in turn; only lines before `read` (consumed records,
    /// which producers cannot be writing) are asked for there — and by
    /// [`Ring::read_ahead`].
    #[inline(always)]
    pub(super) fn prefetch(&self, pos: u64) {
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = self.data.as_ptr().wrapping_add((pos & self.mask) as usize) as *const i8;
            // SAFETY: a prefetch is a hint that never faults; the address is
            // inside the data area anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
        }
        #[cfg(not(all(target_arch = "x86_64", not(loom))))]
        let _ = pos;
    }

    /// Asks for the line at `pos` in the exclusive state, ready to be written.
    #[inline(always)]
    fn prefetch_for_write(&self, pos: u64) {
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        {
            let p = self.data.as_ptr().wrapping_add((pos & self.mask) as usize);
            // SAFETY: `prefetchw` is a hint: it never faults and changes no
            // memory or register (so `readonly`, `nostack`, flags kept). Only
            // executed when `cpu_prefetches_for_write` found it supported
            // (`writes_ahead`); the address is inside the data area anyway.
            // (Inline assembly: `_mm_prefetch::<_MM_HINT_ET0>` only becomes
            // `prefetchw` when the whole crate is built for such CPUs.)
            unsafe {
                std::arch::asm!(
                    "prefetchw [{}]",
                    in(reg) p,
                    options(nostack, preserves_flags, readonly)
                )
            };
        }
        #[cfg(not(all(target_arch = "x86_64", not(loom))))]
        let _ = pos;
    }
}
