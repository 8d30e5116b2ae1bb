//! ipc://: this program starts a copy of itself as the consumer process, then
//! produces; the consumer reads the producer's bytes in shared memory.
//!
//!   cargo run --release --example ipc_pair

use psyne::{Channel, ChannelType, Mode};
use std::time::Duration;

const URI: &str = "ipc://psyne-example-pair";
const COUNT: u32 = 10_000;

fn main() -> Result<(), psyne::Error> {
    if std::env::args().nth(1).as_deref() == Some("consumer") {
        // Size 0: attach to the producer's segment and adopt its configuration.
        let ch = Channel::open(URI, 0, Mode::Spsc, ChannelType::Multi)?;
        for i in 0..COUNT {
            let msg = ch.recv_timeout(Duration::from_secs(10))?;
            assert_eq!((msg.msg_type(), &msg[..]), (i, &i.to_le_bytes()[..]));
        }
        println!(
            "consumer (pid {}): {COUNT} messages in order",
            std::process::id()
        );
        return Ok(());
    }
    let ch = Channel::open(URI, 1 << 20, Mode::Spsc, ChannelType::Multi)?;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("consumer")
        .spawn()
        .map_err(|e| psyne::Error::Io(format!("starting the consumer: {e}")))?;
    for i in 0..COUNT {
        let mut slot = ch.reserve_timeout(4, Duration::from_secs(10))?;
        slot.copy_from_slice(&i.to_le_bytes());
        slot.send(i)?;
    }
    let status = child.wait().map_err(|e| psyne::Error::Io(e.to_string()))?;
    println!(
        "producer (pid {}): sent {COUNT}; consumer exited with {status}",
        std::process::id()
    );
    assert!(status.success());
    Ok(())
}
