//! The system clock and timers natively: std's `Instant` and async-io's timers (any executor).

use std::time::Duration;
use web_time::{Instant, SystemTime};

/// The system clock.
#[allow(clippy::disallowed_methods)] // the one place that reads it
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// The wall-clock time.
#[allow(clippy::disallowed_methods)] // the one place that reads it
pub(crate) fn wall_now() -> SystemTime {
    SystemTime::now()
}

/// Completes after `duration`.
pub(crate) async fn sleep(duration: Duration) {
    async_io::Timer::after(duration).await;
}

/// Completes at `at` (at once if it has passed).
pub(crate) async fn sleep_until(at: Instant) {
    async_io::Timer::at(at).await;
}
