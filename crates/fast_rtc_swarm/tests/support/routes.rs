//! Tracing for tests that check the selected candidate pair: the test kit's `RouteLayer`
//! records the native backend's `selected candidate pair` events, next to the usual test
//! output (`RUST_LOG`, else `warn`).

use fast_rtc_testkit::routes::RouteLayer;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the route capture and the test writer, once per test binary (later calls, and
/// `init_tracing`'s, are no-ops).
pub fn init_route_capture() {
    let routes = RouteLayer::filtered();
    let fmt = tracing_subscriber::fmt::layer()
        .with_test_writer()
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        );
    let _ = tracing_subscriber::registry()
        .with(routes)
        .with(fmt)
        .try_init();
}
