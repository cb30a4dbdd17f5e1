//! What every connection task of one native backend shares, and randomness.

use super::config::NativeConfig;
use crate::backend::EventSender;
use fast_rtc_swarm_core::config::SwarmConfig;
use std::sync::Arc;
use webrtc::runtime::Runtime;

/// What every connection task of one backend shares.
pub(crate) struct Context {
    pub(crate) swarm: SwarmConfig,
    pub(crate) native: NativeConfig,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) events: EventSender,
}

/// 64 random bits (connection id prefixes), from std's randomly keyed hasher.
pub(crate) fn random_u64() -> u64 {
    std::hash::BuildHasher::hash_one(
        &std::collections::hash_map::RandomState::new(),
        super::time::now(),
    )
}
