//! The fast-rtc swarm's decisions: no networking code, no async runtime, no WebRTC, and no
//! clock. Time is always an argument.

#![forbid(unsafe_code)]
