//! [`FastRtcRepliconPlugin`]: declares the swarm channels and adds the backend's systems.

use super::clients::{self, ClientEntities, Samples};
use super::host::HostRule;
use super::role::{self, DEFAULT_SETTLE, HostChanged, ReplicationHost};
use super::transport::{self, EarlyMessages, SwarmChannels};
use crate::plugin::FastRtcSystems;
use crate::session::Swarm;
use bevy::prelude::*;
use bevy_replicon::prelude::{ClientSystems, ServerMessages, ServerSystems};
use fast_rtc_swarm::ChannelConfig;
use std::time::Duration;

/// bevy_replicon's messaging backend over the swarm. Add it after
/// [`FastRtcPlugin`](crate::FastRtcPlugin) and `RepliconPlugins`, on every member.
#[derive(Debug, Clone, Default)]
pub struct FastRtcRepliconPlugin {
    rule: HostRule,
    settle: Option<Duration>,
}

impl FastRtcRepliconPlugin {
    /// Chooses the host with `rule` (default [`HostRule::LowestId`]).
    pub fn with_host_rule(mut self, rule: HostRule) -> Self {
        self.rule = rule;
        self
    }

    /// How long a member waits after joining before it picks a host (default
    /// [`DEFAULT_SETTLE`]): long enough for the links of its join to open.
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = Some(settle);
        self
    }
}

/// The backend's systems, public so yours can be ordered around them.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub enum FastRtcRepliconSystems {
    /// `PreUpdate`, after [`FastRtcSystems::Receive`], in replicon's `ReceivePackets` sets:
    /// the host is chosen, states driven, client entities kept, frames received.
    Receive,
    /// `PostUpdate`, in replicon's `SendPackets` sets, before [`FastRtcSystems::Send`].
    Send,
}

impl Plugin for FastRtcRepliconPlugin {
    fn build(&self, app: &mut App) {
        if !app.world().contains_resource::<ServerMessages>() {
            tracing::error!("FastRtcRepliconPlugin needs RepliconPlugins added before it");
            return;
        }
        let Some(mut swarm) = app.world_mut().get_resource_mut::<Swarm>() else {
            tracing::error!("FastRtcRepliconPlugin needs FastRtcPlugin added before it");
            return;
        };
        let channels = SwarmChannels {
            ordered: swarm.add_channel(ChannelConfig::reliable("replicon-ordered")),
            unordered: swarm.add_channel(ChannelConfig::reliable("replicon-unordered")),
            unreliable: swarm.add_channel(ChannelConfig::unreliable("replicon-unreliable")),
        };
        app.insert_resource(channels)
            .insert_resource(ReplicationHost::new(
                self.rule.clone(),
                self.settle.unwrap_or(DEFAULT_SETTLE),
            ))
            .init_resource::<ClientEntities>()
            .init_resource::<Samples>()
            .init_resource::<EarlyMessages>()
            .add_message::<HostChanged>()
            .configure_sets(
                PreUpdate,
                FastRtcRepliconSystems::Receive
                    .after(FastRtcSystems::Receive)
                    .in_set(ServerSystems::ReceivePackets)
                    .in_set(ClientSystems::ReceivePackets),
            )
            .configure_sets(
                PostUpdate,
                FastRtcRepliconSystems::Send
                    .in_set(ServerSystems::SendPackets)
                    .in_set(ClientSystems::SendPackets)
                    .before(FastRtcSystems::Send),
            )
            .add_systems(
                PreUpdate,
                (
                    role::decide,
                    clients::sync,
                    transport::receive,
                    clients::stats,
                )
                    .chain()
                    .in_set(FastRtcRepliconSystems::Receive),
            )
            .add_systems(
                PreUpdate,
                role::resolve_carried_over.after(ClientSystems::Receive),
            )
            .add_systems(
                PostUpdate,
                (
                    transport::send.in_set(FastRtcRepliconSystems::Send),
                    clients::disconnect.after(FastRtcSystems::Send),
                ),
            );
    }
}
