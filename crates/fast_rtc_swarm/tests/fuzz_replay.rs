//! Runs the cargo-fuzz harness of the swarm core on random input with stable Rust, so every
//! test run fuzzes a little. Long runs: `cargo fuzz run core_inputs` (see the README).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod fuzz_harness;

use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

static OPENS: AtomicUsize = AtomicUsize::new(0);
static DATA: AtomicUsize = AtomicUsize::new(0);
static MOST_LINKS: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_core_survives_any_script(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let reached = fuzz_harness::run(&data);
        OPENS.fetch_add(reached.opens, Ordering::Relaxed);
        DATA.fetch_add(reached.data, Ordering::Relaxed);
        MOST_LINKS.fetch_max(reached.most_links, Ordering::Relaxed);
    }
}

/// The random scripts must reach open links and data, or the test above proves little.
#[test]
fn random_scripts_reach_open_links_and_data() {
    the_core_survives_any_script();
    let (opens, data, links) = (
        OPENS.load(Ordering::Relaxed),
        DATA.load(Ordering::Relaxed),
        MOST_LINKS.load(Ordering::Relaxed),
    );
    assert!(
        opens > 100 && data > 100 && links >= 4,
        "opens {opens}, data {data}, most links {links}"
    );
}
