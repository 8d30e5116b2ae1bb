//! One-attempt send and receive on a bare ring, shared by the unit tests
//! (`tests.rs`) and the loom models (`loom_tests.rs`).

use super::Ring;

/// One attempt to send a copy of `data`; false when the ring is full.
pub(super) fn try_send(r: &Ring, data: &[u8], t: u32) -> bool {
    match r.try_claim(data.len()) {
        Some(c) => {
            // SAFETY: the claim owns data.len() bytes at its payload pointer.
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), r.payload_ptr(c.pos), data.len())
            };
            assert!(r.commit(c, t));
            true
        }
        None => false,
    }
}

/// One attempt to receive: a copy of the next message and its type.
pub(super) fn try_recv(r: &Ring) -> Option<(Vec<u8>, u32)> {
    let rec = r.try_read(u32::MAX).unwrap()?;
    // SAFETY: the record is ours until released.
    let v =
        unsafe { std::slice::from_raw_parts(r.payload_ptr(rec.pos), rec.len() as usize) }.to_vec();
    let t = rec.msg_type();
    r.release(rec);
    Some((v, t))
}
