//! The C benchmark functions of `c/bench_c.c` (built by build.rs), which
//! call libpsyne through `include/psyne.h` as a C program does.

use std::time::Duration;

/// The ways through the C API `c/bench_c.c` measures (`enum c_path`).
#[derive(Clone, Copy)]
#[allow(dead_code)] // each bench uses some
pub enum Path {
    /// `psyne_send_data` / `psyne_receive_data` on channel handles.
    ChannelCopy = 0,
    /// `psyne_message_reserve` / `psyne_message_receive` on channel handles.
    ChannelReserve = 1,
    /// `psyne_producer_reserve` / `psyne_consumer_receive`.
    SideReserve = 2,
    /// `psyne_producer_send_data` / `psyne_consumer_receive_data`.
    SideCopy = 3,
    /// `psyne_producer_send_and_reserve` /
    /// `psyne_consumer_release_and_receive`.
    SideFused = 4,
}

#[repr(C)]
pub struct PingPong {
    _opaque: [u8; 0],
}

extern "C" {
    fn psyne_cbench_stream(path: i32, iters: u64, size: usize) -> u64;
    fn psyne_cbench_pingpong_start(path: i32) -> *mut PingPong;
    fn psyne_cbench_pingpong(p: *mut PingPong, iters: u64) -> u64;
    fn psyne_cbench_pingpong_stop(p: *mut PingPong);
}

/// `iters` messages of `size` bytes from this thread to a consumer thread.
#[allow(dead_code)]
pub fn stream(path: Path, iters: u64, size: usize) -> Duration {
    // SAFETY: plain values; the C function owns everything it makes.
    Duration::from_nanos(unsafe { psyne_cbench_stream(path as i32, iters, size) })
}

/// An echo thread answering 64-byte messages through the C API.
#[allow(dead_code)]
pub struct Echo(*mut PingPong);

#[allow(dead_code)]
impl Echo {
    pub fn start(path: Path) -> Echo {
        // SAFETY: returns a live handle or aborts.
        Echo(unsafe { psyne_cbench_pingpong_start(path as i32) })
    }
    /// `iters` round trips.
    pub fn round_trips(&mut self, iters: u64) -> Duration {
        // SAFETY: a live handle from `start`, used by this thread only.
        Duration::from_nanos(unsafe { psyne_cbench_pingpong(self.0, iters) })
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        // SAFETY: a live handle from `start`, stopped once.
        unsafe { psyne_cbench_pingpong_stop(self.0) }
    }
}
