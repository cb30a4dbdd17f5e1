//! Runs the cargo-fuzz harness on random input with stable Rust, so every CI run fuzzes a little.
//! Long runs: see the README (`cargo fuzz run hub_frames`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod fuzz_harness;

use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static JOINS: AtomicU64 = AtomicU64::new(0);
static LEAVES: AtomicU64 = AtomicU64::new(0);
static MOST_LINKS: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn hub_survives_any_script(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let (stats, links) = fuzz_harness::run(&data);
        JOINS.fetch_add(stats.joins, Ordering::Relaxed);
        LEAVES.fetch_add(stats.leaves, Ordering::Relaxed);
        MOST_LINKS.fetch_max(links, Ordering::Relaxed);
    }
}

/// The random scripts must reach the interesting states, or the test above proves little.
#[test]
fn random_scripts_reach_joins_leaves_and_meshes() {
    hub_survives_any_script();
    let (joins, leaves, links) = (
        JOINS.load(Ordering::Relaxed),
        LEAVES.load(Ordering::Relaxed),
        MOST_LINKS.load(Ordering::Relaxed),
    );
    assert!(
        joins > 1000 && leaves > 500 && links >= 2,
        "joins {joins}, leaves {leaves}, most links {links}"
    );
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
