//! Timers for the shell, the one place that differs between native and browser builds.

use std::time::Duration;
use web_time::Instant;

/// Completes after `duration`.
pub(crate) async fn sleep(duration: Duration) {
    #[cfg(not(target_arch = "wasm32"))]
    async_io::Timer::after(duration).await;
    #[cfg(target_arch = "wasm32")]
    gloo_timers::future::sleep(duration).await;
}

/// Completes at `at` (at once if it has passed).
pub(crate) async fn sleep_until(at: Instant) {
    let left = at.saturating_duration_since(crate::driver::now());
    if !left.is_zero() {
        sleep(left).await;
    }
}
