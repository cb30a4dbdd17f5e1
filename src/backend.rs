//! Which backend the plugin's swarm runs on: this build's WebRTC backend, or one of your own
//! with the clock it runs on.

use crate::messages::FastRtcError;
use fast_rtc_swarm::memory::MemoryNet;
use fast_rtc_swarm::{
    BackendConfig, Clock, DynBackend, EventSender, Signaling, StartError, SwarmConfig, SwarmDriver,
    SwarmHandle, start, start_with,
};
use std::sync::Arc;

/// Which backend the plugin's swarm runs on.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SwarmBackend {
    /// This build's WebRTC backend with these settings (the default). It runs in real time.
    Platform(BackendConfig),
    /// A backend of your own, made when the swarm connects, with the clock the swarm's shell
    /// reads (see [`BackendFactory`]).
    Custom(BackendFactory),
}

impl Default for SwarmBackend {
    fn default() -> Self {
        SwarmBackend::Platform(BackendConfig::default())
    }
}

impl SwarmBackend {
    /// Starts a swarm with `config` over `signaling` on this backend.
    pub(crate) fn start(
        &self,
        config: SwarmConfig,
        signaling: Signaling,
    ) -> Result<(SwarmHandle, SwarmDriver), FastRtcError> {
        match self {
            SwarmBackend::Platform(backend) => start(config, backend.clone(), signaling),
            SwarmBackend::Custom(factory) => start_with(
                config,
                signaling,
                factory.clock.clone(),
                |config, events| (factory.make)(config, events),
            ),
        }
        .map_err(|e| FastRtcError::Start(e.to_string()))
    }
}

/// The function a [`BackendFactory`] makes backends with.
type MakeBackend = dyn Fn(SwarmConfig, EventSender) -> Result<DynBackend, StartError> + Send + Sync;

/// Makes a backend for a swarm, each time the swarm connects, and says which clock the swarm's
/// shell reads with it (a [`ManualClock`](fast_rtc_swarm::ManualClock) in tests; WebRTC
/// backends run in real time, so only a custom backend has a clock of its choice).
#[derive(Clone)]
pub struct BackendFactory {
    make: Arc<MakeBackend>,
    clock: Clock,
}

impl BackendFactory {
    /// A factory calling `make` with the swarm's configuration and the queue the backend
    /// reports to; the swarm's shell reads the time from `clock`.
    pub fn new(
        clock: Clock,
        make: impl Fn(SwarmConfig, EventSender) -> Result<DynBackend, StartError>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        BackendFactory {
            make: Arc::new(make),
            clock,
        }
    }

    /// Every swarm on the in-memory network `net` ([`MemoryNet`]): no WebRTC, no sockets; the
    /// shell reads the time from `clock`.
    pub fn memory(net: MemoryNet, clock: Clock) -> Self {
        BackendFactory::new(clock, move |config, events| {
            Ok(Box::new(net.backend(config, events)) as DynBackend)
        })
    }

    /// The clock the swarm's shell reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

impl std::fmt::Debug for BackendFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendFactory")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}
