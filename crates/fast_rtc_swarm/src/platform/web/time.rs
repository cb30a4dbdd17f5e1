//! The system clock and timers in the browser: `performance.now()` through web-time (std's
//! `Instant::now` panics on wasm32-unknown-unknown) and gloo's `setTimeout` futures.

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
    gloo_timers::future::sleep(duration).await;
}

/// Completes at `at` (at once if it has passed).
pub(crate) async fn sleep_until(at: Instant) {
    let left = at.saturating_duration_since(now());
    if !left.is_zero() {
        sleep(left).await;
    }
}
