//! Fuzzes frame parsing and the room state machine together: random socket events and frames
//! (templated valid frames and raw bytes), with the room invariants checked after every step.
#![no_main]

#[path = "../../tests/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_harness::run(data);
});
