//! Zero-copy: the producer writes into the ring, the consumer reads the same
//! bytes. Exclusive `Producer`/`Consumer` handles skip the per-call side lock.
//!
//!   cargo run --release --example zero_copy

use psyne::{Channel, ChannelType, Mode};

const FRAME: usize = 64 * 1024;

fn main() -> Result<(), psyne::Error> {
    let ch = Channel::open("memory://frames", 1 << 20, Mode::Spsc, ChannelType::Multi)?;
    let mut consumer = ch.consumer()?;
    let reader = std::thread::spawn(move || {
        let mut sum = 0u64;
        for n in 0..100u32 {
            let frame = consumer.recv_until(None, None).unwrap(); // a view into the ring
            assert_eq!(frame.msg_type(), n);
            sum += frame.iter().map(|&b| b as u64).sum::<u64>();
        } // each view is released when dropped
        sum
    });
    let mut producer = ch.producer()?;
    let mut expected = 0u64;
    for n in 0..100u32 {
        let mut slot = producer.reserve_until(FRAME, None, None)?; // 64 KiB inside the ring
        for (i, b) in slot.iter_mut().enumerate() {
            *b = (i as u32 ^ n) as u8;
        }
        expected += slot.iter().map(|&b| b as u64).sum::<u64>();
        slot.send(n)?; // publish; nothing was copied
    }
    assert_eq!(reader.join().unwrap(), expected);
    println!("100 frames of {FRAME} bytes passed in place; checksum {expected}");
    Ok(())
}
