//! The Rust engine of the Node example: it answers a Node front end
//! (`examples/node/frontend.js`) over psyne, and — for the benchmark in
//! `bindings/node/bench` — over the two transports such a team uses before
//! psyne: NDJSON on the child's stdin/stdout, and MessagePack frames on a
//! Unix socket.
//!
//! ```text
//! psyne-node-engine psyne REQ_URI REP_URI [RING_BYTES]  # requests on REQ_URI, replies on REP_URI (one channel if equal); rings of 64 MiB by default
//! psyne-node-engine ndjson                  # one JSON object per line on stdin/stdout
//! psyne-node-engine msgpack-unix PATH       # listens on PATH; frames: u32 LE length + MessagePack map
//! ```
//!
//! Messages over psyne, by message type:
//!
//! | type | payload | engine does |
//! |---|---|---|
//! | 1 CONTROL | MessagePack map `{id, op, ...}` | answers a CONTROL map (below) |
//! | 2 DATA | file contents | the bytes of the last `put`, or the answer to `get` |
//! | 3 ECHO | any bytes | sends them back, type 3 |
//! | 4 SINK | any bytes | counts them, no answer |
//! | 5 SINK_ACK | any bytes | answers an empty type 5 |
//!
//! Control operations: `ping` → `{id, op: "pong", pad}`; `put {name, size}`
//! followed by one DATA message → `{id, op: "stored", size}`; `get {name}` →
//! `{id, op: "file", size}` then one DATA message; `stats` → `{id, op:
//! "stats", sunk}` (SINK/SINK_ACK messages and bytes counted); `shutdown` →
//! `{id, op: "bye"}`, then exit. A malformed request gets `{id, op: "error",
//! error}`; the engine keeps going.
//!
//! The baselines speak the same operations in JSON or MessagePack, with the
//! bytes in a `data` field (base64 in JSON, bin in MessagePack): `ping`,
//! `sink` (no answer), `sink_ack` (→ `{id, op: "ack", size}`), `echo` (→ the
//! same `data` back).

use base64::Engine as _;
use psyne::{Channel, ChannelType, Mode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Read, Write};

const CONTROL: u32 = 1;
const DATA: u32 = 2;
const ECHO: u32 = 3;
const SINK: u32 = 4;
const SINK_ACK: u32 = 5;

/// Largest MessagePack frame the Unix-socket baseline accepts (checked
/// before allocating).
const MAX_FRAME: usize = 64 << 20;

/// Ring size of the engine's channels (the largest message is half of it).
const RING: usize = 64 << 20;

#[derive(Deserialize)]
struct Request<D> {
    id: u64,
    op: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    pad: Option<String>,
    #[serde(default)]
    data: Option<D>,
}

#[derive(Serialize, Default)]
struct Reply<D> {
    id: u64,
    op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sunk: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pad: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<D>,
}

type Failure = Box<dyn std::error::Error>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["psyne", req, rep] => serve_psyne(req, rep, RING),
        ["psyne", req, rep, ring] => match ring.parse() {
            Ok(ring) => serve_psyne(req, rep, ring),
            Err(e) => Err(format!("ring size {ring:?}: {e}").into()),
        },
        ["ndjson"] => serve_ndjson(),
        ["msgpack-unix", path] => serve_msgpack_unix(path),
        _ => Err(
            "usage: psyne-node-engine psyne REQ_URI REP_URI [RING_BYTES] | ndjson | msgpack-unix PATH".into(),
        ),
    };
    if let Err(e) = result {
        eprintln!("psyne-node-engine: {e}");
        std::process::exit(1);
    }
}

// ---- psyne ----------------------------------------------------------------

fn serve_psyne(req_uri: &str, rep_uri: &str, ring: usize) -> Result<(), Failure> {
    let open = |uri: &str| Channel::open(uri, ring, Mode::Spsc, ChannelType::Multi);
    let req = open(req_uri)?;
    let rep = if rep_uri == req_uri {
        req.clone()
    } else {
        open(rep_uri)?
    };
    eprintln!("psyne-node-engine: serving {req_uri} -> {rep_uri}");
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut pending_put: Option<(u64, String)> = None;
    let mut sunk = 0u64;
    loop {
        let msg = match req.recv() {
            Ok(m) => m,
            Err(psyne::Error::ChannelStopped) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        match msg.msg_type() {
            ECHO => rep.send(&msg, ECHO)?,
            SINK => sunk += 1,
            SINK_ACK => {
                sunk += 1;
                rep.send(&[], SINK_ACK)?;
            }
            DATA => {
                let Some((id, name)) = pending_put.take() else {
                    eprintln!("psyne-node-engine: DATA without a put; dropped");
                    continue;
                };
                let size = msg.len() as u64;
                files.insert(name, msg.to_vec());
                control(
                    &rep,
                    &Reply::<()> {
                        id,
                        op: "stored",
                        size: Some(size),
                        ..Reply::default()
                    },
                )?;
            }
            CONTROL => {
                let request: Request<()> = match rmp_serde::from_slice(&msg) {
                    Ok(r) => r,
                    Err(e) => {
                        let error = Some(format!("malformed request: {e}"));
                        control(
                            &rep,
                            &Reply::<()> {
                                op: "error",
                                error,
                                ..Reply::default()
                            },
                        )?;
                        continue;
                    }
                };
                drop(msg);
                let id = request.id;
                match request.op.as_str() {
                    "ping" => control(
                        &rep,
                        &Reply::<()> {
                            id,
                            op: "pong",
                            pad: request.pad,
                            ..Reply::default()
                        },
                    )?,
                    "put" => pending_put = Some((id, request.name.unwrap_or_default())),
                    "get" => {
                        let name = request.name.unwrap_or_default();
                        match files.get(&name) {
                            Some(bytes) => {
                                control(
                                    &rep,
                                    &Reply::<()> {
                                        id,
                                        op: "file",
                                        size: Some(bytes.len() as u64),
                                        ..Reply::default()
                                    },
                                )?;
                                // Written straight into the reply ring.
                                let mut slot = rep.reserve(bytes.len())?;
                                slot.copy_from_slice(bytes);
                                slot.send(DATA)?;
                            }
                            None => {
                                let error = Some(format!("no file named {name:?}"));
                                control(
                                    &rep,
                                    &Reply::<()> {
                                        id,
                                        op: "error",
                                        error,
                                        ..Reply::default()
                                    },
                                )?;
                            }
                        }
                    }
                    "stats" => control(
                        &rep,
                        &Reply::<()> {
                            id,
                            op: "stats",
                            sunk: Some(sunk),
                            ..Reply::default()
                        },
                    )?,
                    "shutdown" => {
                        control(
                            &rep,
                            &Reply::<()> {
                                id,
                                op: "bye",
                                ..Reply::default()
                            },
                        )?;
                        return Ok(());
                    }
                    other => {
                        let error = Some(format!("unknown op {other:?}"));
                        control(
                            &rep,
                            &Reply::<()> {
                                id,
                                op: "error",
                                error,
                                ..Reply::default()
                            },
                        )?;
                    }
                }
            }
            other => eprintln!("psyne-node-engine: message type {other} ignored"),
        }
    }
}

fn control(rep: &Channel, reply: &Reply<()>) -> Result<(), Failure> {
    rep.send(&rmp_serde::to_vec_named(reply)?, CONTROL)?;
    Ok(())
}

// ---- the baselines ----------------------------------------------------------

/// Answers one baseline request; None: no answer.
fn answer(op: &str, id: u64, pad: Option<String>, data: Option<Vec<u8>>) -> Option<Reply<Vec<u8>>> {
    let size = data.as_ref().map_or(0, |d| d.len() as u64);
    Some(match op {
        "ping" => Reply {
            id,
            op: "pong",
            pad,
            ..Reply::default()
        },
        "sink" => return None,
        "sink_ack" => Reply {
            id,
            op: "ack",
            size: Some(size),
            ..Reply::default()
        },
        "echo" => Reply {
            id,
            op: "echo",
            data,
            ..Reply::default()
        },
        other => Reply {
            id,
            op: "error",
            error: Some(format!("unknown op {other:?}")),
            ..Reply::default()
        },
    })
}

fn serve_ndjson() -> Result<(), Failure> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lines() {
        let line = line?;
        let reply = match serde_json::from_str::<Request<String>>(&line) {
            Ok(r) => {
                let data = r.data.map(|d| b64.decode(d)).transpose()?;
                answer(&r.op, r.id, r.pad, data)
            }
            Err(e) => Some(Reply {
                op: "error",
                error: Some(e.to_string()),
                ..Reply::default()
            }),
        };
        if let Some(reply) = reply {
            let reply = Reply {
                data: reply.data.map(|d| b64.encode(d)),
                id: reply.id,
                op: reply.op,
                size: reply.size,
                sunk: None,
                pad: reply.pad,
                error: reply.error,
            };
            serde_json::to_writer(&mut out, &reply)?;
            out.write_all(b"\n")?;
            out.flush()?;
        }
    }
    Ok(())
}

fn serve_msgpack_unix(path: &str) -> Result<(), Failure> {
    let _ = std::fs::remove_file(path);
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    eprintln!("psyne-node-engine: listening on {path}");
    let (mut conn, _) = listener.accept()?;
    let mut out = std::io::BufWriter::new(conn.try_clone()?);
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        match conn.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(
                format!("frame of {len} bytes is larger than the limit of {MAX_FRAME}").into(),
            );
        }
        buf.resize(len, 0);
        conn.read_exact(&mut buf)?;
        let reply = match rmp_serde::from_slice::<Request<serde_bytes::ByteBuf>>(&buf) {
            Ok(r) => answer(&r.op, r.id, r.pad, r.data.map(|d| d.into_vec())),
            Err(e) => Some(Reply {
                op: "error",
                error: Some(e.to_string()),
                ..Reply::default()
            }),
        };
        if let Some(reply) = reply {
            let reply = Reply {
                data: reply.data.map(serde_bytes::ByteBuf::from),
                id: reply.id,
                op: reply.op,
                size: reply.size,
                sunk: None,
                pad: reply.pad,
                error: reply.error,
            };
            let bytes = rmp_serde::to_vec_named(&reply)?;
            out.write_all(&(bytes.len() as u32).to_le_bytes())?;
            out.write_all(&bytes)?;
            out.flush()?;
        }
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}
