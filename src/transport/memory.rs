//! `memory://NAME`: rings on the heap, shared by name within the process.
//!
//! The registry maps names to weak references: every handle opened on a name
//! holds the ring, the last handle dropped frees it, and the next open of the
//! name creates a fresh one.

use super::Shared;
use crate::error::{Error, Result};
use crate::mode::{ChannelType, Mode};
use crate::ring::layout::capacity_for;
use crate::ring::Ring;
use std::sync::{Arc, Weak};

/// The memory:// channels open in this process, by name.
static REGISTRY: super::Registry = super::Registry::new();

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
    let mut reg = REGISTRY.lock();
    if let Some(existing) = reg.get(name).and_then(Weak::upgrade) {
        super::check_same_config(
            "memory",
            name,
            buffer_size,
            mode,
            channel_type,
            (
                existing.ring.capacity(),
                existing.mode,
                existing.channel_type,
            ),
        )?;
        return Ok(existing);
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
