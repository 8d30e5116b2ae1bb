//! Where rings live and how channels reach them. One module per URI scheme.

pub(crate) mod ipc;
pub(crate) mod memory;
