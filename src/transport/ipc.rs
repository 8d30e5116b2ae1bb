//! `ipc://NAME`: a ring in a shared-memory segment, between processes.
//!
//! The segment is the file `/dev/shm/psyne-NAME` (mode 0600), mapped shared by
//! every process that opens the name. It holds a fixed header, a table of
//! attached processes, and then the very same ring `memory://` uses (its
//! control block and data area hold positions only, no pointers). See
//! `docs/IPC.md` for the byte layout, the recovery rules and their bounds.
//!
//! Cross-process coordination uses open-file-description locks (`F_OFD_SETLK`)
//! on bytes of the segment file, because the kernel drops them when a process
//! dies, whatever it was doing:
//!
//! * byte [`INIT_LOCK`]: held while a process creates, validates, attaches to,
//!   detaches from or repairs the segment — all of those are serialised;
//! * byte [`SLOT_LOCK_BASE`]` + i`: held by the process attached in slot `i`
//!   for as long as it stays attached. A slot marked live whose byte nobody
//!   holds belongs to a dead process.
//!
//! Per-process state lives in the slot: the process id (the token the ring's
//! single-side locks hold) and the crash-recovery entries of
//! `ring/track.rs`.

use super::Shared;
use crate::config::{ChannelType, Mode, MAX_NAME_LEN};
use crate::error::{Error, Result};
use crate::ring::layout::{align_up, capacity_for, Control, MAX_CAPACITY, MIN_CAPACITY};
use crate::ring::track::{Naming, Outcome, TrackEntry, Tracker, ENTRIES, HELD, LOCK};
use crate::ring::{region_size, Ring};
use crate::sync::{AtomicU32, AtomicU64, Ordering, Scope};
use memmap2::{MmapOptions, MmapRaw};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// `PSYNEIPC` as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"PSYNEIPC");
/// Bumped whenever the segment layout (header, slots, ring) changes.
pub(crate) const LAYOUT_VERSION: u32 = 5; // 2: block counters on their own line; 3: counters striped per thread; 4: encoded records (state ENCODED, codec counters); 5: persist flag, stop tail
/// Processes that can be attached to one segment at once.
pub(crate) const MAX_PROCS: usize = 64;
/// Offset of the slot table.
const SLOTS_OFFSET: usize = 4096;
/// Offset of the ring (control block, then data area): page aligned.
pub(crate) const RING_OFFSET: usize = align_up(
    (SLOTS_OFFSET + MAX_PROCS * std::mem::size_of::<ProcSlot>()) as u64,
    4096,
) as usize;
/// `Segment::slot` of a process that runs recovery without a slot of its own.
const NO_SLOT: usize = MAX_PROCS;
/// Lock byte serialising create/attach/detach/recovery.
pub(crate) const INIT_LOCK: i64 = 0;
/// Lock byte of slot 0; slot i uses `SLOT_LOCK_BASE + i`.
pub(crate) const SLOT_LOCK_BASE: i64 = 64;
/// How long an open waits for another process's create/attach/detach.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How long a detach waits for [`INIT_LOCK`] before it leaves without
/// removing the file: whoever holds the lock is attaching (and will use the
/// file), detaching (and removes it if nobody is left), or hostile; an
/// abandoned file is made anew by the next open.
const DETACH_WAIT: Duration = Duration::from_millis(100);

/// Header `state` values.
const SEG_INITIALISING: u32 = 0;
const SEG_READY: u32 = 1;

/// Slot `state` values.
pub(crate) const SLOT_FREE: u32 = 0;
pub(crate) const SLOT_LIVE: u32 = 1;
/// Its process died; some of its entries could not be resolved yet.
pub(crate) const SLOT_DEAD: u32 = 2;

/// The fixed header at offset 0. Every field is read with an atomic load
/// because other processes may write the segment at any time.
#[repr(C)]
pub(crate) struct SegmentHeader {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    /// `SEG_INITIALISING` until the creator has written everything.
    pub state: AtomicU32,
    /// Offset of the ring (== RING_OFFSET).
    pub ring_offset: AtomicU64,
    /// Length of the whole file.
    pub total_size: AtomicU64,
    /// Data-area bytes (power of two).
    pub capacity: AtomicU64,
    pub mode: AtomicU32,
    pub channel_type: AtomicU32,
    pub creator_pid: AtomicU32,
    pub max_procs: AtomicU32,
    pub entries_per_slot: AtomicU32,
    /// Bytes of the ring's control block (`size_of::<Control>()`), so that
    /// libraries whose ring layout differs refuse each other's segments.
    pub control_size: AtomicU32,
    /// Messages dropped by crash recovery (a dead producer's unfinished
    /// reservation, a dead consumer's unreleased view).
    pub dropped: AtomicU64,
    /// Dead processes reaped.
    pub reaped: AtomicU64,
    /// Non-zero once a process opened the segment with `persist=on`: the last
    /// detach leaves it (and its unread messages) in place unless it is
    /// drained, and an open finding nobody attached adopts it instead of
    /// starting afresh.
    pub persist: AtomicU32,
    /// The deepest any attached process saw the ring (bytes), published by
    /// each from its own statistic when it idles (`Segment::idle_check`),
    /// for `psyne inspect`. Diagnostics only.
    pub high_water: AtomicU64,
}

/// One attached process.
#[repr(C, align(128))]
pub(crate) struct ProcSlot {
    pub state: AtomicU32,
    pub pid: AtomicU32,
    /// CLOCK_REALTIME nanoseconds when the process attached (diagnostics).
    pub attached_ns: AtomicU64,
    pub _pad: [u64; 14],
    /// Multi-producer claim entries (ring/track.rs).
    pub claims: [TrackEntry; ENTRIES],
    /// Multi-consumer view entries.
    pub views: [TrackEntry; ENTRIES],
}

const _: () = assert!(std::mem::size_of::<SegmentHeader>() <= SLOTS_OFFSET);
const _: () = assert!(std::mem::size_of::<ProcSlot>() % 128 == 0);
const _: () = assert!(RING_OFFSET % 4096 == 0);

/// File size of a segment whose ring has `capacity` data bytes.
pub(crate) fn segment_size(capacity: usize) -> usize {
    RING_OFFSET + region_size(capacity)
}

/// Where segments live.
pub(crate) fn shm_dir() -> PathBuf {
    PathBuf::from("/dev/shm")
}

/// The file layer's own check of NAME (config.rs validates URIs; this keeps a
/// name that reached us another way from escaping the directory).
fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name == "."
        || name == ".."
        || name.contains("..")
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@+".contains(c))
    {
        return Err(Error::invalid(format!(
            "ipc:// name {name:?} is not a valid segment name (1..={MAX_NAME_LEN} of letters, digits, - _ . : @ +, no '..')"
        )));
    }
    Ok(())
}

/// The segment file for `name`.
pub(crate) fn segment_path(name: &str) -> PathBuf {
    shm_dir().join(format!("psyne-{name}"))
}

// ----------------------------------------------------------------------
// OFD locks
// ----------------------------------------------------------------------

fn flock_for(byte: i64, typ: i32) -> libc::flock {
    // SAFETY: flock is a plain C struct; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    fl
}

/// Tries to take the write lock on `byte` (never waits).
pub(crate) fn try_lock_byte(file: &File, byte: i64) -> std::io::Result<bool> {
    let mut fl = flock_for(byte, libc::F_WRLCK);
    // SAFETY: fd is open for the life of `file`; fl is a valid flock.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

pub(crate) fn unlock_byte(file: &File, byte: i64) {
    let mut fl = flock_for(byte, libc::F_UNLCK);
    // SAFETY: as in try_lock_byte.
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
}

/// Whether another open file description holds a lock on `byte`.
pub(crate) fn byte_is_locked(file: &File, byte: i64) -> bool {
    let mut fl = flock_for(byte, libc::F_WRLCK);
    // SAFETY: as in try_lock_byte; GETLK only writes into `fl`.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    // On error, say "locked": never declare a process dead by mistake.
    r != 0 || fl.l_type != libc::F_UNLCK as libc::c_short
}

/// Takes the lock on `byte`, waiting until `deadline`.
pub(crate) fn lock_byte_until(file: &File, byte: i64, deadline: Instant) -> std::io::Result<bool> {
    let mut pause = Duration::from_micros(200);
    loop {
        if try_lock_byte(file, byte)? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// ----------------------------------------------------------------------
// The mapped segment
// ----------------------------------------------------------------------

/// One process's attachment: the open file, the mapping and its slot.
/// Dropping it detaches (and removes the file if it was the last user).
pub(crate) struct Segment {
    name: String,
    path: PathBuf,
    file: File,
    map: MmapRaw,
    slot: usize,
    /// OFD locks belong to the open file description, not the thread: two
    /// threads of this process would both "get" INIT_LOCK. This keeps idle
    /// checks of one process from running at the same time.
    recovering: Mutex<()>,
    /// Fork generation of the attaching process (fork.rs): a child that
    /// inherited the attachment shares its open file description and so its
    /// locks, and must not detach it.
    born: u64,
}

// SAFETY: the mapping is shared memory accessed only through atomics and the
// ring's ownership protocol; File and MmapRaw have no thread affinity.
unsafe impl Send for Segment {}
// SAFETY: as above.
unsafe impl Sync for Segment {}

impl Segment {
    fn header(&self) -> &SegmentHeader {
        header_of(&self.map)
    }

    fn slot(&self, i: usize) -> &ProcSlot {
        slot_of(&self.map, i)
    }

    fn uri(&self) -> String {
        format!("ipc://{}", self.name)
    }

    /// Whether the process attached in slot `i` is alive (holds its byte).
    fn slot_alive(&self, i: usize) -> bool {
        i == self.slot || byte_is_locked(&self.file, SLOT_LOCK_BASE + i as i64)
    }

    /// Cheap test run by idle waiters: does anything look dead?
    fn needs_recovery(&self, ring: &Ring) -> bool {
        let mut live_pids = Vec::new();
        for i in 0..MAX_PROCS {
            let s = self.slot(i);
            match s.state.load(Ordering::Acquire) {
                SLOT_FREE => {}
                SLOT_LIVE => {
                    if !self.slot_alive(i) {
                        return true;
                    }
                    live_pids.push(s.pid.load(Ordering::Acquire));
                }
                _ => return true,
            }
        }
        [ring.producer_lock_owner(), ring.consumer_lock_owner()]
            .iter()
            .any(|&o| o != 0 && !live_pids.contains(&o))
    }

    /// Liveness check from an idle waiter: repairs what dead processes left,
    /// unless another process is busy with the segment (then it will be
    /// checked again within LIVENESS_INTERVAL).
    fn idle_check(&self, ring: &Ring) {
        self.header()
            .high_water
            .fetch_max(ring.high_water_bytes(), Ordering::Relaxed);
        if !self.needs_recovery(ring) {
            return;
        }
        let Some(_one_at_a_time) = self.recovering.try_lock() else {
            return;
        };
        if !matches!(try_lock_byte(&self.file, INIT_LOCK), Ok(true)) {
            return;
        }
        let r = self.recover(ring, false);
        unlock_byte(&self.file, INIT_LOCK);
        if r.is_err() {
            // Nobody to return the error to (and a library writes nothing to
            // stderr): stop the channel as corrupt, so that every process's
            // calls fail with that reason rather than wait on a broken ring.
            ring.corrupt();
        }
    }

    /// Finds dead processes and finishes what they left half done. The caller
    /// holds [`INIT_LOCK`], so the slot table does not change under us (only
    /// deaths can happen). `at_attach`: this process holds no side lock yet,
    /// so a side lock holding our own pid is a dead namesake's.
    fn recover(&self, ring: &Ring, at_attach: bool) -> Result<()> {
        let me = std::process::id().max(1);
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for i in 0..MAX_PROCS {
            let s = self.slot(i);
            match s.state.load(Ordering::Acquire) {
                SLOT_FREE => {}
                SLOT_LIVE if self.slot_alive(i) => live.push(i),
                _ => {
                    s.state.store(SLOT_DEAD, Ordering::Release);
                    dead.push(i);
                }
            }
        }
        let live_pids: Vec<u32> = live
            .iter()
            .map(|&i| self.slot(i).pid.load(Ordering::Acquire))
            .collect();
        let owner_dead = |o: u32| {
            o != 0
                && (!live_pids.contains(&o)
                    || (at_attach
                        && o == me
                        && live_pids.iter().filter(|&&p| p == me).count() == 1))
        };
        let corrupt = |e: String| Error::Io(format!("{}: the segment is corrupt: {e}", self.uri()));
        let mut dropped = 0;
        let o = ring.producer_lock_owner();
        if owner_dead(o) {
            dropped += ring.recover_single_producer(o).map_err(corrupt)?;
        }
        let o = ring.consumer_lock_owner();
        if owner_dead(o) {
            dropped += ring.recover_single_consumer(o).map_err(corrupt)?;
        }

        // Which operation an entry is about: claims live in the claim table,
        // views and head locks in the view table (LOCK flag).
        #[derive(Clone, Copy, PartialEq)]
        enum Kind {
            Claim,
            View,
            HeadLock,
        }
        let kind_of = |views: bool, flags: u64| match (views, flags & LOCK != 0) {
            (false, _) => Kind::Claim,
            (true, false) => Kind::View,
            (true, true) => Kind::HeadLock,
        };
        let entries = |i: usize| {
            let s = self.slot(i);
            s.claims
                .iter()
                .map(|e| (false, e))
                .chain(s.views.iter().map(|e| (true, e)))
        };
        // What live processes' entries of `kind` say about `pos`.
        let naming = |kind: Kind, pos: u64| -> Naming {
            let mut n = Naming::Nobody;
            for &i in &live {
                for (views, e) in entries(i) {
                    if let Some((p, _, flags)) = Ring::read_entry(e) {
                        if p == pos && kind_of(views, flags) == kind {
                            if flags & HELD != 0 {
                                return Naming::Held;
                            }
                            n = Naming::Intent;
                        }
                    }
                }
            }
            n
        };

        for &d in &dead {
            let s = self.slot(d);
            let mut pending = false;
            for (k, (views, e)) in entries(d).enumerate() {
                let Some((pos, size, flags)) = Ring::read_entry(e) else {
                    continue;
                };
                let kind = kind_of(views, flags);
                // Another dead entry may name the same position: only one CAS
                // won it. One marked held is the winner; intents that differ
                // in size cannot be told apart (two processes died within
                // the same few instructions): refuse rather than guess.
                let mut rival_held = false;
                for &d2 in &dead {
                    for (k2, (views2, e2)) in entries(d2).enumerate() {
                        if d2 == d && k2 == k {
                            continue;
                        }
                        let Some((p2, size2, f2)) = Ring::read_entry(e2) else {
                            continue;
                        };
                        if p2 != pos || kind_of(views2, f2) != kind {
                            continue;
                        }
                        if f2 & HELD != 0 {
                            rival_held = true;
                        } else if kind != Kind::View && flags & HELD == 0 && size2 != size {
                            return Err(corrupt(format!(
                                "two dead processes may both have won position {pos}, with different sizes"
                            )));
                        }
                    }
                }
                let others = |p: u64| naming(kind, p);
                let outcome = if rival_held && flags & HELD == 0 {
                    Outcome::Resolved { dropped: false }
                } else {
                    match kind {
                        Kind::Claim => ring.recover_claim(pos, size, flags, &others),
                        Kind::View => ring.recover_view(pos, &others),
                        Kind::HeadLock => ring.recover_head_lock(pos, size, &others),
                    }
                    .map_err(corrupt)?
                };
                match outcome {
                    Outcome::Resolved { dropped: dr } => {
                        dropped += dr as u64;
                        e.word.store(0, Ordering::Release);
                    }
                    Outcome::Pending => pending = true,
                }
            }
            if !pending {
                s.pid.store(0, Ordering::Relaxed);
                s.state.store(SLOT_FREE, Ordering::Release);
                self.header().reaped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if dropped > 0 {
            self.header().dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether the segment must outlive its last process: it persists and
    /// holds messages nobody has read yet.
    fn keeps_unread(&self) -> bool {
        let ctrl = self
            .map
            .as_ptr()
            .wrapping_add(RING_OFFSET)
            .cast::<Control>();
        // SAFETY: the mapping holds the ring's control block at RING_OFFSET
        // (checked at attach) and stays mapped while `self` lives; its fields
        // are atomics, whatever values another process left in them.
        self.header().persist.load(Ordering::Acquire) != 0
            && crate::ring::unread_bytes(unsafe { &*ctrl }) != 0
    }

    /// Detaches: frees our slot and removes the file if nobody live is left
    /// (and it does not keep unread messages for later, see `persist`).
    /// Never waits long for another process (see [`DETACH_WAIT`]).
    fn detach(&mut self) {
        if self.slot == NO_SLOT || !crate::fork::is_ours(self.born) {
            return;
        }
        let locked =
            lock_byte_until(&self.file, INIT_LOCK, Instant::now() + DETACH_WAIT).unwrap_or(false);
        let me = self.slot(self.slot);
        for e in me.claims.iter().chain(me.views.iter()) {
            e.word.store(0, Ordering::Relaxed);
        }
        me.pid.store(0, Ordering::Relaxed);
        me.state.store(SLOT_FREE, Ordering::Release);
        unlock_byte(&self.file, SLOT_LOCK_BASE + self.slot as i64);
        if locked {
            let anyone = (0..MAX_PROCS).any(|i| {
                i != self.slot
                    && self.slot(i).state.load(Ordering::Acquire) == SLOT_LIVE
                    && self.slot_alive(i)
            });
            if !anyone && same_file(&self.file, &self.path) && !self.keeps_unread() {
                let _ = std::fs::remove_file(&self.path);
            }
            unlock_byte(&self.file, INIT_LOCK);
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.detach();
    }
}

/// The header of the segment a ring of this module lives in.
fn header_of_ring(ring: &Ring) -> &SegmentHeader {
    let ctrl: *const Control = ring.ctrl();
    // SAFETY: every ring in this module's registry was made by `ring_of`,
    // which places the control block RING_OFFSET bytes into the segment's
    // mapping, whose first bytes are the header; the ring keeps the mapping
    // alive (it holds the segment) for as long as it is borrowed here.
    unsafe { &*ctrl.cast::<u8>().sub(RING_OFFSET).cast::<SegmentHeader>() }
}

pub(crate) fn header_of(map: &MmapRaw) -> &SegmentHeader {
    // SAFETY: every mapping we build is at least RING_OFFSET bytes long (checked
    // before mapping), page aligned, and the header is made of atomics, valid
    // for any bit pattern.
    unsafe { &*(map.as_ptr() as *const SegmentHeader) }
}

pub(crate) fn slot_of(map: &MmapRaw, i: usize) -> &ProcSlot {
    assert!(i < MAX_PROCS);
    // SAFETY: the slot table lies inside the first RING_OFFSET bytes of the
    // mapping (const-asserted layout), 128-aligned; slots are atomics only.
    unsafe {
        &*(map
            .as_ptr()
            .add(SLOTS_OFFSET + i * std::mem::size_of::<ProcSlot>()) as *const ProcSlot)
    }
}

/// Whether `path` still names the file open as `file` (it may have been
/// removed by a detaching process, or replaced since).
pub(crate) fn same_file(file: &File, path: &std::path::Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino() && a.nlink() > 0,
        _ => false,
    }
}

// ----------------------------------------------------------------------
// Opening
// ----------------------------------------------------------------------

/// The ipc:// channels open in this process, by name.
static REGISTRY: super::Registry = super::Registry::new();

/// Opens (creates or attaches to) the segment `ipc://name`.
///
/// * `buffer_size == 0`: attach to an existing segment and adopt its size,
///   mode and type; an error names the channel if there is none.
/// * otherwise: create it, or attach if one exists with the same (rounded)
///   size, mode and type; any difference is refused, naming it.
///
/// Within one process every open of a name shares one attachment.
pub(crate) fn open(
    name: &str,
    buffer_size: usize,
    mode: Mode,
    channel_type: ChannelType,
    persist: bool,
) -> Result<Arc<Shared>> {
    check_name(name)?;
    if buffer_size != 0 && capacity_for(buffer_size).is_none() {
        return Err(Error::invalid(format!(
            "buffer size {buffer_size} is larger than the maximum of {MAX_CAPACITY} bytes"
        )));
    }
    // Opens of one name run one at a time (they must end on one
    // attachment); opens of other names do not wait for them, although an
    // attach may wait up to LOCK_WAIT for another process's init lock.
    let gate = name_gate(name);
    let _one_at_a_time = gate.lock();
    let reg = REGISTRY.lock();
    if let Some(existing) = reg.get(name).and_then(Weak::upgrade) {
        let same = super::check_same_config(
            "ipc",
            name,
            buffer_size,
            mode,
            channel_type,
            (
                existing.ring.capacity(),
                existing.mode,
                existing.channel_type,
            ),
        );
        // `existing` may be the last reference by now: dropping it detaches,
        // which must not happen under the registry lock.
        drop(reg);
        same?;
        if persist {
            header_of_ring(&existing.ring)
                .persist
                .store(1, Ordering::Release);
        }
        return Ok(existing);
    }
    drop(reg);
    let shared = Arc::new(attach(name, buffer_size, mode, channel_type, persist)?);
    REGISTRY
        .lock()
        .insert(name.to_string(), Arc::downgrade(&shared));
    Ok(shared)
}

/// The lock that serialises this process's opens of `name` (see [`open`]).
/// Gates of names nobody is opening are pruned once the map has doubled.
fn name_gate(name: &str) -> Arc<Mutex<()>> {
    /// Gates by name, and the size at which the map is next pruned.
    type Gates = (BTreeMap<String, Weak<Mutex<()>>>, usize);
    static GATES: Mutex<Gates> = Mutex::new((BTreeMap::new(), 0));
    let mut gates = GATES.lock();
    let (map, prune_at) = &mut *gates;
    if let Some(gate) = map.get(name).and_then(Weak::upgrade) {
        return gate;
    }
    if map.len() >= *prune_at {
        map.retain(|_, w| w.strong_count() > 0);
        *prune_at = (2 * map.len()).max(64);
    }
    let gate = Arc::new(Mutex::new(()));
    map.insert(name.to_string(), Arc::downgrade(&gate));
    gate
}

/// What an inspection of the file under the init lock found.
pub(crate) enum Found {
    /// Empty file, or one whose creator died before finishing (no live user).
    Fresh,
    /// A complete segment with this configuration.
    Ready(usize, Mode, ChannelType),
}

fn attach(
    name: &str,
    buffer_size: usize,
    mode: Mode,
    channel_type: ChannelType,
    persist: bool,
) -> Result<Shared> {
    let path = segment_path(name);
    let uri = format!("ipc://{name}");
    let io =
        |what: &str, e: std::io::Error| Error::io(&format!("{uri}: {what} {}", path.display()), e);
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| io("cannot open", e))?;
        let meta = file.metadata().map_err(|e| io("cannot stat", e))?;
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if !meta.file_type().is_file() || meta.uid() != euid {
            return Err(Error::Io(format!(
                "{uri}: {} is not a regular file owned by this user (uid {euid}); refusing to use it",
                path.display()
            )));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::Io(format!(
                "{uri}: {} has mode {:o}; psyne segments are 0600 — refusing to use it",
                path.display(),
                meta.permissions().mode() & 0o777
            )));
        }
        if !lock_byte_until(&file, INIT_LOCK, deadline).map_err(|e| io("cannot lock", e))? {
            return Err(Error::Io(format!(
                "{uri}: another process kept {} locked for {} s (creating or repairing it); giving up",
                path.display(),
                LOCK_WAIT.as_secs()
            )));
        }
        // A detaching process may have removed the file between our open and
        // our lock: then start again with a fresh one.
        if !same_file(&file, &path) {
            drop(file);
            continue;
        }
        // From here on we hold INIT_LOCK (dropped with `file` on error).
        return attach_locked(
            name,
            &uri,
            &path,
            file,
            buffer_size,
            mode,
            channel_type,
            persist,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn attach_locked(
    name: &str,
    uri: &str,
    path: &std::path::Path,
    file: File,
    buffer_size: usize,
    mode: Mode,
    channel_type: ChannelType,
    persist: bool,
) -> Result<Shared> {
    let io =
        |what: &str, e: std::io::Error| Error::io(&format!("{uri}: {what} {}", path.display()), e);
    let len = file.metadata().map_err(|e| io("cannot stat", e))?.len();
    let found = inspect(uri, path, &file, len)?;
    let (capacity, mode, channel_type, create) = match found {
        Found::Ready(cap, m, t) => {
            // A complete segment: does anybody still use it?
            let map = map_file(&file, len as usize).map_err(|e| io("cannot map", e))?;
            let anyone = (0..MAX_PROCS).any(|i| {
                slot_of(&map, i).state.load(Ordering::Acquire) == SLOT_LIVE
                    && byte_is_locked(&file, SLOT_LOCK_BASE + i as i64)
            });
            // A persisting segment keeps its messages for whoever comes next:
            // adopt it (recovery below settles what dead users left).
            let kept = header_of(&map).persist.load(Ordering::Acquire) != 0;
            if anyone || kept {
                super::check_same_config(
                    "ipc",
                    name,
                    buffer_size,
                    mode,
                    channel_type,
                    (cap, m, t),
                )?;
                (cap, m, t, false)
            } else if buffer_size == 0 {
                // Every user died: reinitialise with its own configuration.
                (cap, m, t, true)
            } else {
                (
                    capacity_for(buffer_size).expect("checked in open"),
                    mode,
                    channel_type,
                    true,
                )
            }
        }
        Found::Fresh => {
            if buffer_size == 0 {
                // Nothing usable here: leave no file behind.
                let _ = std::fs::remove_file(path);
                return Err(Error::invalid(format!(
                    "{uri} does not exist; a buffer size of 0 only attaches to an existing channel"
                )));
            }
            (
                capacity_for(buffer_size).expect("checked in open"),
                mode,
                channel_type,
                true,
            )
        }
    };
    if create {
        if let Err(e) = initialise(&file, capacity, mode, channel_type) {
            let _ = std::fs::remove_file(path);
            return Err(create_error(uri, path, capacity, e));
        }
    }
    let total = segment_size(capacity);
    let map = match map_file(&file, total) {
        Ok(map) => map,
        Err(e) => {
            // A segment we just made that nobody can use: leave nothing behind.
            if create {
                let _ = std::fs::remove_file(path);
            }
            return Err(io("cannot map", e));
        }
    };

    // Take a free slot; if every slot is taken, the dead may hold some of
    // them: recover them and look again.
    let slot = match take_slot(&map, &file).map_err(|e| io("cannot lock", e))? {
        Some(slot) => Some(slot),
        None => {
            recover_without_slot(name, path, &file, capacity, mode)?;
            take_slot(&map, &file).map_err(|e| io("cannot lock", e))?
        }
    };
    let Some(slot) = slot else {
        return Err(Error::Io(format!(
            "{uri}: {MAX_PROCS} processes are attached already (the limit)"
        )));
    };
    let seg = Arc::new(Segment {
        name: name.to_string(),
        path: path.to_path_buf(),
        file,
        map,
        slot,
        recovering: Mutex::new(()),
        born: crate::fork::generation(),
    });
    // From here on, dropping `seg` detaches (and unlocks INIT_LOCK, as the
    // detach takes and releases it — OFD locks are not recursive, so we
    // release ours first on every path below).
    let (ring, tracker) = ring_of(&seg, capacity, mode);
    let mut ring = ring;
    if let Err(e) = ring.check_positions() {
        unlock_byte(&seg.file, INIT_LOCK);
        return Err(Error::Io(format!("{uri}: the segment is corrupt: {e}")));
    }
    if create {
        ring.set_metrics_enabled(true);
    }
    ring.set_tracker(tracker);
    if persist {
        seg.header().persist.store(1, Ordering::Release);
    }
    let r = seg.recover(&ring, true);
    unlock_byte(&seg.file, INIT_LOCK);
    r?;
    Ok(Shared::new(ring, mode, channel_type))
}

/// Takes a free slot of the segment mapped as `map`: its lock byte first, so
/// that nobody sees a live slot without a holder. `None`: all are taken.
fn take_slot(map: &MmapRaw, file: &File) -> std::io::Result<Option<usize>> {
    for i in 0..MAX_PROCS {
        let s = slot_of(map, i);
        // A dead process's slot with no operation left to finish may be
        // taken at once (the recovery pass below still frees its side locks);
        // one with entries waits for that pass.
        let reusable = match s.state.load(Ordering::Acquire) {
            SLOT_FREE => true,
            _ => {
                !byte_is_locked(file, SLOT_LOCK_BASE + i as i64)
                    && s.claims
                        .iter()
                        .chain(s.views.iter())
                        .all(|e| e.word.load(Ordering::Acquire) == 0)
            }
        };
        if !reusable {
            continue;
        }
        if try_lock_byte(file, SLOT_LOCK_BASE + i as i64)? {
            for e in s.claims.iter().chain(s.views.iter()) {
                e.word.store(0, Ordering::Relaxed);
            }
            s.pid.store(std::process::id().max(1), Ordering::Relaxed);
            s.attached_ns.store(now_ns(), Ordering::Relaxed);
            s.state.store(SLOT_LIVE, Ordering::Release);
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Every slot is taken: runs the recovery pass (the caller holds
/// INIT_LOCK) as a process without a slot, so that the slots of dead
/// processes are freed. Its own crash-recovery entries are scratch memory:
/// it holds no view or claim of its own.
fn recover_without_slot(
    name: &str,
    path: &std::path::Path,
    file: &File,
    capacity: usize,
    mode: Mode,
) -> Result<()> {
    let uri = format!("ipc://{name}");
    let io = |e: std::io::Error| Error::io(&format!("{uri}: cannot recover {}", path.display()), e);
    let seg = Arc::new(Segment {
        name: name.to_string(),
        path: path.to_path_buf(),
        file: file.try_clone().map_err(io)?,
        map: map_file(file, segment_size(capacity)).map_err(io)?,
        slot: NO_SLOT,
        recovering: Mutex::new(()),
        born: crate::fork::generation(),
    });
    let (mut ring, tracker) = ring_of(&seg, capacity, mode);
    ring.check_positions()
        .map_err(|e| Error::Io(format!("{uri}: the segment is corrupt: {e}")))?;
    ring.set_tracker(tracker);
    seg.recover(&ring, true)
}

/// The error for a segment that could not be made: no room in the file
/// system is `OUT_OF_MEMORY`, naming the sizes; anything else `IO`.
fn create_error(uri: &str, path: &std::path::Path, capacity: usize, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::ENOMEM) => Error::OutOfMemory(format!(
            "{uri}: no room for {} ({} bytes for a ring of {capacity} bytes) in {}: {e}",
            path.display(),
            segment_size(capacity),
            shm_dir().display(),
        )),
        _ => Error::io(&format!("{uri}: cannot create {}", path.display()), e),
    }
}

/// The ring inside `seg`'s mapping, and a tracker over `seg`'s slot (scratch
/// entries for a process without a slot).
fn ring_of(seg: &Arc<Segment>, capacity: usize, mode: Mode) -> (Ring, Tracker) {
    let base = NonNull::new(
        // SAFETY: the mapping is RING_OFFSET + region_size(capacity) bytes
        // long, so the ring region starts inside it.
        unsafe { seg.map.as_mut_ptr().add(RING_OFFSET) },
    )
    .expect("a mapping is never at address 0");
    // SAFETY: `base` is page aligned (RING_OFFSET is a multiple of 4096) and
    // region_size(capacity) bytes long inside a mapping that `seg` keeps
    // alive; it holds zeros (fresh) or a ring of this capacity and mode
    // (validated header of a segment only psyne writes).
    let ring =
        unsafe { Ring::from_raw(base, capacity, mode, Scope::Shared, Box::new(seg.clone())) };
    let checker = seg.clone();
    let check = Box::new(move |ring: &Ring| checker.idle_check(ring));
    let tracker = if seg.slot < MAX_PROCS {
        let me = seg.slot(seg.slot);
        // SAFETY: the entries live in our slot of the mapping, which
        // `checker` (held by the tracker inside the ring) keeps mapped; only
        // this process uses them while the slot is ours.
        unsafe {
            Tracker::new(
                NonNull::from(&me.claims[0]),
                NonNull::from(&me.views[0]),
                check,
            )
        }
    } else {
        let scratch: Arc<[TrackEntry]> = (0..2 * ENTRIES)
            .map(|_| TrackEntry {
                pos: AtomicU64::new(0),
                word: AtomicU64::new(0),
            })
            .collect();
        let (claims, views) = (NonNull::from(&scratch[0]), NonNull::from(&scratch[ENTRIES]));
        // SAFETY: 2 × ENTRIES zeroed entries on the heap, kept alive by the
        // check closure, which the tracker holds; nobody else sees them.
        unsafe {
            Tracker::new(
                claims,
                views,
                Box::new(move |ring: &Ring| {
                    let _ = &scratch;
                    check(ring)
                }),
            )
        }
    };
    (ring, tracker)
}

fn map_file(file: &File, len: usize) -> std::io::Result<MmapRaw> {
    MmapOptions::new().len(len).map_raw(file)
}

/// Reads and checks the header. Everything read is validated before use.
pub(crate) fn inspect(uri: &str, path: &std::path::Path, file: &File, len: u64) -> Result<Found> {
    if len == 0 {
        return Ok(Found::Fresh);
    }
    let bad = |what: String| {
        Err(Error::Io(format!(
            "{uri}: {} is not a usable psyne segment: {what}; remove it if no program uses it",
            path.display()
        )))
    };
    if len < segment_size(MIN_CAPACITY) as u64 {
        return bad(format!(
            "it is {len} bytes, smaller than the smallest segment ({} bytes) — truncated or foreign",
            segment_size(MIN_CAPACITY)
        ));
    }
    let map =
        map_file(file, RING_OFFSET).map_err(|e| Error::io(&format!("{uri}: cannot map"), e))?;
    let h = header_of(&map);
    let magic = h.magic.load(Ordering::Acquire);
    let state = h.state.load(Ordering::Acquire);
    if magic == 0 || (magic == MAGIC && state == SEG_INITIALISING) {
        // The creator died while initialising (it held INIT_LOCK, which we
        // now hold). Nobody can be attached: slots are taken only after READY.
        if magic == 0 && !all_zero(&map) {
            return bad("no psyne magic number (foreign file)".into());
        }
        return Ok(Found::Fresh);
    }
    if magic != MAGIC {
        return bad(format!("bad magic number {magic:#018x} (foreign file)"));
    }
    let version = h.version.load(Ordering::Relaxed);
    if version != LAYOUT_VERSION {
        return bad(format!(
            "layout version {version}, this library reads version {LAYOUT_VERSION}"
        ));
    }
    if state != SEG_READY {
        return bad(format!("unknown state {state}"));
    }
    let ring_offset = h.ring_offset.load(Ordering::Relaxed);
    if ring_offset != RING_OFFSET as u64 {
        return bad(format!("ring offset {ring_offset}, expected {RING_OFFSET}"));
    }
    let max_procs = h.max_procs.load(Ordering::Relaxed);
    let entries = h.entries_per_slot.load(Ordering::Relaxed);
    if max_procs as usize != MAX_PROCS || entries as usize != ENTRIES {
        return bad(format!(
            "slot table of {max_procs}×{entries}, expected {MAX_PROCS}×{ENTRIES}"
        ));
    }
    let control = h.control_size.load(Ordering::Relaxed) as usize;
    if control != std::mem::size_of::<Control>() {
        return bad(format!(
            "ring control block of {control} bytes, this library uses {} (a different psyne version made it)",
            std::mem::size_of::<Control>()
        ));
    }
    let cap = h.capacity.load(Ordering::Relaxed);
    if !cap.is_power_of_two() || cap < MIN_CAPACITY as u64 || cap > MAX_CAPACITY as u64 {
        return bad(format!(
            "ring size {cap} is not a power of two in {MIN_CAPACITY}..={MAX_CAPACITY}"
        ));
    }
    let expect = segment_size(cap as usize) as u64;
    let total = h.total_size.load(Ordering::Relaxed);
    if total != expect || len != expect {
        return bad(format!(
            "file is {len} bytes and says {total}, but a ring of {cap} bytes needs {expect} (truncated?)"
        ));
    }
    let m = match Mode::from_raw(h.mode.load(Ordering::Relaxed) as i64) {
        Ok(m) => m,
        Err(e) => return bad(format!("{e}")),
    };
    let t = match ChannelType::from_raw(h.channel_type.load(Ordering::Relaxed) as i64) {
        Ok(t) => t,
        Err(e) => return bad(format!("{e}")),
    };
    Ok(Found::Ready(cap as usize, m, t))
}

/// Sizes the file to `len` bytes with every page allocated. A merely sized
/// (sparse) file on a tmpfs that later runs out of room kills the process
/// with SIGBUS at the first write to a missing page — at any send, in any
/// process. Reserving up front turns that into an error at create
/// (`ENOSPC`). File systems without `fallocate` are only sized.
fn reserve(file: &File, len: u64) -> std::io::Result<()> {
    loop {
        // SAFETY: the descriptor is open for the life of `file`; the call
        // reads no memory of ours.
        let r = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
        match r {
            0 => return Ok(()),
            libc::EINTR => continue,
            libc::EOPNOTSUPP | libc::ENOSYS => return file.set_len(len),
            e => return Err(std::io::Error::from_raw_os_error(e)),
        }
    }
}

fn all_zero(map: &MmapRaw) -> bool {
    // SAFETY: the mapping is RING_OFFSET bytes long; we only read it. Other
    // processes cannot write it: we hold INIT_LOCK and nobody is attached.
    let bytes =
        unsafe { std::slice::from_raw_parts(map.as_ptr(), std::mem::size_of::<SegmentHeader>()) };
    bytes.iter().all(|&b| b == 0)
}

/// Creates the segment content from scratch (the caller holds INIT_LOCK and
/// nobody is attached): resize to zero (dropping any old content), to full
/// size (zeros), write the header, then mark it ready.
fn initialise(
    file: &File,
    capacity: usize,
    mode: Mode,
    channel_type: ChannelType,
) -> std::io::Result<()> {
    let total = segment_size(capacity);
    file.set_len(0)?;
    reserve(file, total as u64)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let map = map_file(file, RING_OFFSET)?;
    let h = header_of(&map);
    // Magic first: if we die before READY, the next opener finds our magic
    // with state INITIALISING (or an all-zero header) and starts over, rather
    // than taking a half-written header for a foreign file.
    h.magic.store(MAGIC, Ordering::Relaxed);
    h.version.store(LAYOUT_VERSION, Ordering::Relaxed);
    h.ring_offset.store(RING_OFFSET as u64, Ordering::Relaxed);
    h.total_size.store(total as u64, Ordering::Relaxed);
    h.capacity.store(capacity as u64, Ordering::Relaxed);
    h.mode.store(mode as u32, Ordering::Relaxed);
    h.channel_type.store(channel_type as u32, Ordering::Relaxed);
    h.creator_pid.store(std::process::id(), Ordering::Relaxed);
    h.max_procs.store(MAX_PROCS as u32, Ordering::Relaxed);
    h.entries_per_slot.store(ENTRIES as u32, Ordering::Relaxed);
    h.control_size
        .store(std::mem::size_of::<Control>() as u32, Ordering::Relaxed);
    h.state.store(SEG_READY, Ordering::Release);
    Ok(())
}
