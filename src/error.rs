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
    /// message too large, or use beyond the channel's mode.
    InvalidArgument(String),
    /// A copying receive's buffer is smaller than the next message, which
    /// stays queued. Its code is that of [`Error::InvalidArgument`].
    BufferTooSmall {
        /// Bytes the buffer has.
        capacity: usize,
        /// Bytes the next message needs.
        needed: usize,
    },
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

/// The one table of result codes: `(code, name)`. Rust's [`Error::code`]
/// and `Display`, the C API's `psyne_error_t` conversion and
/// `psyne_error_string` are all read from it (the Go binding's names are
/// checked against it by `bindings/go/errors_test.go`'s table, which repeats
/// these names).
pub(crate) const CODES: [(i32, &str); 11] = [
    (0, "ok"),
    (-1, "invalid argument"),
    (-2, "out of memory"),
    (-3, "channel full"),
    (-4, "no message"),
    (-5, "channel stopped"),
    (-6, "unsupported"),
    (-7, "I/O error"),
    (-8, "timeout"),
    (-9, "cancelled"),
    (-99, "unknown error"),
];

/// The name of a result code in [`CODES`], if it is one.
pub(crate) fn code_name(code: i32) -> Option<&'static str> {
    CODES.iter().find(|&&(c, _)| c == code).map(|&(_, n)| n)
}

impl Error {
    /// The C result code of this error (`PSYNE_ERROR_*`).
    pub fn code(&self) -> i32 {
        match self {
            Error::InvalidArgument(_) | Error::BufferTooSmall { .. } => -1,
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

impl Error {
    /// The whole text of an error that carries no detail (its code's
    /// name); `None` for one that does.
    pub(crate) fn plain_name(&self) -> Option<&'static str> {
        // Direct, not a search of CODES: a failing poll asks every time
        // (the unit test checks these against the table).
        match self {
            Error::ChannelFull => Some("channel full"),
            Error::NoMessage => Some("no message"),
            Error::ChannelStopped => Some("channel stopped"),
            Error::Timeout => Some("timeout"),
            Error::Cancelled => Some("cancelled"),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    /// The code's name from [`CODES`], then the detail if there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(code_name(self.code()).unwrap_or("unknown error"))?;
        match self {
            Error::InvalidArgument(m)
            | Error::OutOfMemory(m)
            | Error::Unsupported(m)
            | Error::Io(m)
            | Error::Unknown(m) => write!(f, ": {m}"),
            Error::BufferTooSmall { capacity, needed } => write!(
                f,
                ": receive buffer of {capacity} bytes is too small: the next message needs {needed} bytes (it stays queued)"
            ),
            Error::ChannelFull
            | Error::NoMessage
            | Error::ChannelStopped
            | Error::Timeout
            | Error::Cancelled => Ok(()),
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
    fn plain_names_are_the_code_names() {
        for e in [
            Error::ChannelFull,
            Error::NoMessage,
            Error::ChannelStopped,
            Error::Timeout,
            Error::Cancelled,
        ] {
            assert_eq!(e.plain_name(), code_name(e.code()));
            assert_eq!(e.plain_name().map(String::from), Some(e.to_string()));
        }
        assert_eq!(Error::invalid("x").plain_name(), None);
    }

    #[test]
    fn codes_match_the_c_abi() {
        let all = [
            (Error::InvalidArgument(String::new()), -1),
            (
                Error::BufferTooSmall {
                    capacity: 1,
                    needed: 2,
                },
                -1,
            ),
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
            // Display starts with the table's name for the code.
            assert!(e.to_string().starts_with(code_name(code).unwrap()), "{e}");
        }
        assert_eq!(
            Error::BufferTooSmall {
                capacity: 8,
                needed: 100
            }
            .to_string(),
            "invalid argument: receive buffer of 8 bytes is too small: the next message needs 100 bytes (it stays queued)"
        );
    }
}
