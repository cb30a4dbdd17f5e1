//! What every part of the join bench shares: the signaling servers of a run and how long
//! anything may take.

use crate::util::spawn_server;
use std::time::Duration;

/// Longest a join, a mesh or a bulk transfer may take before the run counts as failed.
pub(crate) const GIVE_UP: Duration = Duration::from_secs(20);

/// The signaling servers of a run: ours, and matchbox's when it takes part.
pub(crate) struct Servers {
    pub(crate) ours: fast_rtc_server::ServerHandle,
    pub(crate) ours_url: String,
    pub(super) matchbox_url: Option<String>,
}

impl Servers {
    /// Our server alone, in this process on 127.0.0.1 (matchbox's is added by `join` in its
    /// namespace).
    pub(crate) async fn ours_only() -> Self {
        let ours = spawn_server().await;
        let ours_url = format!("ws://{}", ours.local_addr());
        Servers {
            ours,
            ours_url,
            matchbox_url: None,
        }
    }
}
