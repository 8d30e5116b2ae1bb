//! Where rings live and how channels reach them. One module per URI scheme;
//! [`open`] is the one place that matches on the scheme.
//!
//! A transport hands back what it opened ([`Opened`]): the ring senders write
//! into, the ring receivers read from (one and the same on `memory://` and
//! `ipc://`; two local rings on a socket, with an I/O driver between them and
//! the peer), and the driver, if any.

// Shared memory and sockets are not modelled under loom (the ring itself is).
#[cfg(not(loom))]
pub(crate) mod ipc;
pub(crate) mod memory;
#[cfg(not(loom))]
pub(crate) mod net;

use crate::config::{Endpoint, NetOptions};
use crate::mode::{ChannelType, Mode};
use crate::ring::Ring;
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::{OnceLock, Weak};

/// One ring and what every handle using it needs to know: the channel's mode
/// and type as the application opened it (a socket end's local rings may run
/// in another mode underneath, see `net`), and the token written into
/// single-side locks.
pub(crate) struct Shared {
    pub(crate) ring: Ring,
    pub(crate) mode: Mode,
    pub(crate) channel_type: ChannelType,
    /// The process id, so that a side lock left by a dead process can be
    /// recognised.
    pub(crate) token: u32,
}

impl Shared {
    pub(crate) fn new(ring: Ring, mode: Mode, channel_type: ChannelType) -> Shared {
        Shared {
            ring,
            mode,
            channel_type,
            token: std::process::id().max(1),
        }
    }
}

/// What a transport opened.
pub(crate) struct Opened {
    /// Where senders claim and commit.
    pub tx: Arc<Shared>,
    /// Where receivers read (the same `Arc` as `tx` on memory and ipc).
    pub rx: Arc<Shared>,
    /// The I/O driver of a socket end; dropping it closes the sockets.
    pub driver: Option<Driver>,
}

impl Opened {
    /// One ring for both directions.
    fn single(shared: Arc<Shared>) -> Opened {
        Opened {
            tx: shared.clone(),
            rx: shared,
            driver: None,
        }
    }
}

#[cfg(not(loom))]
pub(crate) use net::Driver;
/// No socket transports under loom: a driver never exists.
#[cfg(loom)]
pub(crate) enum Driver {}

#[cfg(loom)]
impl Driver {
    pub(crate) fn stop(&self) {
        match *self {}
    }
    pub(crate) fn counters(&self) -> WireCounters {
        match *self {}
    }
    pub(crate) fn reset_counters(&self) {
        match *self {}
    }
    pub(crate) fn local_addr(&self) -> String {
        match *self {}
    }
    pub(crate) fn last_peer_error(&self) -> Option<String> {
        match *self {}
    }
}

/// A socket end's counters beyond the rings' own.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WireCounters {
    pub wire_bytes_sent: u64,
    pub wire_bytes_received: u64,
    pub messages_compressed: u64,
    pub checksum_failures: u64,
    pub frames_refused: u64,
    pub connects: u64,
    pub reconnects: u64,
    pub peers: u64,
}

/// Opens the channel at `endpoint`.
#[cfg_attr(loom, allow(unused_variables))]
pub(crate) fn open(
    endpoint: &Endpoint,
    buffer_size: usize,
    mode: Mode,
    channel_type: ChannelType,
    net: &NetOptions,
) -> Result<Opened> {
    match endpoint {
        Endpoint::Memory { name } => {
            memory::open(name, buffer_size, mode, channel_type).map(Opened::single)
        }
        #[cfg(not(loom))]
        Endpoint::Ipc { name, persist } => {
            ipc::open(name, buffer_size, mode, channel_type, *persist).map(Opened::single)
        }
        #[cfg(not(loom))]
        Endpoint::Tcp { .. } | Endpoint::Unix { .. } => {
            net::open(endpoint, buffer_size, mode, channel_type, net)
        }
        #[cfg(loom)]
        Endpoint::Ipc { .. } | Endpoint::Tcp { .. } | Endpoint::Unix { .. } => Err(
            Error::Unsupported("ipc:// and sockets are not available in loom builds".into()),
        ),
        Endpoint::Ws { .. } => Err(Error::Unsupported(
            "ws:// is not built yet (tcp:// and unix:// are)".into(),
        )),
    }
}

/// The channels of one scheme open in this process, by name: every open of a
/// name shares one [`Shared`], and the last handle dropped frees it (the map
/// holds weak references; those of channels that no longer exist are pruned
/// once the map has doubled since the last pruning, so an open costs the
/// same however many channels are open).
pub(crate) struct Registry(OnceLock<Mutex<Names>>);

/// A registry's map, and the size at which it is next pruned.
#[derive(Default)]
pub(crate) struct Names {
    map: HashMap<String, Weak<Shared>>,
    prune_at: usize,
}

impl std::ops::Deref for Names {
    type Target = HashMap<String, Weak<Shared>>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl std::ops::DerefMut for Names {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

impl Registry {
    pub(crate) const fn new() -> Registry {
        Registry(OnceLock::new())
    }

    /// Locks the map (pruned now and then, see [`Registry`]).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Names> {
        let mut names = self.0.get_or_init(Default::default).lock();
        if names.map.len() >= names.prune_at {
            names.map.retain(|_, w| w.strong_count() > 0);
            names.prune_at = (2 * names.map.len()).max(64);
        }
        names
    }
}
use crate::error::{Error, Result};
use crate::ring::layout::capacity_for;

/// Attaching to an existing channel: a non-zero `buffer_size` (rounded up),
/// `mode` and `channel_type` must match what the channel has (`have`); a
/// difference is refused, naming it. `buffer_size == 0` adopts the channel's.
pub(crate) fn check_same_config(
    scheme: &str,
    name: &str,
    buffer_size: usize,
    mode: Mode,
    channel_type: ChannelType,
    have: (usize, Mode, ChannelType),
) -> Result<()> {
    if buffer_size == 0 {
        return Ok(());
    }
    let want = capacity_for(buffer_size).unwrap_or(usize::MAX);
    let m = if want != have.0 {
        format!(
            "ring size {want} (requested {buffer_size}) but it has {}",
            have.0
        )
    } else if mode != have.1 {
        format!("mode {mode:?} but it is {:?}", have.1)
    } else if channel_type != have.2 {
        format!("type {channel_type:?} but it is {:?}", have.2)
    } else {
        return Ok(());
    };
    Err(Error::invalid(format!(
        "{scheme}://{name} already exists with a different configuration: asked for {m} (pass buffer size 0 to attach with its configuration)"
    )))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_registry_prunes_dead_names_once_it_has_doubled() {
        let reg = Registry::new();
        // 64 dead names: the 64th insert reaches the first pruning size.
        for i in 0..64 {
            reg.lock().insert(format!("dead{i}"), Weak::new());
        }
        assert_eq!(reg.lock().len(), 0, "pruned at 64");
        // Below the pruning size, a lock costs no walk over the names.
        for i in 0..63 {
            reg.lock().insert(format!("d{i}"), Weak::new());
            assert_eq!(reg.lock().len(), i + 1, "no pruning below 64 entries");
        }
    }
}
