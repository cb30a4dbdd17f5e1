//! Test helpers shared by the workspace's tests and benchmarks. Never published.
//!
//! It depends on no crate of the workspace that uses it as a dev-dependency, so no crate
//! depends on another through dev-dependencies in a circle. Tests that need several of the
//! workspace's crates at once live in this crate's `tests/`.

#![forbid(unsafe_code)]
