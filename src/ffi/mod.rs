//! The C ABI (see `docs/C_API.md`). Being written.
