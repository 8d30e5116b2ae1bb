//! Where rings live and how channels reach them. One module per URI scheme.

// Shared memory is not modelled under loom (the ring itself is).
#[cfg(not(loom))]
pub(crate) mod ipc;
pub(crate) mod memory;

use crate::channel::Shared;
use crate::config::{ChannelType, Mode};
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::sync::{OnceLock, Weak};

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
