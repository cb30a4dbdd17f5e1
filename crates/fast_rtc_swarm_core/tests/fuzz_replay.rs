//! Runs the cargo-fuzz harness of the swarm core on random input with stable Rust, so every
//! test run fuzzes a little. Long runs: `cargo fuzz run core_inputs` (see the README).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod fuzz_harness;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_core_survives_any_script(data in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzz_harness::run(&data);
    }
}

/// The random scripts must reach open links and data, or the test above proves little. This
/// check runs its own 2000 scripts from a fixed seed, so whether they reach those states does
/// not depend on the run.
#[test]
fn random_scripts_reach_open_links_and_data() {
    use proptest::test_runner::{Config, RngSeed, TestRunner};
    use std::cell::Cell;
    let (opens, data, links) = (Cell::new(0), Cell::new(0), Cell::new(0));
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        rng_seed: RngSeed::Fixed(0x00fa_57c0),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..600), |input| {
            let reached = fuzz_harness::run(&input);
            opens.set(opens.get() + reached.opens);
            data.set(data.get() + reached.data);
            links.set(links.get().max(reached.most_links));
            Ok(())
        })
        .unwrap();
    let (opens, data, links) = (opens.get(), data.get(), links.get());
    assert!(
        opens > 100 && data > 100 && links >= 4,
        "opens {opens}, data {data}, most links {links}"
    );
}
