//! Prints the timeline of one join (diagnostics; asserts only that it completes).
#![cfg(not(target_arch = "wasm32"))] // native backend; the browser tests are tests/web.rs
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)]

mod support;

use fast_rtc_swarm::{SwarmConfig, SwarmEvent};
use std::time::{Duration, Instant};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_timeline() {
    let server = server().await;
    let native = fast_rtc_swarm::NativeConfig {
        ice_keepalive_interval: Duration::from_millis(
            std::env::var("KA")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000),
        ),
        ..fast_rtc_swarm::NativeConfig::loopback()
    };
    let a = member_with(&server, "a", SwarmConfig::new("t"), native.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    let b = member_with(&server, "b", SwarmConfig::new("t"), native);
    let deadline = t0 + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, b.recv()).await.unwrap().unwrap();
        eprintln!(
            "{:>8.2} ms  joiner: {ev:?}",
            t0.elapsed().as_secs_f64() * 1e3
        );
        if matches!(ev, SwarmEvent::Open(_)) {
            break;
        }
    }
    drop(a);
    server.shutdown().await.unwrap();
}
