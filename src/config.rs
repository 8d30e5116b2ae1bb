//! Channel configuration: modes, message typing, compression settings, and the
//! URI grammar (`scheme://target?key=value&...`).
//!
//! Every option a URI may carry is listed in [`OPTIONS`]; that table is the one
//! place options are defined, and the README's option table is written from it.

use crate::error::{Error, Result};
pub use crate::mode::{ChannelType, Mode};

/// Compression algorithm (every transport; see README, Compression).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum CompressionType {
    /// No compression.
    #[default]
    None = 0,
    /// LZ4 block compression.
    Lz4 = 1,
    /// Zstandard.
    Zstd = 2,
    /// Snappy.
    Snappy = 3,
}

impl CompressionType {
    /// Converts a C integer, refusing values outside 0..=3.
    pub fn from_raw(v: i64) -> Result<CompressionType> {
        Ok(match v {
            0 => CompressionType::None,
            1 => CompressionType::Lz4,
            2 => CompressionType::Zstd,
            3 => CompressionType::Snappy,
            _ => {
                return Err(Error::invalid(format!(
                    "compression type {v} is not one of NONE=0, LZ4=1, ZSTD=2, SNAPPY=3"
                )))
            }
        })
    }
}

/// What a channel end does to the messages it sends: compression and
/// checksums. Receivers need no configuration: every message records what
/// was done to it, and any end decodes any message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompressionConfig {
    /// The algorithm.
    pub kind: CompressionType,
    /// Zstd level (-7..=22; 0 = zstd's default, 3); ignored by LZ4 and Snappy.
    pub level: i32,
    /// Messages smaller than this are sent uncompressed (messages that do
    /// not get smaller are sent uncompressed too).
    pub min_size_threshold: usize,
    /// Put a CRC32C of every message (before compression) on it; receivers
    /// verify it and never deliver a message that does not match.
    pub enable_checksum: bool,
}

/// Range of [`CompressionConfig::level`].
pub const LEVELS: std::ops::RangeInclusive<i32> = -7..=22;

impl CompressionConfig {
    /// Refuses a level outside [`LEVELS`].
    pub fn validate(&self) -> Result<()> {
        if !LEVELS.contains(&self.level) {
            return Err(Error::invalid(format!(
                "compression level {} is outside -7..=22",
                self.level
            )));
        }
        Ok(())
    }
}

/// Which end of a network channel this handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accept peers.
    Listen,
    /// Connect to a listener (retrying with backoff).
    Connect,
}

/// Where a channel lives, parsed from its URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `memory://NAME`: in-process ring shared by name.
    Memory {
        /// Channel name.
        name: String,
    },
    /// `ipc://NAME`: shared-memory ring between processes.
    Ipc {
        /// Segment name.
        name: String,
        /// `persist=on`: the segment and its unread messages outlive the
        /// processes that use it, until they are read (or it is removed).
        persist: bool,
    },
    /// `tcp://HOST:PORT`.
    Tcp {
        /// Host name or address (empty, `*`, `0.0.0.0`, `[::]`: any).
        host: String,
        /// Port.
        port: u16,
        /// Listen or connect.
        role: Role,
    },
    /// `unix://PATH`.
    Unix {
        /// Socket path.
        path: String,
        /// Listen or connect.
        role: Role,
    },
    /// `ws://HOST:PORT/PATH`.
    Ws {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// Request path.
        path: String,
        /// Listen or connect.
        role: Role,
    },
}

/// One option a URI query may carry.
pub struct OptionSpec {
    /// The key, as written in the query.
    pub key: &'static str,
    /// Which schemes take it.
    pub schemes: &'static [&'static str],
    /// What values it takes.
    pub values: &'static str,
    /// What it does.
    pub doc: &'static str,
}

const NET: &[&str] = &["tcp", "unix", "ws"];
const ALL: &[&str] = &["memory", "ipc", "tcp", "unix", "ws"];
const IPC: &[&str] = &["ipc"];

/// Every URI option psyne understands. Unknown keys are refused.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec { key: "role", schemes: NET, values: "listen | connect", doc: "which end; default: tcp/ws listen on an empty/`*`/`0.0.0.0`/`[::]` host, connect otherwise; unix connects" },
    OptionSpec { key: "persist", schemes: IPC, values: "on | off", doc: "keep the segment and its unread messages when the last process detaches, until a later process reads them (default off: the last detach removes the segment and drops what is unread)" },
    OptionSpec { key: "metrics", schemes: ALL, values: "on | off", doc: "count messages and bytes (default on)" },
    OptionSpec { key: "spin", schemes: ALL, values: "0..=1000000", doc: "microseconds a blocking call on this handle polls before it sleeps (default 20; 0 = sleep at once; see Semantics)" },
    OptionSpec { key: "compression", schemes: ALL, values: "none | lz4 | zstd | snappy", doc: "compress the messages this handle sends (each only if it gets smaller; receivers decode without being told)" },
    OptionSpec { key: "level", schemes: ALL, values: "-7..=22", doc: "Zstd level (0 = zstd's default, 3); LZ4 and Snappy ignore it" },
    OptionSpec { key: "min_size", schemes: ALL, values: "bytes", doc: "compress only messages at least this large (default 0)" },
    OptionSpec { key: "checksum", schemes: ALL, values: "on | off", doc: "CRC32C of every message this handle sends; receivers always verify checksums and never deliver a mismatch" },
    OptionSpec { key: "broadcast", schemes: NET, values: "on | off", doc: "listener: send every message to every peer (default off: each message to one peer)" },
    OptionSpec { key: "max_peers", schemes: NET, values: "1..=65536", doc: "listener: most peers connected at once (default 1024); one more is refused" },
    OptionSpec { key: "handshake_timeout", schemes: NET, values: "1..=600000", doc: "milliseconds a peer has to complete its HELLO, and a large frame begun to arrive (default 5000)" },
    OptionSpec { key: "linger", schemes: NET, values: "0..=600000", doc: "milliseconds closing a handle waits for messages already sent to go out to a connected peer (default 1000; 0 = close at once, dropping them)" },
    OptionSpec { key: "ping_interval", schemes: &["ws"], values: "10..=600000", doc: "ws: milliseconds of silence from a peer after which it is pinged; a peer that then stays silent as long again is dropped (default 15000)" },
    OptionSpec { key: "reconnect_max", schemes: NET, values: "10..=600000", doc: "connector: longest wait between connection attempts, in milliseconds (backoff from 10 ms doubling, default 1000)" },
];

/// Socket-end options (tcp, unix, ws): the defaults, or what the URI set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetOptions {
    /// Compression and checksums of the frames sent.
    pub codec: CompressionConfig,
    /// Listener: every message to every peer.
    pub broadcast: bool,
    /// Listener: most peers at once.
    pub max_peers: usize,
    /// Time a peer has for its HELLO (and to finish a large frame).
    pub handshake_timeout: std::time::Duration,
    /// Connector: longest wait between attempts.
    pub reconnect_max: std::time::Duration,
    /// How long closing waits for queued messages to go out.
    pub linger: std::time::Duration,
    /// ws: silence after which a peer is pinged (and dropped after as much again).
    pub ping_interval: std::time::Duration,
}

impl Default for NetOptions {
    fn default() -> NetOptions {
        NetOptions {
            codec: CompressionConfig::default(),
            broadcast: false,
            max_peers: 1024,
            handshake_timeout: std::time::Duration::from_millis(5000),
            reconnect_max: std::time::Duration::from_millis(1000),
            linger: std::time::Duration::from_millis(1000),
            ping_interval: std::time::Duration::from_millis(15000),
        }
    }
}

fn parse_range(key: &str, v: &str, lo: u64, hi: u64) -> Result<u64> {
    match v.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(Error::invalid(format!(
            "{key}={v}: expected an integer from {lo} to {hi}"
        ))),
    }
}

/// A parsed URI: endpoint plus the options its query set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUri {
    /// Where the channel lives.
    pub endpoint: Endpoint,
    /// `metrics=` if given.
    pub metrics: Option<bool>,
    /// `spin=` if given.
    pub spin: Option<std::time::Duration>,
    /// Compression settings if any compression key was given.
    pub compression: Option<CompressionConfig>,
    /// Socket-end options (defaults unless the query set them).
    pub net: NetOptions,
}

/// Longest NAME accepted by `memory://` and `ipc://` (ipc turns it into a file name).
pub const MAX_NAME_LEN: usize = 200;

/// Longest polling phase `spin=` accepts, in microseconds.
pub const MAX_SPIN_MICROS: u64 = 1_000_000;

fn parse_spin(v: &str) -> Result<std::time::Duration> {
    match v.parse::<u64>() {
        Ok(us) if us <= MAX_SPIN_MICROS => Ok(std::time::Duration::from_micros(us)),
        _ => Err(Error::invalid(format!(
            "spin={v}: expected microseconds from 0 to {MAX_SPIN_MICROS}"
        ))),
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(Error::invalid(format!(
            "option {key}={v}: expected on or off"
        ))),
    }
}

fn validate_name(scheme: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!(
            "{scheme}:// needs a channel name, e.g. {scheme}://jobs"
        )));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{scheme}:// name is {} bytes; the limit is {MAX_NAME_LEN}",
            name.len()
        )));
    }
    if name == "." || name == ".." || name.contains(['/', '\0', '\\']) {
        return Err(Error::invalid(format!(
            "{scheme}:// name {name:?} may not contain '/', '\\', NUL or be '.'/'..'"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:@+".contains(c))
    {
        return Err(Error::invalid(format!(
            "{scheme}:// name {name:?}: use letters, digits and - _ . : @ +"
        )));
    }
    Ok(())
}

fn parse_host_port(scheme: &str, authority: &str) -> Result<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| Error::invalid(format!("{scheme}:// IPv6 host is missing ']'")))?;
        let after = &rest[end + 1..];
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| Error::invalid(format!("{scheme}:// needs HOST:PORT")))?;
        (format!("[{}]", &rest[..end]), port)
    } else {
        let i = authority
            .rfind(':')
            .ok_or_else(|| Error::invalid(format!("{scheme}://{authority}: needs HOST:PORT")))?;
        (authority[..i].to_string(), &authority[i + 1..])
    };
    let port: u16 = port.parse().map_err(|_| {
        Error::invalid(format!(
            "{scheme}:// port {port:?} is not a number in 0..=65535"
        ))
    })?;
    Ok((host, port))
}

fn is_wildcard(host: &str) -> bool {
    matches!(host, "" | "*" | "0.0.0.0" | "[::]")
}

/// Parses a channel URI. Errors name the problem.
pub fn parse_uri(uri: &str) -> Result<ParsedUri> {
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
        Error::invalid(format!(
            "URI {uri:?} has no scheme; expected e.g. memory://NAME"
        ))
    })?;
    if scheme == "wss" {
        return Err(Error::Unsupported(format!(
            "{uri:?}: wss:// (WebSocket over TLS) is not built; use ws:// behind a TLS-terminating proxy"
        )));
    }
    if !ALL.contains(&scheme) {
        return Err(Error::invalid(format!(
            "unknown URI scheme {scheme:?}; expected one of memory, ipc, tcp, unix, ws"
        )));
    }
    let (target, query) = match rest.split_once('?') {
        Some((t, q)) => (t, Some(q)),
        None => (rest, None),
    };

    let mut role = None;
    let mut metrics = None;
    let mut persist = false;
    let mut spin = None;
    let mut comp: Option<CompressionConfig> = None;
    let mut net = NetOptions::default();
    let mut seen: Vec<&str> = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| Error::invalid(format!("option {pair:?} needs a value (key=value)")))?;
        let spec = OPTIONS
            .iter()
            .find(|o| o.key == key)
            .ok_or_else(|| Error::invalid(format!("unknown option {key:?} in {uri:?}")))?;
        if !spec.schemes.contains(&scheme) {
            return Err(Error::invalid(format!(
                "option {key:?} does not apply to {scheme}://"
            )));
        }
        if seen.contains(&key) {
            return Err(Error::invalid(format!("option {key:?} given twice")));
        }
        seen.push(key);
        match key {
            "role" => {
                role = Some(match value {
                    "listen" => Role::Listen,
                    "connect" => Role::Connect,
                    _ => {
                        return Err(Error::invalid(format!(
                            "role={value}: expected listen or connect"
                        )))
                    }
                })
            }
            "metrics" => metrics = Some(parse_bool(key, value)?),
            "persist" => persist = parse_bool(key, value)?,
            "spin" => spin = Some(parse_spin(value)?),
            "compression" => {
                let kind = match value {
                    "none" => CompressionType::None,
                    "lz4" => CompressionType::Lz4,
                    "zstd" => CompressionType::Zstd,
                    "snappy" => CompressionType::Snappy,
                    _ => {
                        return Err(Error::invalid(format!(
                            "compression={value}: expected none, lz4, zstd or snappy"
                        )))
                    }
                };
                comp.get_or_insert_with(Default::default).kind = kind;
            }
            "level" => {
                let level: i32 = value
                    .parse()
                    .map_err(|_| Error::invalid(format!("level={value}: expected an integer")))?;
                if !LEVELS.contains(&level) {
                    return Err(Error::invalid(format!("level={level} is outside -7..=22")));
                }
                comp.get_or_insert_with(Default::default).level = level;
            }
            "min_size" => {
                let n: usize = value.parse().map_err(|_| {
                    Error::invalid(format!("min_size={value}: expected a byte count"))
                })?;
                comp.get_or_insert_with(Default::default).min_size_threshold = n;
            }
            "checksum" => {
                comp.get_or_insert_with(Default::default).enable_checksum = parse_bool(key, value)?
            }
            "broadcast" => net.broadcast = parse_bool(key, value)?,
            "max_peers" => net.max_peers = parse_range(key, value, 1, 65536)? as usize,
            "handshake_timeout" => {
                net.handshake_timeout =
                    std::time::Duration::from_millis(parse_range(key, value, 1, 600_000)?)
            }
            "linger" => {
                net.linger = std::time::Duration::from_millis(parse_range(key, value, 0, 600_000)?)
            }
            "ping_interval" => {
                net.ping_interval =
                    std::time::Duration::from_millis(parse_range(key, value, 10, 600_000)?)
            }
            "reconnect_max" => {
                net.reconnect_max =
                    std::time::Duration::from_millis(parse_range(key, value, 10, 600_000)?)
            }
            _ => unreachable!("every key in OPTIONS is handled"),
        }
    }

    let endpoint = match scheme {
        "memory" | "ipc" => {
            validate_name(scheme, target)?;
            let name = target.to_string();
            if scheme == "memory" {
                Endpoint::Memory { name }
            } else {
                Endpoint::Ipc { name, persist }
            }
        }
        "tcp" => {
            let (host, port) = parse_host_port(scheme, target)?;
            let role = role.unwrap_or(if is_wildcard(&host) {
                Role::Listen
            } else {
                Role::Connect
            });
            if role == Role::Connect && (is_wildcard(&host) || port == 0) {
                return Err(Error::invalid(format!(
                    "tcp://{target}: connecting needs a host and a non-zero port"
                )));
            }
            Endpoint::Tcp { host, port, role }
        }
        "ws" => {
            let (authority, path) = match target.find('/') {
                Some(i) => (&target[..i], &target[i..]),
                None => (target, "/"),
            };
            let (host, port) = parse_host_port(scheme, authority)?;
            let role = role.unwrap_or(if is_wildcard(&host) {
                Role::Listen
            } else {
                Role::Connect
            });
            if role == Role::Connect && (is_wildcard(&host) || port == 0) {
                return Err(Error::invalid(format!(
                    "ws://{target}: connecting needs a host and a non-zero port"
                )));
            }
            Endpoint::Ws {
                host,
                port,
                path: path.to_string(),
                role,
            }
        }
        "unix" => {
            if target.is_empty() || target.contains('\0') {
                return Err(Error::invalid(
                    "unix:// needs a socket path, e.g. unix:///tmp/app.sock",
                ));
            }
            // sun_path holds 108 bytes including the terminating NUL.
            if target.len() > 107 {
                return Err(Error::invalid(format!(
                    "unix:// path is {} bytes; the limit is 107",
                    target.len()
                )));
            }
            Endpoint::Unix {
                path: target.to_string(),
                role: role.unwrap_or(Role::Connect),
            }
        }
        _ => unreachable!("scheme checked above"),
    };
    Ok(ParsedUri {
        endpoint,
        metrics,
        spin,
        compression: comp,
        net,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(uri: &str) -> String {
        match parse_uri(uri) {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{uri}: expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn parses_each_scheme() {
        assert_eq!(
            parse_uri("memory://jobs").unwrap().endpoint,
            Endpoint::Memory {
                name: "jobs".into()
            }
        );
        assert_eq!(
            parse_uri("ipc://frames").unwrap().endpoint,
            Endpoint::Ipc {
                name: "frames".into(),
                persist: false
            }
        );
        assert_eq!(
            parse_uri("tcp://localhost:8080").unwrap().endpoint,
            Endpoint::Tcp {
                host: "localhost".into(),
                port: 8080,
                role: Role::Connect
            }
        );
        for l in [
            "tcp://:8080",
            "tcp://*:8080",
            "tcp://0.0.0.0:8080",
            "tcp://[::]:8080",
        ] {
            assert!(
                matches!(
                    parse_uri(l).unwrap().endpoint,
                    Endpoint::Tcp {
                        role: Role::Listen,
                        ..
                    }
                ),
                "{l}"
            );
        }
        assert_eq!(
            parse_uri("unix:///tmp/app.sock?role=listen")
                .unwrap()
                .endpoint,
            Endpoint::Unix {
                path: "/tmp/app.sock".into(),
                role: Role::Listen
            }
        );
        assert_eq!(
            parse_uri("ws://localhost:9000/feed").unwrap().endpoint,
            Endpoint::Ws {
                host: "localhost".into(),
                port: 9000,
                path: "/feed".into(),
                role: Role::Connect
            }
        );
        let p = parse_uri("tcp://h:1?compression=zstd&level=3&checksum=on&min_size=128").unwrap();
        assert_eq!(
            p.compression,
            Some(CompressionConfig {
                kind: CompressionType::Zstd,
                level: 3,
                min_size_threshold: 128,
                enable_checksum: true
            })
        );
    }

    #[test]
    fn spin_is_microseconds_on_every_scheme() {
        use std::time::Duration;
        assert_eq!(parse_uri("memory://a").unwrap().spin, None);
        assert_eq!(
            parse_uri("memory://a?spin=0").unwrap().spin,
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_uri("ipc://a?metrics=off&spin=250").unwrap().spin,
            Some(Duration::from_micros(250))
        );
        assert_eq!(
            parse_uri("tcp://h:1?spin=1000000").unwrap().spin,
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn refuses_bad_uris_with_a_reason() {
        assert!(err("jobs").contains("no scheme"));
        assert!(err("http://x").contains("unknown URI scheme"));
        assert!(err("memory://").contains("needs a channel name"));
        assert!(err("memory://a/b").contains("may not contain"));
        assert!(err("ipc://..").contains("may not contain"));
        assert!(err(&format!("memory://{}", "a".repeat(300))).contains("limit"));
        assert!(err("memory://a?bogus=1").contains("unknown option"));
        assert!(err("memory://a?role=listen").contains("does not apply"));
        assert!(err("memory://a?metrics=maybe").contains("on or off"));
        assert!(err("memory://a?metrics").contains("needs a value"));
        assert!(err("memory://a?metrics=on&metrics=off").contains("twice"));
        assert!(err("memory://a?spin=-1").contains("microseconds"));
        assert!(err("memory://a?spin=1000001").contains("0 to 1000000"));
        assert!(err("ipc://a?spin=fast").contains("microseconds"));
        assert!(err("tcp://localhost").contains("HOST:PORT"));
        assert!(err("tcp://localhost:99999").contains("port"));
        assert!(err("tcp://:0?role=connect").contains("connecting"));
        assert!(err("tcp://h:1?compression=gzip").contains("compression"));
        assert!(err("tcp://h:1?level=99").contains("outside"));
        assert!(err("unix://").contains("socket path"));
    }

    #[test]
    fn enums_from_c_integers_are_range_checked() {
        assert_eq!(Mode::from_raw(3).unwrap(), Mode::Mpmc);
        assert!(Mode::from_raw(4).is_err());
        assert!(Mode::from_raw(-1).is_err());
        assert!(ChannelType::from_raw(2).is_err());
        assert!(CompressionType::from_raw(7).is_err());
    }
}
