//! A sleep with microsecond precision for the latency pacer.
//!
//! Tokio's timer wheel has 1 ms slots, ten times the gap between messages at 10k msg/s, and
//! spinning instead makes the load generator a CPU hog that the kernel's scheduler then parks for
//! whole time slices whenever anything else wants its core. A `timerfd` is a kernel high-resolution
//! timer that tokio's reactor watches like a socket, so the pacer sleeps until exactly the
//! next due time and wakes up with the priority of a process that was sleeping.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Instant;

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create, timerfd_settime,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// One timer, re-armed for each sleep.
#[derive(Debug)]
pub struct Timer {
    fd: AsyncFd<OwnedFd>,
}

impl Timer {
    pub fn new() -> io::Result<Timer> {
        let fd = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
        // Tokio deprecated the safe constructor because a borrowed descriptor could be closed
        // behind the reactor's back; this one is an `OwnedFd` that only the `AsyncFd` holds, so
        // the case is the sound one, and the unsafe replacement is forbidden in this workspace.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(fd, Interest::READABLE)?;
        Ok(Timer { fd })
    }

    /// Sleeps until `deadline`; returns at once if it has passed.
    pub async fn sleep_until(&mut self, deadline: Instant) -> io::Result<()> {
        let now = Instant::now();
        if deadline <= now {
            return Ok(());
        }
        // Relative arming: `Instant` does not expose its CLOCK_MONOTONIC value, and the few
        // nanoseconds between reading `now` and arming do not matter. The remaining time is
        // never zero here, which timerfd would take as "disarm".
        let it_value =
            Timespec::try_from(deadline - now).map_err(|_| io::Error::other("sleep too long for a timespec"))?;
        let spec = Itimerspec { it_interval: Timespec { tv_sec: 0, tv_nsec: 0 }, it_value };
        timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
        loop {
            let mut ready = self.fd.readable().await?;
            // Reading the expiration count re-arms readiness for the next sleep.
            let mut expirations = [0u8; 8];
            let read = ready.try_io(|fd| rustix::io::read(fd.get_ref(), &mut expirations).map_err(io::Error::from));
            match read {
                Ok(result) => return result.map(drop),
                // Spurious readiness: the timer has not fired yet.
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sleeps_at_least_until_the_deadline() {
        let mut timer = Timer::new().expect("timerfd");
        for micros in [0, 50, 300, 2_500] {
            let deadline = Instant::now() + Duration::from_micros(micros);
            timer.sleep_until(deadline).await.expect("sleep");
            assert!(Instant::now() >= deadline);
        }
    }
}
