//! The one error type of the crate. Every variant maps 1:1 to a C result code
//! (`psyne_error_t`, see `docs/C_API.md`), so the Rust, C and Go faces report the
//! same failures the same way.

use std::fmt;

/// Everything that can go wrong in psyne.
///
/// Variants that carry a `String` carry the detail text a person needs to fix
/// the problem (which option, which size, which channel).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A bad argument: malformed URI, unknown option, out-of-range value,
    /// message too large, receive buffer too small, or use beyond the channel's mode.
    InvalidArgument(String),
    /// A ring could not be allocated.
    OutOfMemory(String),
    /// A non-blocking send or reservation found no room.
    ChannelFull,
    /// A non-blocking receive found nothing queued.
    NoMessage,
    /// The channel was stopped (receivers first drain what is queued).
    ChannelStopped,
    /// The feature is not available in this build (yet).
    Unsupported(String),
    /// An operating-system error.
    Io(String),
    /// A waiting call ran out of time.
    Timeout,
    /// A waiting call was cancelled through a [`CancelToken`](crate::CancelToken).
    Cancelled,
    /// An internal failure (for example a panic caught at the C boundary).
    Unknown(String),
}

impl Error {
    /// The C result code of this error (`PSYNE_ERROR_*`).
    pub fn code(&self) -> i32 {
        match self {
            Error::InvalidArgument(_) => -1,
            Error::OutOfMemory(_) => -2,
            Error::ChannelFull => -3,
            Error::NoMessage => -4,
            Error::ChannelStopped => -5,
            Error::Unsupported(_) => -6,
            Error::Io(_) => -7,
            Error::Timeout => -8,
            Error::Cancelled => -9,
            Error::Unknown(_) => -99,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }

    pub(crate) fn io(context: &str, err: std::io::Error) -> Error {
        Error::Io(format!("{context}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::OutOfMemory(m) => write!(f, "out of memory: {m}"),
            Error::ChannelFull => f.write_str("channel full"),
            Error::NoMessage => f.write_str("no message"),
            Error::ChannelStopped => f.write_str("channel stopped"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::Io(m) => write!(f, "I/O error: {m}"),
            Error::Timeout => f.write_str("timed out"),
            Error::Cancelled => f.write_str("cancelled"),
            Error::Unknown(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// `Result<T, psyne::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_c_abi() {
        let all = [
            (Error::InvalidArgument(String::new()), -1),
            (Error::OutOfMemory(String::new()), -2),
            (Error::ChannelFull, -3),
            (Error::NoMessage, -4),
            (Error::ChannelStopped, -5),
            (Error::Unsupported(String::new()), -6),
            (Error::Io(String::new()), -7),
            (Error::Timeout, -8),
            (Error::Cancelled, -9),
            (Error::Unknown(String::new()), -99),
        ];
        for (e, code) in all {
            assert_eq!(e.code(), code, "{e}");
        }
    }
}
