//! The stream wire protocol (`docs/PROTOCOL.md`): the HELLO each side sends
//! first, the 16-byte frame header, and the checks a receiver runs on both.
//!
//! Pure encoding and validation — no I/O — so that every stream transport
//! (tcp, unix, and ws, which carries the same bytes in WebSocket messages)
//! shares it, and the tests can feed it any bytes. Compression of frame
//! bodies is `codec.rs`'s; `transport/net/conn.rs` applies it while framing
//! and unframing.

use std::fmt;

/// `PSYN`, the first four bytes of every HELLO.
pub(crate) const MAGIC: [u8; 4] = *b"PSYN";
/// The protocol version this library speaks.
pub(crate) const VERSION: u16 = 1;
/// Size of a version-1 HELLO.
pub(crate) const HELLO_LEN: usize = 32;
/// Size of a frame header.
pub(crate) const HEADER_LEN: usize = 16;
/// Smallest `max_frame` a HELLO may announce.
pub(crate) const MIN_MAX_FRAME: u32 = 64;
/// Largest payload of a control frame.
pub(crate) const MAX_CONTROL_LEN: u32 = 1024;

/// Frame flag: `checksum` holds the CRC32C of the message.
pub(crate) const FLAG_CHECKSUM: u16 = 1;
/// Frame flags: the compression algorithm (bits 1–2).
pub(crate) const FLAG_COMPRESSION: u16 = 0b110;
/// Frame flag: a control frame.
pub(crate) const FLAG_CONTROL: u16 = 1 << 15;
/// Control code: the sender closes the connection; payload = reason.
pub(crate) const CONTROL_CLOSE: u32 = 1;

/// The compression algorithms this library decodes (HELLO `decoders`):
/// LZ4, Zstd and Snappy.
pub(crate) const DECODERS: u32 = 0b111;
/// Bytes before the compressed body of a compressed frame: the message's
/// length before compression (u32, little-endian).
pub(crate) const RAW_LEN_LEN: usize = 4;

/// HELLO `flags` bit: this side checksums the frames it sends.
const HELLO_FLAG_CHECKSUM: u32 = 1;
/// Highest `decoders` bitmask (LZ4 | Zstd | Snappy).
const ALL_DECODERS: u32 = 0b111;

/// Which end of a connection a side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Connector = 0,
    Listener = 1,
}

/// What a side announces in its HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hello {
    pub side: Side,
    pub mode: u8,
    pub channel_type: u8,
    pub checksums: bool,
    pub max_frame: u32,
    pub decoders: u32,
}

impl Hello {
    pub(crate) fn encode(&self) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&(HELLO_LEN as u16).to_le_bytes());
        b[8] = self.side as u8;
        b[9] = self.mode;
        b[10] = self.channel_type;
        let flags = if self.checksums {
            HELLO_FLAG_CHECKSUM
        } else {
            0
        };
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        b[16..20].copy_from_slice(&self.max_frame.to_le_bytes());
        b[20..24].copy_from_slice(&self.decoders.to_le_bytes());
        b
    }

    /// Checks the peer's HELLO in the order PROTOCOL.md gives; `own` is the
    /// side of the one reading it.
    pub(crate) fn decode(b: &[u8; HELLO_LEN], own: Side) -> Result<Hello, Violation> {
        if b[0..4] != MAGIC {
            return Err(Violation::new(
                Kind::BadMagic,
                format!("first bytes {:02x?} are not PSYN", &b[0..4]),
            ));
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(Violation::new(
                Kind::BadVersion,
                format!("peer speaks version {version}, this side version {VERSION}"),
            ));
        }
        let bad = |what: String| Err(Violation::new(Kind::BadHello, what));
        let hello_len = u16::from_le_bytes([b[6], b[7]]);
        if hello_len as usize != HELLO_LEN {
            return bad(format!("hello_len {hello_len}, expected {HELLO_LEN}"));
        }
        let side = match b[8] {
            0 => Side::Connector,
            1 => Side::Listener,
            r => return bad(format!("role {r} is neither 0 nor 1")),
        };
        if side == own {
            return bad(format!("both sides are {own:?}s"));
        }
        if b[9] > 3 {
            return bad(format!("mode {} is outside 0..=3", b[9]));
        }
        if b[10] > 1 {
            return bad(format!("channel_type {} is outside 0..=1", b[10]));
        }
        let flags = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        let max_frame = u32::from_le_bytes([b[16], b[17], b[18], b[19]]);
        let decoders = u32::from_le_bytes([b[20], b[21], b[22], b[23]]);
        if b[11] != 0 || b[24..32].iter().any(|&x| x != 0) {
            return bad("a reserved byte is not zero".into());
        }
        if flags & !HELLO_FLAG_CHECKSUM != 0 {
            return bad(format!("unknown flags {flags:#x}"));
        }
        if max_frame < MIN_MAX_FRAME {
            return bad(format!("max_frame {max_frame} is below {MIN_MAX_FRAME}"));
        }
        if decoders > ALL_DECODERS {
            return bad(format!("decoders {decoders:#x} has unknown bits"));
        }
        Ok(Hello {
            side,
            mode: b[9],
            channel_type: b[10],
            checksums: flags & HELLO_FLAG_CHECKSUM != 0,
            max_frame,
            decoders,
        })
    }
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub len: u32,
    pub msg_type: u32,
    pub flags: u16,
    pub checksum: u32,
}

impl Header {
    /// The header of a message frame (`checksum`: the CRC32C of the
    /// message, when the sender checksums; `algo`: its compression, 0 for
    /// none, `len` then counting the 4-byte raw length and the body).
    #[inline]
    pub(crate) fn message(len: u32, msg_type: u32, checksum: Option<u32>, algo: u8) -> Header {
        debug_assert!(algo <= 3);
        Header {
            len,
            msg_type,
            flags: if checksum.is_some() { FLAG_CHECKSUM } else { 0 } | (algo as u16) << 1,
            checksum: checksum.unwrap_or(0),
        }
    }

    /// A CLOSE control frame's header for a reason of `len` bytes.
    pub(crate) fn close(len: u32) -> Header {
        Header {
            len,
            msg_type: CONTROL_CLOSE,
            flags: FLAG_CONTROL,
            checksum: 0,
        }
    }

    #[inline]
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.len.to_le_bytes());
        b[4..8].copy_from_slice(&self.msg_type.to_le_bytes());
        b[8..10].copy_from_slice(&self.flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.checksum.to_le_bytes());
        b
    }

    /// Decodes and checks a header: `max_frame` is the receiver's limit;
    /// `decoders` the compression algorithms it announced. Nothing is
    /// allocated or read before this passes.
    #[inline]
    pub(crate) fn decode(
        b: &[u8; HEADER_LEN],
        max_frame: u32,
        decoders: u32,
    ) -> Result<Header, Violation> {
        let h = Header {
            len: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            msg_type: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            flags: u16::from_le_bytes([b[8], b[9]]),
            checksum: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        };
        let reserved = u16::from_le_bytes([b[10], b[11]]);
        let known = FLAG_CHECKSUM | FLAG_COMPRESSION | FLAG_CONTROL;
        if reserved != 0 || h.flags & !known != 0 {
            return Err(Violation::new(
                Kind::BadFlags,
                format!("flags {:#06x}, reserved {reserved:#06x}", h.flags),
            ));
        }
        if h.is_control() {
            if h.flags != FLAG_CONTROL || h.checksum != 0 {
                return Err(Violation::new(
                    Kind::BadFlags,
                    format!("control frame with flags {:#06x}", h.flags),
                ));
            }
            if h.len > MAX_CONTROL_LEN {
                return Err(Violation::new(
                    Kind::FrameTooLong,
                    format!("control frame of {} bytes (limit {MAX_CONTROL_LEN})", h.len),
                ));
            }
            if h.msg_type != CONTROL_CLOSE {
                return Err(Violation::new(
                    Kind::BadControl,
                    format!("unknown control code {}", h.msg_type),
                ));
            }
            return Ok(h);
        }
        if h.len > max_frame {
            return Err(Violation::new(
                Kind::FrameTooLong,
                format!(
                    "frame of {} bytes; this side accepts at most {max_frame}",
                    h.len
                ),
            ));
        }
        if h.flags & FLAG_COMPRESSION != 0 {
            let algo = (h.flags & FLAG_COMPRESSION) >> 1;
            if decoders & (1 << (algo - 1)) == 0 {
                return Err(Violation::new(
                    Kind::BadCompression,
                    format!("compression algorithm {algo}, which this side did not announce"),
                ));
            }
        }
        if h.flags & FLAG_COMPRESSION != 0 && (h.len as usize) < RAW_LEN_LEN {
            return Err(Violation::new(
                Kind::BadCompression,
                format!("compressed frame of {} bytes has no raw length", h.len),
            ));
        }
        if h.flags & FLAG_CHECKSUM == 0 && h.checksum != 0 {
            return Err(Violation::new(
                Kind::BadFlags,
                "checksum field set without the CHECKSUM flag".to_string(),
            ));
        }
        Ok(h)
    }

    #[inline]
    pub(crate) fn is_control(&self) -> bool {
        self.flags & FLAG_CONTROL != 0
    }

    #[inline]
    pub(crate) fn has_checksum(&self) -> bool {
        self.flags & FLAG_CHECKSUM != 0
    }

    /// The compression algorithm (0: none; 1 LZ4, 2 Zstd, 3 Snappy).
    #[inline]
    pub(crate) fn algo(&self) -> u8 {
        ((self.flags & FLAG_COMPRESSION) >> 1) as u8
    }
}

pub(crate) use crate::codec::checksum;

/// What a peer did wrong (PROTOCOL.md section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    BadMagic,
    BadVersion,
    BadHello,
    HandshakeTimeout,
    TooManyPeers,
    FrameTooLong,
    BadFlags,
    BadCompression,
    ChecksumMismatch,
    BadControl,
    Truncated,
    /// ws: a text message (psyne messages are binary).
    NotBinary,
    /// ws: a message that is not exactly one HELLO or one frame, or broken
    /// WebSocket framing.
    BadMessage,
    /// ws: the HTTP upgrade failed (not a WebSocket request, wrong path or
    /// subprotocol).
    BadUpgrade,
    /// ws: a peer that stayed silent through a ping.
    PingTimeout,
}

impl Kind {
    /// The tag a CLOSE reason starts with.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Kind::BadMagic => "bad-magic",
            Kind::BadVersion => "bad-version",
            Kind::BadHello => "bad-hello",
            Kind::HandshakeTimeout => "handshake-timeout",
            Kind::TooManyPeers => "too-many-peers",
            Kind::FrameTooLong => "frame-too-long",
            Kind::BadFlags => "bad-flags",
            Kind::BadCompression => "bad-compression",
            Kind::ChecksumMismatch => "checksum-mismatch",
            Kind::BadControl => "bad-control",
            Kind::Truncated => "truncated",
            Kind::NotBinary => "not-binary",
            Kind::BadMessage => "bad-message",
            Kind::BadUpgrade => "bad-upgrade",
            Kind::PingTimeout => "ping-timeout",
        }
    }

    /// Whether the receiver tells the peer with a CLOSE frame (not to a
    /// stranger that is not speaking psyne, nor on a stream that is gone).
    pub(crate) fn sends_close(self) -> bool {
        !matches!(self, Kind::BadMagic | Kind::Truncated | Kind::BadUpgrade)
    }
}

/// A protocol violation: its kind and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub kind: Kind,
    pub detail: String,
}

impl Violation {
    pub(crate) fn new(kind: Kind, detail: impl Into<String>) -> Violation {
        Violation {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.tag(), self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(side: Side) -> Hello {
        Hello {
            side,
            mode: 0,
            channel_type: 1,
            checksums: true,
            max_frame: 32752,
            decoders: DECODERS,
        }
    }

    #[test]
    fn hello_matches_the_documented_example() {
        let b = hello(Side::Connector).encode();
        let doc = "50 53 59 4E 01 00 20 00 00 00 01 00 01 00 00 00 F0 7F 00 00 07 00 00 00 00 00 00 00 00 00 00 00";
        let want: Vec<u8> = doc
            .split(' ')
            .map(|x| u8::from_str_radix(x, 16).unwrap())
            .collect();
        assert_eq!(&b[..], &want[..]);
        assert_eq!(
            Hello::decode(&b, Side::Listener),
            Ok(hello(Side::Connector))
        );
    }

    #[test]
    fn frame_matches_the_documented_example() {
        let h = Header::message(3, 7, Some(checksum(b"abc")), 0);
        let want = [3, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0xB7, 0x3F, 0x4B, 0x36];
        assert_eq!(h.encode(), want);
        assert_eq!(Header::decode(&want, 64, 0), Ok(h));
    }

    #[test]
    fn hello_violations_are_named() {
        let good = hello(Side::Connector).encode();
        let with = |i: usize, v: u8| {
            let mut b = good;
            b[i] = v;
            Hello::decode(&b, Side::Listener).unwrap_err().kind
        };
        assert_eq!(with(0, b'X'), Kind::BadMagic);
        assert_eq!(with(4, 2), Kind::BadVersion);
        assert_eq!(with(6, 33), Kind::BadHello);
        assert_eq!(with(8, 1), Kind::BadHello); // two listeners
        assert_eq!(with(8, 7), Kind::BadHello);
        assert_eq!(with(9, 4), Kind::BadHello);
        assert_eq!(with(10, 2), Kind::BadHello);
        assert_eq!(with(11, 1), Kind::BadHello);
        assert_eq!(with(13, 1), Kind::BadHello);
        assert_eq!(with(31, 1), Kind::BadHello);
        assert_eq!(with(20, 8), Kind::BadHello);
        let mut b = good;
        b[16..20].copy_from_slice(&63u32.to_le_bytes());
        assert_eq!(
            Hello::decode(&b, Side::Listener).unwrap_err().kind,
            Kind::BadHello
        );
    }

    #[test]
    fn header_violations_are_named() {
        let dec = |h: Header| Header::decode(&h.encode(), 1000, 0b001).map_err(|v| v.kind);
        assert_eq!(
            dec(Header::message(1001, 0, None, 0)),
            Err(Kind::FrameTooLong)
        );
        assert!(dec(Header::message(1000, 0, None, 0)).is_ok());
        let mut h = Header::message(4, 0, None, 0);
        h.flags = 1 << 3;
        assert_eq!(dec(h), Err(Kind::BadFlags));
        h.flags = 0b010; // LZ4: announced
        assert!(dec(h).is_ok());
        h.flags = 0b100; // Zstd: not announced
        assert_eq!(dec(h), Err(Kind::BadCompression));
        h.flags = 0b010;
        h.len = 3; // no room for the raw length
        assert_eq!(dec(h), Err(Kind::BadCompression));
        assert_eq!(Header::message(9, 1, None, 3).algo(), 3);
        assert_eq!(Header::message(9, 1, Some(5), 2).flags, 0b101);
        assert_eq!(dec(Header::close(1025)), Err(Kind::FrameTooLong));
        assert!(dec(Header::close(1024)).is_ok());
        let mut c = Header::close(0);
        c.msg_type = 2;
        assert_eq!(dec(c), Err(Kind::BadControl));
        c = Header::close(0);
        c.flags |= FLAG_CHECKSUM;
        assert_eq!(dec(c), Err(Kind::BadFlags));
        let mut b = Header::message(1, 0, None, 0).encode();
        b[10] = 1;
        assert_eq!(
            Header::decode(&b, 1000, 0).unwrap_err().kind,
            Kind::BadFlags
        );
    }
}
