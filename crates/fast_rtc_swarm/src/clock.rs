//! The shell's sense of time: the system clock, or a [`ManualClock`] that a test moves by hand.
//!
//! The swarm core never reads a clock; the shell passes [`Clock::now`] into every input and
//! waits for the core's deadlines with [`Clock::sleep_until`]. With a manual clock, handshake
//! timeouts, pings and reconnect backoff happen exactly when the test advances time past them.
//! (The WebRTC backends keep their own real-time timers: ICE and SCTP run in real time.)

use crate::platform::time;
use event_listener::Event;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use web_time::{Instant, SystemTime};

/// Where the shell reads the time.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Clock {
    /// The system clock (the default).
    #[default]
    System,
    /// Time that only moves when [`ManualClock::advance`] is called.
    Manual(ManualClock),
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> Instant {
        match self {
            Clock::System => time::now(),
            Clock::Manual(m) => m.now(),
        }
    }

    /// The wall-clock time, to read a token's expiry against (a manual clock's moves with it).
    pub fn wall_now(&self) -> SystemTime {
        match self {
            Clock::System => time::wall_now(),
            Clock::Manual(m) => m.inner.start_wall + m.elapsed(),
        }
    }

    /// Completes once the time is `at` or later.
    pub async fn sleep_until(&self, at: Instant) {
        match self {
            Clock::System => time::sleep_until(at).await,
            Clock::Manual(m) => m.sleep_until(at).await,
        }
    }

    /// Completes after `duration`.
    pub async fn sleep(&self, duration: Duration) {
        let at = self.now() + duration;
        self.sleep_until(at).await;
    }
}

/// A clock that starts at the moment it is made and moves only by [`ManualClock::advance`].
/// Cheap to clone; clones share the time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    inner: Arc<Manual>,
}

#[derive(Debug)]
struct Manual {
    start: Instant,
    start_wall: SystemTime,
    elapsed_nanos: AtomicU64,
    moved: Event,
}

impl ManualClock {
    /// A clock standing at the present moment.
    pub fn new() -> Self {
        ManualClock {
            inner: Arc::new(Manual {
                start: time::now(),
                start_wall: time::wall_now(),
                elapsed_nanos: AtomicU64::new(0),
                moved: Event::new(),
            }),
        }
    }

    /// The clock's time.
    pub fn now(&self) -> Instant {
        self.inner.start + self.elapsed()
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.elapsed_nanos.load(Ordering::Acquire))
    }

    /// Moves the clock forward by `by`, waking whoever sleeps until then.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .inner
            .elapsed_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
        self.inner.moved.notify(usize::MAX);
    }

    async fn sleep_until(&self, at: Instant) {
        loop {
            let listener = self.inner.moved.listen();
            if self.now() >= at {
                return;
            }
            listener.await;
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_sleep_ends_when_time_is_advanced_past_it() {
        let clock = ManualClock::new();
        let at = clock.now() + Duration::from_secs(5);
        let manual = Clock::Manual(clock.clone());
        let mut sleep = std::pin::pin!(manual.sleep_until(at));
        let mut poll =
            || futures_lite::future::block_on(futures_lite::future::poll_once(&mut sleep));
        assert_eq!(poll(), None);
        clock.advance(Duration::from_secs(4));
        assert_eq!(poll(), None);
        clock.advance(Duration::from_secs(1));
        assert_eq!(poll(), Some(()));
    }
}
