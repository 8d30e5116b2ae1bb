//! Where rings live and how channels reach them. One module per URI scheme.

// Shared memory is not modelled under loom (the ring itself is).
#[cfg(not(loom))]
pub(crate) mod ipc;
pub(crate) mod memory;
