//! Runs the cargo-fuzz harness on random input with stable Rust, so every CI run fuzzes a little.
//! Long runs: see the README (`cargo fuzz run hub_frames`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod fuzz_harness;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn hub_survives_any_script(data in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzz_harness::run(&data);
    }
}

/// The random scripts must reach the interesting states, or the test above proves little. This
/// check runs its own 8000 scripts from a fixed seed, so whether they reach those states does
/// not depend on the run (it used the random runs' counts, and a run now and then made no
/// member with two links: a mesh of three is rare in random scripts).
#[test]
fn random_scripts_reach_joins_leaves_and_meshes() {
    use proptest::test_runner::{Config, RngSeed, TestRunner};
    use std::cell::Cell;
    let (joins, leaves, links) = (Cell::new(0), Cell::new(0), Cell::new(0));
    let (held, resumed) = (Cell::new(0), Cell::new(0));
    let mut runner = TestRunner::new(Config {
        cases: 8000,
        rng_seed: RngSeed::Fixed(0x00fa_57c0),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..600), |data| {
            let (stats, most) = fuzz_harness::run(&data);
            joins.set(joins.get() + stats.joins);
            leaves.set(leaves.get() + stats.leaves);
            links.set(links.get().max(most));
            held.set(held.get() + stats.held);
            resumed.set(resumed.get() + stats.resumed);
            Ok(())
        })
        .unwrap();
    let (joins, leaves, links) = (joins.get(), leaves.get(), links.get());
    assert!(
        joins > 1000 && leaves > 500 && links >= 2,
        "joins {joins}, leaves {leaves}, most links {links}"
    );
    // Sessions held for a resume, and resumed (a script must present a token it was given).
    let (held, resumed) = (held.get(), resumed.get());
    println!("joins {joins}, leaves {leaves}, held {held}, resumed {resumed}");
    assert!(held > 10 && resumed > 0, "held {held}, resumed {resumed}");
}

/// Inputs the fuzzer found interesting, kept as regression cases.
#[test]
fn regression_inputs() {
    for data in [
        &b""[..],
        b"\x00\x00\x03\x00\x04\x00\x00\x01\x03\x00",
        b"\x0a\xff{\"type\":",
        b"\x00\x80\x03\x01",
    ] {
        fuzz_harness::run(data);
    }
}
