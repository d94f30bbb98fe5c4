//! How a live connection is told to end from outside its task: by the gateway shutting down
//! (1001), or by the registry after a revocation (1008 with the reason).

use std::sync::{Arc, OnceLock};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

#[derive(Debug)]
pub struct StopSignal {
    /// A child of the gateway's shutdown token: cancelled by shutdown or by [`StopSignal::stop`].
    token: CancellationToken,
    /// Set by [`StopSignal::stop`]; absent means "shutdown".
    why: OnceLock<(u16, &'static str)>,
}

impl StopSignal {
    pub fn new(shutdown: &CancellationToken) -> Arc<StopSignal> {
        Arc::new(StopSignal { token: shutdown.child_token(), why: OnceLock::new() })
    }

    /// Ends the connection with close `code` and `reason` on both sides. The first call wins.
    pub fn stop(&self, code: u16, reason: &'static str) {
        let _ = self.why.set((code, reason));
        self.token.cancel();
    }

    /// The close code and reason of a [`StopSignal::stop`], `None` for a shutdown.
    pub fn why(&self) -> Option<(u16, &'static str)> {
        self.why.get().copied()
    }

    pub(crate) fn stopped(&self) -> WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }
}
