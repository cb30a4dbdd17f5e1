//! Fuzzes the swarm core: random server frames (raw text and templated), backend reports
//! (`@fast/` control messages on `fast` included), timeouts and application calls, with the
//! core's invariants checked after every step.
#![no_main]

#[path = "../../tests/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_harness::run(data);
});
