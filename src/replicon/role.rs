//! The member's role: who the host is ([`ReplicationHost`]), the [`HostChanged`] message, and
//! replicon's [`ServerState`] / [`ClientState`] driven from it.

use super::host::HostRule;
use crate::session::Swarm;
use bevy::prelude::*;
use bevy_replicon::client::ServerUpdateTick;
use bevy_replicon::client::confirm_history::ConfirmHistory;
use bevy_replicon::prelude::{
    ClientState, Remote, Replicated, RepliconTick, ServerState, Signature,
};
use bevy_replicon::shared::server_entity_map::ServerEntityMap;
use fast_rtc_protocol::UserId;
use fast_rtc_swarm::SignalingState;
use std::time::Duration;

/// The default [`ReplicationHost::settle`]: how long a member waits after joining before it
/// picks a host, so the links of its join have opened.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(1500);

/// Who the host (replicon's server) is, as this member sees it. Read it to know whether this
/// member simulates (`is_host`); change the rule with [`ReplicationHost::set_rule`].
#[derive(Resource, Debug)]
pub struct ReplicationHost {
    rule: HostRule,
    settle: Duration,
    /// When (real time since startup) the swarm was last seen joining.
    joined_at: Option<Duration>,
    me: Option<UserId>,
    host: Option<UserId>,
    /// The host this member's replicon client is connected to.
    pub(crate) connected_to: Option<UserId>,
}

impl ReplicationHost {
    pub(crate) fn new(rule: HostRule, settle: Duration) -> Self {
        ReplicationHost {
            rule,
            settle,
            joined_at: None,
            me: None,
            host: None,
            connected_to: None,
        }
    }

    /// The host, once one is chosen (`None` before the swarm joined and settled, and when a
    /// [`HostRule::Fixed`] host is not linked).
    pub fn host(&self) -> Option<&UserId> {
        self.host.as_ref()
    }

    /// Whether this member is the host (runs replicon's server).
    pub fn is_host(&self) -> bool {
        self.host.is_some() && self.host == self.me
    }

    /// The rule in force.
    pub fn rule(&self) -> &HostRule {
        &self.rule
    }

    /// How long a member waits after joining before it picks a host.
    pub fn settle(&self) -> Duration {
        self.settle
    }

    /// Changes the rule; the host is chosen again in the next receive pass. Every member must
    /// use the same rule.
    pub fn set_rule(&mut self, rule: HostRule) {
        self.rule = rule;
    }
}

/// The host changed (written in the receive pass, before replicon's states follow). `new` is
/// `None` while no host is chosen. The game rebuilds its server-only state when `is_host`.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct HostChanged {
    /// The host before.
    pub old: Option<UserId>,
    /// The host now.
    pub new: Option<UserId>,
    /// Whether this member is the host now.
    pub is_host: bool,
}

/// The replicated world as this member holds it when the host changes: each replicated entity
/// with its key, the old host's entity id (on the old host its own id; on a client the server
/// entity replicon mapped it from). Every survivor computes the same key for the same entity.
fn migration_keys(
    was_host: bool,
    map: &ServerEntityMap,
    replicated: &Query<Entity, With<Replicated>>,
) -> Vec<(Entity, u64)> {
    if was_host {
        replicated.iter().map(|e| (e, e.to_bits())).collect()
    } else {
        map.to_server()
            .iter()
            .map(|(local, server)| (*local, server.to_bits()))
            .collect()
    }
}

/// On an entity carried over from the old host until the new host's first replication says
/// whether it still exists (it is then kept, or despawned: the new host never had it).
#[derive(Component, Debug)]
pub(crate) struct CarriedOver;

/// Host migration, when this member leaves a host: every replicated entity gets a
/// [`Signature`] of its key, so replicon's client maps the next host's entity onto the one it
/// already has (no duplicate, no respawn). On the next host the keys go out with its server's
/// first replication of each entity.
fn carry_over(commands: &mut Commands, keys: Vec<(Entity, u64)>) {
    for (entity, key) in keys {
        if let Ok(mut e) = commands.get_entity(entity) {
            // Signature registers its hash when added: replace it, not overwrite it. The
            // confirmed ticks were the old server's; the next one counts its own.
            e.try_remove::<(Signature, ConfirmHistory)>()
                .try_insert((Signature::from_hash(key), CarriedOver));
        }
    }
}

/// Picks the host from the swarm and drives replicon's states: `ServerState::Running` on the
/// host; on the others `ClientState::Connected` to the host (through `Disconnected` for one
/// frame when the host changes, so replicon's client resets). When the host changes, the
/// world this member holds is carried over ([`carry_over`]).
#[allow(clippy::too_many_arguments)] // one system, each parameter a state it drives
pub(crate) fn decide(
    mut commands: Commands,
    entity_map: Res<ServerEntityMap>,
    replicated: Query<Entity, With<Replicated>>,
    remote: Query<Entity, With<Remote>>,
    swarm: Res<Swarm>,
    time: Res<Time<Real>>,
    mut host: ResMut<ReplicationHost>,
    mut changed: MessageWriter<HostChanged>,
    server_state: Res<State<ServerState>>,
    mut next_server: ResMut<NextState<ServerState>>,
    client_state: Res<State<ClientState>>,
    mut next_client: ResMut<NextState<ClientState>>,
) {
    let now = time.elapsed();
    let linked = matches!(
        swarm.state(),
        SignalingState::Joined | SignalingState::Reconnecting
    );
    if !linked {
        host.joined_at = None;
    } else if host.joined_at.is_none() {
        host.joined_at = Some(now);
    }
    host.me = swarm.identity().cloned();
    let settled = host
        .joined_at
        .is_some_and(|at| now.saturating_sub(at) >= host.settle);
    let chosen = match (&host.me, settled) {
        (Some(me), true) => host.rule.choose(me, swarm.peers().map(|(u, _)| u)),
        _ => None,
    };
    if chosen != host.host {
        let was_host = host.is_host();
        let old = std::mem::replace(&mut host.host, chosen.clone());
        if old.is_some() {
            let keys = migration_keys(was_host, &entity_map, &replicated);
            tracing::info!(entities = keys.len(), "replicated world carried over");
            carry_over(&mut commands, keys);
        }
        if host.is_host() && !was_host {
            // What this member received becomes what its server sends.
            for e in &remote {
                commands.entity(e).try_insert(Replicated);
            }
        }
        tracing::info!(?old, new = ?chosen, "replicon host changed");
        changed.write(HostChanged {
            old,
            new: chosen,
            is_host: host.is_host(),
        });
    }

    let server = if host.is_host() {
        ServerState::Running
    } else {
        ServerState::Stopped
    };
    if *server_state.get() != server {
        next_server.set(server);
    }

    let target = host.host.clone().filter(|_| !host.is_host());
    match client_state.get() {
        ClientState::Connected if host.connected_to != target => {
            host.connected_to = None;
            next_client.set(ClientState::Disconnected);
        }
        ClientState::Connected => {}
        _ => {
            if target.is_some() {
                host.connected_to = target;
                next_client.set(ClientState::Connected);
            }
        }
    }
}

/// After host migration, on a client: once the new host's first replication is applied (every
/// entity it has was mapped onto this member's through its signature), the carried-over
/// entities it did not send are despawned (the old host's last spawns that never reached the
/// new host). On the new host they are kept as they are.
pub(crate) fn resolve_carried_over(
    mut commands: Commands,
    host: Res<ReplicationHost>,
    client_state: Res<State<ClientState>>,
    update_tick: Res<ServerUpdateTick>,
    map: Res<ServerEntityMap>,
    carried: Query<Entity, With<CarriedOver>>,
) {
    if carried.is_empty() {
        return;
    }
    if host.is_host() {
        for e in &carried {
            commands.entity(e).try_remove::<CarriedOver>();
        }
        return;
    }
    let first_update = update_tick.is_changed() && **update_tick != RepliconTick::default();
    if *client_state.get() != ClientState::Connected || !first_update {
        return;
    }
    for e in &carried {
        if map.to_server().contains_key(&e) {
            commands.entity(e).try_remove::<CarriedOver>();
        } else {
            tracing::debug!(entity = %e, "carried-over entity the new host does not have");
            commands.entity(e).try_despawn();
        }
    }
}
