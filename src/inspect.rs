//! Read-only inspection of `ipc://` segments: what `psyne inspect` shows.
//!
//! ```no_run
//! use psyne::inspect::{self, Status};
//!
//! // Segments left by processes that all died:
//! let stale: Vec<String> = inspect::list()?
//!     .into_iter()
//!     .filter(|s| s.status == Status::Stale)
//!     .map(|s| s.name)
//!     .collect();
//! // One segment's depth and counters:
//! let seg = inspect::segment("ipc://frames")?;
//! let (queued, sent) = seg.ring.map_or((0, 0), |r| (r.depth_bytes, r.messages_sent));
//! # let _ = (stale, queued, sent);
//! # Ok::<(), psyne::Error>(())
//! ```
//!
//! A segment is a file in `/dev/shm` that any process of the same user can
//! write, so nothing read from it is trusted: the header is validated exactly
//! as an open validates it, positions and pids are range-checked, and a file
//! that fails is reported as [`Status::Unusable`] with the reason. Inspection
//! never attaches (it takes no process slot, so it is not counted as a user)
//! and never writes the segment: it holds the segment's init lock for the
//! microseconds it takes to copy the figures out, so that nobody resizes the
//! file under the read-only mapping, and releases it before returning.

use crate::config::{ChannelType, Mode};
use crate::error::{Error, Result};
use crate::ring::layout::{max_message_for, Control, SideCounters, HEAD_LOCK};
use crate::ring::track::ENTRIES;
use crate::sync::{AtomicU64, Ordering};
use crate::transport::ipc::{self, Found};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// File-name prefix of every segment in `/dev/shm`.
const PREFIX: &str = "psyne-";
/// How long an inspection waits for a process that is creating, attaching
/// to, detaching from or repairing the segment.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// What a segment file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// At least one attached process is alive.
    Live,
    /// A psyne segment (or an empty or half-created one) that no live
    /// process uses: left by processes that crashed or were killed. The next
    /// open of the name reinitialises it; [`remove_stale`] deletes it.
    Stale,
    /// No live process uses it, but it was opened with `persist=on`: it keeps
    /// its unread messages for the next open, which adopts it. Never removed
    /// by [`remove_stale`].
    Persisted,
    /// Not a segment this library can read: a foreign file, another layout
    /// version, a truncated file, or inconsistent contents. The reason is
    /// given; such files are never removed automatically.
    Unusable(String),
}

/// A segment's configuration, from its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Ring data bytes (a power of two).
    pub capacity: u64,
    /// The largest message the ring takes.
    pub max_message: u64,
    /// Concurrency mode.
    pub mode: Mode,
    /// Message type handling.
    pub channel_type: ChannelType,
    /// Process that created the segment (it may be gone).
    pub creator_pid: u32,
    /// Segment layout version.
    pub layout_version: u32,
    /// Opened with `persist=on`: kept, with its unread messages, after the
    /// last process detaches.
    pub persist: bool,
}

/// One process slot in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Slot index (0..64).
    pub slot: usize,
    /// Process id recorded by the process when it attached.
    pub pid: u32,
    /// Whether the process is alive (it still holds its slot's lock, which
    /// the kernel drops when a process dies).
    pub alive: bool,
    /// Dead, with operations (a reservation or a view) whose recovery is not
    /// finished yet.
    pub recovery_pending: bool,
    /// When it attached (`None` if the recorded time is not plausible).
    pub attached: Option<SystemTime>,
    /// Its command name from `/proc/PID/comm`, when alive and readable.
    pub command: Option<String>,
}

/// The ring's figures at the moment of inspection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RingState {
    /// Bytes between the oldest unfreed record and the newest claim.
    pub depth_bytes: u64,
    /// The deepest any attached process has seen the ring, as published by
    /// each when it idles (at most every 100 ms), or the depth now if larger.
    pub high_water_bytes: u64,
    /// Messages committed (all processes, since creation or the last reset).
    pub messages_sent: u64,
    /// Payload bytes committed.
    pub bytes_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Send calls that found the ring full.
    pub send_blocks: u64,
    /// Receive calls that found the ring empty.
    pub receive_blocks: u64,
    /// Whether the channel was stopped.
    pub stopped: bool,
    /// Messages dropped by crash recovery.
    pub dropped_by_recovery: u64,
    /// Dead processes reaped.
    pub reaped: u64,
    /// Pid holding the single-producer side (0: none or a multi side).
    pub producer_pid: u32,
    /// Pid holding the single-consumer side (0: none or a multi side).
    pub consumer_pid: u32,
}

/// Everything inspection found about one segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The channel name (`ipc://NAME`).
    pub name: String,
    /// The file (`/dev/shm/psyne-NAME`).
    pub path: PathBuf,
    /// File size in bytes.
    pub file_bytes: u64,
    /// Live, stale or unusable.
    pub status: Status,
    /// The header's configuration, when the header is valid.
    pub config: Option<Config>,
    /// Slots in use (live and dead processes).
    pub processes: Vec<Process>,
    /// Depth and counters, when the header is valid.
    pub ring: Option<RingState>,
}

/// Inspects `ipc://NAME` (the name without the scheme). An error when the
/// name is invalid or no such segment exists; an unreadable or corrupt
/// segment is a [`SegmentInfo`] with [`Status::Unusable`].
pub fn segment(name: &str) -> Result<SegmentInfo> {
    let name = &segment_name(name)?;
    let path = ipc::segment_path(name);
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(Error::invalid(format!(
            "ipc://{name} does not exist (no {})",
            path.display()
        )));
    }
    Ok(examine(name, &path))
}

/// Every `psyne-*` file in `/dev/shm`, sorted by name.
pub fn list() -> Result<Vec<SegmentInfo>> {
    let dir = ipc::shm_dir();
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&format!("cannot list {}", dir.display()), e))?;
    let mut out: Vec<SegmentInfo> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let name = file.strip_prefix(PREFIX)?.to_string();
            Some(examine(&name, &e.path()))
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes the segment `name` if it is [`Status::Stale`] — checked again
/// under the segment's init lock, so that a process attaching at that moment
/// either finds the file gone and makes a new one, or holds its slot before
/// the check and the file stays. Returns whether it was removed; live and
/// unusable segments are never removed.
pub fn remove_stale(name: &str) -> Result<bool> {
    let name = &segment_name(name)?;
    let path = ipc::segment_path(name);
    let file = match open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(&format!("cannot open {}", path.display()), e)),
    };
    let locked = ipc::lock_byte_until(&file, ipc::INIT_LOCK, Instant::now() + LOCK_WAIT)
        .map_err(|e| Error::io(&format!("cannot lock {}", path.display()), e))?;
    if !locked {
        return Ok(false);
    }
    let info = read_locked(name, &path, &file);
    let removed = info.status == Status::Stale
        && ipc::same_file(&file, &path)
        && std::fs::remove_file(&path).is_ok();
    ipc::unlock_byte(&file, ipc::INIT_LOCK);
    Ok(removed)
}

/// The segment name of `ipc://NAME` or `NAME`, checked as an open checks it
/// (a query such as `?spin=0` is allowed and ignored).
fn segment_name(uri_or_name: &str) -> Result<String> {
    let name = uri_or_name.strip_prefix("ipc://").unwrap_or(uri_or_name);
    match crate::config::parse_uri(&format!("ipc://{name}"))?.endpoint {
        crate::config::Endpoint::Ipc { name, .. } => Ok(name),
        _ => Err(Error::invalid(format!(
            "{uri_or_name:?} is not an ipc:// name"
        ))),
    }
}

/// Opens a segment file for inspection: read-write only because taking the
/// init lock (a write lock) needs it; nothing is written. `O_NONBLOCK`: a
/// FIFO planted under the name must not hang the open.
fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}

fn examine(name: &str, path: &Path) -> SegmentInfo {
    let unusable = |why: String, bytes: u64| SegmentInfo {
        name: name.to_string(),
        path: path.to_path_buf(),
        file_bytes: bytes,
        status: Status::Unusable(why),
        config: None,
        processes: Vec::new(),
        ring: None,
    };
    let file = match open(path) {
        Ok(f) => f,
        Err(e) => return unusable(format!("cannot open: {e}"), 0),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return unusable(format!("cannot stat: {e}"), 0),
    };
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if !meta.file_type().is_file() || meta.uid() != euid {
        return unusable(
            format!("not a regular file owned by this user (uid {euid})"),
            meta.len(),
        );
    }
    match ipc::lock_byte_until(&file, ipc::INIT_LOCK, Instant::now() + LOCK_WAIT) {
        Ok(true) => {}
        Ok(false) => {
            return unusable(
                format!(
                    "another process kept it locked for {} s (creating or repairing it)",
                    LOCK_WAIT.as_secs()
                ),
                meta.len(),
            )
        }
        Err(e) => return unusable(format!("cannot lock: {e}"), meta.len()),
    }
    let info = read_locked(name, path, &file);
    ipc::unlock_byte(&file, ipc::INIT_LOCK);
    info
}

/// Reads the segment; the caller holds its init lock, so the file keeps its
/// size and header while it is mapped here.
fn read_locked(name: &str, path: &Path, file: &File) -> SegmentInfo {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut info = SegmentInfo {
        name: name.to_string(),
        path: path.to_path_buf(),
        file_bytes: len,
        status: Status::Stale,
        config: None,
        processes: Vec::new(),
        ring: None,
    };
    let uri = format!("ipc://{name}");
    let (capacity, mode, channel_type) = match ipc::inspect(&uri, path, file, len) {
        // Empty, or its creator died before finishing: nobody can be attached.
        Ok(Found::Fresh) => return info,
        Ok(Found::Ready(c, m, t)) => (c, m, t),
        Err(e) => {
            info.status = Status::Unusable(e.to_string());
            return info;
        }
    };
    // The header said, and `inspect` checked, that the file is exactly
    // segment_size(capacity) bytes long.
    let map = match memmap2::MmapOptions::new()
        .len(len as usize)
        .map_raw_read_only(file)
    {
        Ok(m) => m,
        Err(e) => {
            info.status = Status::Unusable(format!("cannot map: {e}"));
            return info;
        }
    };
    let h = ipc::header_of(&map);
    info.config = Some(Config {
        capacity: capacity as u64,
        max_message: max_message_for(capacity) as u64,
        mode,
        channel_type,
        creator_pid: h.creator_pid.load(Ordering::Relaxed),
        layout_version: h.version.load(Ordering::Relaxed),
        persist: h.persist.load(Ordering::Relaxed) != 0,
    });

    let mut live_pids = Vec::new();
    for i in 0..ipc::MAX_PROCS {
        let s = ipc::slot_of(&map, i);
        let state = s.state.load(Ordering::Acquire);
        if state == ipc::SLOT_FREE {
            continue;
        }
        if state != ipc::SLOT_LIVE && state != ipc::SLOT_DEAD {
            info.status = Status::Unusable(format!("slot {i} has unknown state {state}"));
            return info;
        }
        let pid = s.pid.load(Ordering::Relaxed);
        let alive =
            state == ipc::SLOT_LIVE && ipc::byte_is_locked(file, ipc::SLOT_LOCK_BASE + i as i64);
        if alive {
            live_pids.push(pid);
        }
        let ns = s.attached_ns.load(Ordering::Relaxed);
        let attached = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_nanos(ns))
            .filter(|t| ns != 0 && *t <= SystemTime::now() + Duration::from_secs(86_400));
        let pending = s
            .claims
            .iter()
            .chain(s.views.iter())
            .take(2 * ENTRIES)
            .any(|e| e.word.load(Ordering::Acquire) != 0);
        info.processes.push(Process {
            slot: i,
            pid,
            alive,
            recovery_pending: !alive && pending,
            attached,
            command: if alive && pid > 0 && pid <= i32::MAX as u32 {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .ok()
                    .map(|c| c.trim_end().to_string())
            } else {
                None
            },
        });
    }
    if !live_pids.is_empty() {
        info.status = Status::Live;
    } else if h.persist.load(Ordering::Relaxed) != 0 {
        info.status = Status::Persisted;
    }

    // SAFETY: the ring's control block starts at RING_OFFSET, inside the
    // mapping (segment_size includes it), 128-aligned (page-aligned offset);
    // it is made of atomics, valid for any bit pattern, and only read here.
    let ctrl = unsafe { &*(map.as_ptr().add(ipc::RING_OFFSET) as *const Control) };
    let head = ctrl.head.0.load(Ordering::Acquire) & !HEAD_LOCK;
    let tail = ctrl.producer.0.tail.load(Ordering::Acquire);
    let depth = tail.wrapping_sub(head);
    if tail < head || depth > capacity as u64 {
        info.status = Status::Unusable(format!(
            "the segment is corrupt: positions head {head}, tail {tail} do not fit a ring of {capacity} bytes"
        ));
        return info;
    }
    let sum = |lines: &[crate::ring::layout::Padded<SideCounters>],
               field: fn(&SideCounters) -> &AtomicU64| {
        lines
            .iter()
            .map(|l| field(&l.0).load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    };
    let single_owner = |multi: bool, word: u32| if multi { 0 } else { word };
    info.ring = Some(RingState {
        depth_bytes: depth,
        high_water_bytes: h
            .high_water
            .load(Ordering::Relaxed)
            .min(capacity as u64)
            .max(depth),
        messages_sent: sum(&ctrl.sent, |c| &c.messages),
        bytes_sent: sum(&ctrl.sent, |c| &c.bytes),
        messages_received: sum(&ctrl.received, |c| &c.messages),
        bytes_received: sum(&ctrl.received, |c| &c.bytes),
        send_blocks: sum(&ctrl.sent, |c| &c.blocks),
        receive_blocks: sum(&ctrl.received, |c| &c.blocks),
        stopped: ctrl.flags.0.stopped.load(Ordering::Relaxed) != 0,
        dropped_by_recovery: h.dropped.load(Ordering::Relaxed),
        reaped: h.reaped.load(Ordering::Relaxed),
        producer_pid: single_owner(
            matches!(mode, Mode::Mpsc | Mode::Mpmc),
            ctrl.producer.0.lock.load(Ordering::Relaxed),
        ),
        consumer_pid: single_owner(
            matches!(mode, Mode::Spmc | Mode::Mpmc),
            ctrl.consumer.0.lock.load(Ordering::Relaxed),
        ),
    });
    info
}
