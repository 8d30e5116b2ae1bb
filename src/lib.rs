//! # psyne — zero-copy byte-message channels
//!
//! Bounded SPSC/SPMC/MPSC/MPMC channels of byte messages, each with a `u32`
//! type, opened by URI. Reservations hand out bytes *inside* the ring, and
//! received messages are views of those same bytes: nothing is copied.
//!
//! ```
//! use psyne::{Channel, Mode, ChannelType};
//!
//! let tx = Channel::open("memory://lib-doc", 1 << 16, Mode::Spsc, ChannelType::Multi)?;
//! let rx = Channel::open("memory://lib-doc", 0, Mode::Spsc, ChannelType::Multi)?; // attach
//!
//! let worker = std::thread::spawn(move || {
//!     let msg = rx.recv().unwrap();            // waits, without spinning forever
//!     (msg.to_vec(), msg.msg_type())
//! });
//! let mut slot = tx.reserve(11)?;              // 11 bytes inside the ring
//! slot.copy_from_slice(b"hello world");
//! slot.send(42)?;                              // publish with type 42
//! assert_eq!(worker.join().unwrap(), (b"hello world".to_vec(), 42));
//! # Ok::<(), psyne::Error>(())
//! ```
//!
//! The data path, top-down: [`config`] parses the URI → [`Channel`]
//! (`channel.rs`) → a transport (`transport/`) → the ring (`ring/`) and,
//! on sockets, the wire codec (`wire.rs`); compression and checksums of any
//! transport are `codec.rs`'s.
//! The C ABI lives in `ffi/`; [`inspect`] reads `ipc://` segments without
//! attaching (what `psyne inspect` shows).
//!
//! | scheme | status |
//! |---|---|
//! | `memory://NAME` | in-process ring shared by name |
//! | `ipc://NAME` | shared-memory ring between processes (`docs/IPC.md`) |
//! | `tcp://HOST:PORT`, `unix://PATH` | stream sockets, listener or connector (`docs/NETWORK.md`, wire format `docs/PROTOCOL.md`) |
//! | `ws://HOST:PORT/PATH` | WebSocket: the same roles and protocol in binary messages, for browsers and any WebSocket client (`docs/NETWORK.md`, `docs/PROTOCOL.md` section 8); `wss://` returns [`Error::Unsupported`] |

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod callback;
mod channel;
mod codec;
pub mod config;
mod error;
pub mod ffi;
pub(crate) mod fork;
// Reads ipc:// segments; no shared memory under loom.
#[cfg(not(loom))]
pub mod inspect;
mod mode;
pub(crate) mod ring;
pub(crate) mod sync;
mod transport;
// The stream wire protocol; there are no sockets under loom.
#[cfg(not(loom))]
mod wire;

pub use callback::ReceiveCallback;
pub use channel::{Channel, ChannelBuilder, Consumer, Metrics, Producer, ReadGuard, WriteGuard};
pub use config::{ChannelType, CompressionConfig, CompressionType, Mode};
pub use error::{Error, Result};
pub use ring::layout::{MAX_CAPACITY, MIN_CAPACITY};
pub use ring::wait::CancelToken;

/// README.md's Rust snippets compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The library version (`CARGO_PKG_VERSION`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
