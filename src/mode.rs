//! The plain types that say how a channel is used: its concurrency [`Mode`]
//! and whether messages carry a type ([`ChannelType`]). A leaf module: the
//! ring, the transports and the URI parser all depend on it.

use crate::error::{Error, Result};

/// How many threads (or processes) may send and receive at the same time.
///
/// Using a single side concurrently (two senders on [`Mode::Spsc`]) is refused
/// with [`Error::InvalidArgument`]; it never corrupts the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Mode {
    /// One sender, one receiver.
    Spsc = 0,
    /// One sender, many competing receivers.
    Spmc = 1,
    /// Many senders, one receiver.
    Mpsc = 2,
    /// Many senders, many competing receivers.
    Mpmc = 3,
}

impl Mode {
    /// Whether several senders may be active at once.
    pub fn multi_producer(self) -> bool {
        matches!(self, Mode::Mpsc | Mode::Mpmc)
    }
    /// Whether several receivers may be active at once.
    pub fn multi_consumer(self) -> bool {
        matches!(self, Mode::Spmc | Mode::Mpmc)
    }
    /// Converts a C integer, refusing values outside 0..=3.
    pub fn from_raw(v: i64) -> Result<Mode> {
        Ok(match v {
            0 => Mode::Spsc,
            1 => Mode::Spmc,
            2 => Mode::Mpsc,
            3 => Mode::Mpmc,
            _ => {
                return Err(Error::invalid(format!(
                    "channel mode {v} is not one of SPSC=0, SPMC=1, MPSC=2, MPMC=3"
                )))
            }
        })
    }
}

/// Whether each message carries its own `u32` type.
///
/// On a [`ChannelType::Single`] channel the type is not carried: receivers
/// always see type 0, and sending a non-zero type is refused with
/// [`Error::InvalidArgument`] (so a type is never silently dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ChannelType {
    /// One message type per channel (always 0).
    Single = 0,
    /// Every message carries a `u32` type.
    Multi = 1,
}

impl ChannelType {
    /// Converts a C integer, refusing values outside 0..=1.
    pub fn from_raw(v: i64) -> Result<ChannelType> {
        match v {
            0 => Ok(ChannelType::Single),
            1 => Ok(ChannelType::Multi),
            _ => Err(Error::invalid(format!(
                "channel type {v} is not one of SINGLE=0, MULTI=1"
            ))),
        }
    }
}

impl Mode {
    /// The mode with these sides (`multi_producer`, `multi_consumer`).
    #[cfg_attr(loom, allow(dead_code))] // used by the socket driver
    pub(crate) fn from_sides(multi_producer: bool, multi_consumer: bool) -> Mode {
        match (multi_producer, multi_consumer) {
            (false, false) => Mode::Spsc,
            (false, true) => Mode::Spmc,
            (true, false) => Mode::Mpsc,
            (true, true) => Mode::Mpmc,
        }
    }
}
