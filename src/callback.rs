//! The receive-callback dispatcher: one thread per channel handle that
//! receives messages and hands each to a user callback
//! (`psyne_channel_set_receive_callback`, [`Channel::set_receive_callback`](crate::Channel::set_receive_callback)).

use crate::channel::Consumer;
use crate::error::{Error, Result};
use crate::ring::wait::CancelToken;
use std::thread::{JoinHandle, ThreadId};

/// A receive callback: called with each message's payload and type.
pub type ReceiveCallback = Box<dyn FnMut(&[u8], u32) + Send>;

/// A running dispatcher. Dropping it without [`shut_down`](Dispatcher::shut_down)
/// leaves the thread running until the channel stops.
pub(crate) struct Dispatcher {
    cancel: CancelToken,
    thread: JoinHandle<()>,
}

impl Dispatcher {
    pub(crate) fn start(
        mut consumer: Consumer,
        mut callback: ReceiveCallback,
    ) -> Result<Dispatcher> {
        let cancel = CancelToken::new();
        let token = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("psyne-dispatch".into())
            .spawn(move || loop {
                // Checked before every receive, not only by a receive that
                // waits: under steady traffic no receive ever waits, and a
                // callback turned off from inside itself must not be called
                // again once it returns.
                if token.is_cancelled() {
                    break;
                }
                match consumer.recv_until(None, Some(&token)) {
                    Ok(msg) => {
                        let t = msg.msg_type();
                        // A panicking callback must not take the process down
                        // (it may be C code's callback via the FFI); stop dispatching.
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            callback(&msg, t)
                        }))
                        .is_err()
                        {
                            break;
                        }
                    }
                    Err(Error::Cancelled) | Err(Error::ChannelStopped) => break,
                    Err(_) => break,
                }
            })
            .map_err(|e| Error::io("starting the dispatcher thread", e))?;
        Ok(Dispatcher { cancel, thread })
    }

    fn thread_id(&self) -> ThreadId {
        self.thread.thread().id()
    }

    /// Stops the thread. Waits for it unless called from the callback itself
    /// (which would wait for itself); then the thread ends after the callback returns.
    pub(crate) fn shut_down(self) {
        self.cancel.cancel();
        if std::thread::current().id() != self.thread_id() {
            let _ = self.thread.join();
        }
    }
}
