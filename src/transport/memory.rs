//! `memory://NAME`: rings on the heap, shared by name within the process.
//!
//! The registry maps names to weak references: every handle opened on a name
//! holds the ring, the last handle dropped frees it, and the next open of the
//! name creates a fresh one.

use crate::channel::Shared;
use crate::config::{ChannelType, Mode};
use crate::error::{Error, Result};
use crate::ring::layout::capacity_for;
use crate::ring::Ring;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

fn registry() -> &'static Mutex<HashMap<String, Weak<Shared>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<Shared>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Opens (creates or attaches to) the ring called `name`.
///
/// * `buffer_size == 0`: attach to an existing channel and adopt its size,
///   mode and type; an error names the channel if there is none.
/// * otherwise: create it, or attach if one exists with the same (rounded)
///   size, mode and type; any difference is refused, naming it.
pub(crate) fn open(
    name: &str,
    buffer_size: usize,
    mode: Mode,
    channel_type: ChannelType,
) -> Result<Arc<Shared>> {
    let mut reg = registry().lock();
    reg.retain(|_, w| w.strong_count() > 0);
    if let Some(existing) = reg.get(name).and_then(Weak::upgrade) {
        if buffer_size == 0 {
            return Ok(existing);
        }
        let want = capacity_for(buffer_size).unwrap_or(usize::MAX);
        let have = existing.ring.capacity();
        let mismatch = if want != have {
            Some(format!(
                "ring size {want} (requested {buffer_size}) but it has {have}"
            ))
        } else if mode != existing.mode {
            Some(format!("mode {mode:?} but it is {:?}", existing.mode))
        } else if channel_type != existing.channel_type {
            Some(format!(
                "type {channel_type:?} but it is {:?}",
                existing.channel_type
            ))
        } else {
            None
        };
        return match mismatch {
            None => Ok(existing),
            Some(m) => Err(Error::invalid(format!(
                "memory://{name} already exists with a different configuration: asked for {m} (pass buffer size 0 to attach with its configuration)"
            ))),
        };
    }
    if buffer_size == 0 {
        return Err(Error::invalid(format!(
            "memory://{name} does not exist; a buffer size of 0 only attaches to an existing channel"
        )));
    }
    let capacity = capacity_for(buffer_size).ok_or_else(|| {
        Error::invalid(format!(
            "buffer size {buffer_size} is larger than the maximum of {} bytes",
            crate::ring::layout::MAX_CAPACITY
        ))
    })?;
    let shared = Arc::new(Shared::new(
        Ring::new_heap(capacity, mode)?,
        mode,
        channel_type,
    ));
    reg.insert(name.to_string(), Arc::downgrade(&shared));
    Ok(shared)
}
