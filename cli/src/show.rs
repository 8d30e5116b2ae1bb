//! `psyne inspect`: ipc:// segments as `psyne::inspect` reads them.

use crate::{exit, Failure, InspectArgs};
use psyne::inspect::{SegmentInfo, Status};
use serde_json::{json, Value};

fn status_name(s: &Status) -> &'static str {
    match s {
        Status::Live => "live",
        Status::Stale => "stale",
        Status::Persisted => "persisted",
        Status::Unusable(_) => "unusable",
    }
}

fn to_json(s: &SegmentInfo) -> Value {
    let ago = |t: Option<std::time::SystemTime>| {
        t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
    };
    json!({
        "name": s.name,
        "uri": format!("ipc://{}", s.name),
        "path": s.path,
        "file_bytes": s.file_bytes,
        "status": status_name(&s.status),
        "reason": match &s.status { Status::Unusable(r) => Some(r.clone()), _ => None },
        "config": s.config.as_ref().map(|c| json!({
            "capacity": c.capacity,
            "max_message": c.max_message,
            "mode": format!("{:?}", c.mode).to_uppercase(),
            "type": format!("{:?}", c.channel_type).to_uppercase(),
            "creator_pid": c.creator_pid,
            "layout_version": c.layout_version,
            "persist": c.persist,
        })),
        "processes": s.processes.iter().map(|p| json!({
            "slot": p.slot,
            "pid": p.pid,
            "alive": p.alive,
            "recovery_pending": p.recovery_pending,
            "attached_unix_s": ago(p.attached),
            "command": p.command,
        })).collect::<Vec<_>>(),
        "ring": s.ring.as_ref().map(|r| json!({
            "depth_bytes": r.depth_bytes,
            "high_water_bytes": r.high_water_bytes,
            "messages_sent": r.messages_sent,
            "bytes_sent": r.bytes_sent,
            "messages_received": r.messages_received,
            "bytes_received": r.bytes_received,
            "send_blocks": r.send_blocks,
            "receive_blocks": r.receive_blocks,
            "stopped": r.stopped,
            "dropped_by_recovery": r.dropped_by_recovery,
            "reaped": r.reaped,
            "producer_pid": r.producer_pid,
            "consumer_pid": r.consumer_pid,
        })),
    })
}

fn describe(s: &SegmentInfo) -> String {
    let mut out = vec![format!(
        "ipc://{}  {}  ({}, {} bytes)",
        s.name,
        status_name(&s.status),
        s.path.display(),
        s.file_bytes
    )];
    if let Status::Unusable(why) = &s.status {
        out.push(format!("  unusable: {why}"));
    }
    if let Some(c) = &s.config {
        out.push(format!(
            "  config: ring {} bytes, max message {} bytes, {:?}, {:?}, created by pid {}, layout {}{}",
            c.capacity,
            c.max_message,
            c.mode,
            c.channel_type,
            c.creator_pid,
            c.layout_version,
            if c.persist { ", persist=on" } else { "" }
        ));
    }
    if s.processes.is_empty() && s.config.is_some() {
        out.push("  processes: none attached".into());
    }
    for p in &s.processes {
        let when = p
            .attached
            .and_then(|t| t.elapsed().ok())
            .map(|d| format!(", attached {:.0} s ago", d.as_secs_f64()))
            .unwrap_or_default();
        out.push(format!(
            "  process: slot {} pid {} {}{}{}{}",
            p.slot,
            p.pid,
            if p.alive { "alive" } else { "dead" },
            p.command
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default(),
            when,
            if p.recovery_pending {
                ", recovery pending"
            } else {
                ""
            },
        ));
    }
    if let Some(r) = &s.ring {
        out.push(format!(
            "  depth: {} bytes queued, high-water mark {} bytes{}",
            r.depth_bytes,
            r.high_water_bytes,
            if r.stopped { ", stopped" } else { "" }
        ));
        out.push(format!(
            "  sent: {} messages, {} bytes, {} blocked sends",
            r.messages_sent, r.bytes_sent, r.send_blocks
        ));
        out.push(format!(
            "  received: {} messages, {} bytes, {} empty receives",
            r.messages_received, r.bytes_received, r.receive_blocks
        ));
        out.push(format!(
            "  recovery: {} dead processes reaped, {} messages dropped; side locks: producer pid {}, consumer pid {}",
            r.reaped, r.dropped_by_recovery, r.producer_pid, r.consumer_pid
        ));
    }
    out.join("\n")
}

pub fn inspect(a: InspectArgs) -> Result<u8, Failure> {
    if let Some(uri) = a
        .uris
        .iter()
        .find(|u| !u.starts_with("ipc://") && u.contains("://"))
    {
        return Err(Failure(
            exit::USAGE,
            format!("{uri}: only ipc:// segments can be inspected"),
        ));
    }
    if a.clean {
        let targets: Vec<String> = if a.uris.is_empty() {
            psyne::inspect::list()?
                .into_iter()
                .filter(|s| s.status == Status::Stale)
                .map(|s| s.name)
                .collect()
        } else {
            a.uris
                .iter()
                .map(|u| u.trim_start_matches("ipc://").to_string())
                .collect()
        };
        let mut removed = Vec::new();
        for name in targets {
            if psyne::inspect::remove_stale(&name)? {
                removed.push(name);
            }
        }
        if a.json {
            out!("{}", json!({ "removed": removed }));
        } else if removed.is_empty() {
            out!("no stale segment removed");
        } else {
            for n in &removed {
                out!("removed stale ipc://{n}");
            }
        }
        return Ok(exit::OK);
    }
    if a.all {
        let all = psyne::inspect::list()?;
        if a.json {
            out!("{}", Value::Array(all.iter().map(to_json).collect()));
        } else if all.is_empty() {
            out!("no psyne segment in /dev/shm");
        } else {
            for s in &all {
                out!("{}", describe(s));
            }
        }
        return Ok(exit::OK);
    }
    let found = a
        .uris
        .iter()
        .map(|u| psyne::inspect::segment(u))
        .collect::<Result<Vec<_>, _>>()?;
    if a.json {
        let v: Vec<Value> = found.iter().map(to_json).collect();
        out!(
            "{}",
            if v.len() == 1 {
                v[0].clone()
            } else {
                Value::Array(v)
            }
        );
    } else {
        for s in &found {
            out!("{}", describe(s));
        }
    }
    Ok(if found.iter().all(|s| s.status == Status::Live) {
        exit::OK
    } else {
        exit::NOT_LIVE
    })
}
