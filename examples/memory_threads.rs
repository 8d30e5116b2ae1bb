//! memory://: four producer threads, one consumer, blocking calls.
//!
//!   cargo run --release --example memory_threads

use psyne::{Channel, ChannelType, Mode};

fn main() -> Result<(), psyne::Error> {
    let ch = Channel::open("memory://jobs", 1 << 16, Mode::Mpsc, ChannelType::Multi)?;
    let producers: Vec<_> = (0..4u32)
        .map(|p| {
            let tx = ch.clone();
            std::thread::spawn(move || {
                for i in 0..1000u32 {
                    // Waits while the ring is full; the type says which producer.
                    tx.send(&i.to_le_bytes(), p).unwrap();
                }
            })
        })
        .collect();
    let mut per_producer = [0u32; 4];
    let mut buf = [0u8; 64];
    for _ in 0..4000 {
        let (len, p) = ch.recv_into(&mut buf)?;
        let i = u32::from_le_bytes(buf[..len].try_into().unwrap());
        assert_eq!(i, per_producer[p as usize], "FIFO per producer");
        per_producer[p as usize] += 1;
    }
    for t in producers {
        t.join().unwrap();
    }
    let m = ch.metrics();
    println!(
        "received {per_producer:?} from 4 producers; sent {} messages, {} bytes",
        m.messages_sent, m.bytes_sent
    );
    Ok(())
}
