//! `psyne::inspect`: a live segment as seen from outside, and copies of it
//! made stale, truncated or corrupt — reported, never trusted.

use psyne::inspect::{self, Status};
use psyne::{Channel, ChannelType, Mode};
use std::os::unix::fs::OpenOptionsExt;

/// Offset of the ring's control block in a segment (docs/IPC.md).
const RING_OFFSET: u64 = 143_360;

fn name(what: &str) -> String {
    format!("inspect-test-{what}-{}", std::process::id())
}

fn write_segment(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    use std::io::Write;
    let path = std::path::PathBuf::from(format!("/dev/shm/psyne-{name}"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    f.write_all(bytes).unwrap();
    path
}

#[test]
fn a_live_segment_and_its_copies() {
    let live = name("live");
    let ch = Channel::open(
        &format!("ipc://{live}"),
        1 << 16,
        Mode::Mpsc,
        ChannelType::Multi,
    )
    .unwrap();
    for i in 0..5u32 {
        ch.send(&[7u8; 100], i).unwrap();
    }
    drop(ch.recv().unwrap());

    let seg = inspect::segment(&format!("ipc://{live}")).unwrap();
    assert_eq!(seg.status, Status::Live);
    let cfg = seg.config.as_ref().unwrap();
    assert_eq!(
        (cfg.capacity, cfg.mode, cfg.channel_type),
        (1 << 16, Mode::Mpsc, ChannelType::Multi)
    );
    assert_eq!(cfg.creator_pid, std::process::id());
    assert_eq!(seg.processes.len(), 1);
    assert!(seg.processes[0].alive && seg.processes[0].pid == std::process::id());
    let ring = seg.ring.as_ref().unwrap();
    assert_eq!((ring.messages_sent, ring.bytes_sent), (5, 500));
    assert_eq!((ring.messages_received, ring.bytes_received), (1, 100));
    // Four records of 16 + 100 bytes, rounded to 16, are queued.
    assert_eq!(ring.depth_bytes, 4 * 128);
    assert!(ring.high_water_bytes >= ring.depth_bytes);
    assert_eq!(ring.consumer_pid, 0, "no receive in progress");
    assert!(inspect::list()
        .unwrap()
        .iter()
        .any(|s| s.name == live && s.status == Status::Live));
    assert!(
        !inspect::remove_stale(&live).unwrap(),
        "a live segment is never removed"
    );

    // A byte-for-byte copy under another name: nobody holds its locks.
    let bytes = std::fs::read(format!("/dev/shm/psyne-{live}")).unwrap();
    let stale = name("stale");
    let path = write_segment(&stale, &bytes);
    let seg = inspect::segment(&stale).unwrap();
    assert_eq!(seg.status, Status::Stale);
    assert!(!seg.processes[0].alive);
    assert_eq!(seg.ring.as_ref().unwrap().messages_sent, 5);

    // Positions that do not fit the ring: corrupt, reported.
    let corrupt = name("corrupt");
    let mut bad = bytes.clone();
    let tail = RING_OFFSET as usize; // producer line: tail first
    bad[tail..tail + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let cpath = write_segment(&corrupt, &bad);
    let seg = inspect::segment(&corrupt).unwrap();
    assert!(
        matches!(&seg.status, Status::Unusable(why) if why.contains("corrupt")),
        "{:?}",
        seg.status
    );
    assert!(
        !inspect::remove_stale(&corrupt).unwrap(),
        "unusable files are left alone"
    );

    // Truncated: the header's size and the file's disagree.
    let short = name("short");
    let spath = write_segment(&short, &bytes[..bytes.len() - 4096]);
    let seg = inspect::segment(&short).unwrap();
    assert!(
        matches!(&seg.status, Status::Unusable(_)),
        "{:?}",
        seg.status
    );
    assert!(seg.ring.is_none());

    // A slot state no psyne writes.
    let odd = name("odd-slot");
    let mut weird = bytes.clone();
    weird[4096..4100].copy_from_slice(&9u32.to_le_bytes());
    let opath = write_segment(&odd, &weird);
    assert!(matches!(
        inspect::segment(&odd).unwrap().status,
        Status::Unusable(_)
    ));

    assert!(inspect::remove_stale(&stale).unwrap());
    assert!(!path.exists());
    for p in [cpath, spath, opath] {
        std::fs::remove_file(p).unwrap();
    }
    assert!(inspect::segment(&stale).is_err(), "gone");
    assert!(inspect::segment("../etc").is_err(), "names are checked");

    // persist=on: kept with its unread messages after the last detach, and
    // never taken for stale.
    let kept = name("persisted");
    let ch = Channel::open(
        &format!("ipc://{kept}?persist=on"),
        1 << 16,
        Mode::Spsc,
        ChannelType::Multi,
    )
    .unwrap();
    ch.send(b"for later", 3).unwrap();
    drop(ch);
    let seg = inspect::segment(&kept).unwrap();
    assert_eq!(seg.status, Status::Persisted);
    assert!(seg.config.as_ref().unwrap().persist);
    assert_eq!(seg.ring.as_ref().unwrap().messages_sent, 1);
    assert!(!inspect::remove_stale(&kept).unwrap());
    std::fs::remove_file(format!("/dev/shm/psyne-{kept}")).unwrap();
    assert!(inspect::segment("tcp://localhost:1").is_err());
}
