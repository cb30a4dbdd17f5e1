//! How links were routed: the native backend's `selected candidate pair` tracing events (their
//! `id`, `local`, `remote`, `local_addr` and `remote_addr` fields), recorded by [`RouteLayer`]
//! into one process-wide list.
//!
//! Read from the event's fields, not from formatted text. Used by the swarm's
//! `tests/e2e_turn.rs` and the bench's relay rows to check that a link went relay to relay.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tracing_subscriber::Layer;

/// The tracing target of the native backend's peer events.
pub const NATIVE_PEER_TARGET: &str = "fast_rtc_swarm::platform::native::peer";

/// The message of the event that names a link's selected candidate pair.
pub const SELECTED_PAIR: &str = "selected candidate pair";

/// One end's selected candidate pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The link's connection id.
    pub id: String,
    /// The local candidate's type (`host`, `srflx`, `prflx`, `relay`).
    pub local: String,
    /// The remote candidate's type.
    pub remote: String,
    /// The local candidate's address (`IP:PORT`; a relay candidate's is on the TURN server).
    pub local_addr: String,
    /// The remote candidate's address.
    pub remote_addr: String,
}

impl Route {
    /// Relay at both ends.
    pub fn is_relay(&self) -> bool {
        self.local == "relay" && self.remote == "relay"
    }

    /// No relay at either end.
    pub fn is_direct(&self) -> bool {
        self.local != "relay" && self.remote != "relay"
    }
}

static ROUTES: Mutex<Vec<Route>> = Mutex::new(Vec::new());

/// Records the fields of every `selected candidate pair` event it sees.
#[derive(Clone, Copy, Debug, Default)]
pub struct RouteLayer;

impl RouteLayer {
    /// This layer, seeing only the native backend's peer events ([`NATIVE_PEER_TARGET`]) at
    /// info, to be added to the test's tracing subscriber.
    pub fn filtered<S>() -> impl Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        RouteLayer.with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(NATIVE_PEER_TARGET, tracing::Level::INFO),
        )
    }
}

impl<S: tracing::Subscriber> Layer<S> for RouteLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            message: String,
            id: String,
            local: String,
            remote: String,
            local_addr: String,
            remote_addr: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                let value = format!("{value:?}");
                match field.name() {
                    "message" => self.message = value,
                    "id" => self.id = value,
                    "local" => self.local = value,
                    "remote" => self.remote = value,
                    "local_addr" => self.local_addr = value,
                    "remote_addr" => self.remote_addr = value,
                    _ => {}
                }
            }
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message == SELECTED_PAIR {
            ROUTES
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Route {
                    id: f.id,
                    local: f.local,
                    remote: f.remote,
                    local_addr: f.local_addr,
                    remote_addr: f.remote_addr,
                });
        }
    }
}

/// The routes recorded so far for the links `ids`.
pub fn recorded(ids: &[String]) -> Vec<Route> {
    ROUTES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|r| ids.contains(&r.id))
        .cloned()
        .collect()
}

/// The routes recorded for the links `ids`, waiting up to `within` (polling every 50 ms) until
/// there are at least `want` of them (two per link: one per end); what is there at the deadline
/// otherwise.
pub async fn wait_for(ids: &[String], want: usize, within: Duration) -> Vec<Route> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let found = recorded(ids);
        if found.len() >= want || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
