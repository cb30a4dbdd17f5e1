//! Typed messages: `add_swarm_message::<T>(channel)`, `SwarmBroadcast<T>`, `FromPeer<T>`.

use crate::codec;
use crate::messages::{FastRtcError, FromPeer, PeerData, SwarmError};
use crate::plugin::FastRtcSystems;
use crate::session::Swarm;
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use fast_rtc_protocol::UserId;
use fast_rtc_swarm::{ChannelId, Payload};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;

/// A type that can travel between peers.
pub trait SwarmMessage: Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> SwarmMessage for T {}

/// The channel a message type travels on.
#[derive(Resource)]
pub(crate) struct TypedChannel<T> {
    pub(crate) channel: ChannelId,
    _marker: PhantomData<fn() -> T>,
}

/// Which type each typed channel carries (the type's name), for refusing a second one.
#[derive(Resource, Default)]
struct ChannelTypes(HashMap<ChannelId, &'static str>);

/// Registers typed messages on an [`App`].
pub trait AppSwarmExt {
    /// `T` travels on `channel` (a channel id from
    /// [`FastRtcPlugin::add_channel`](crate::FastRtcPlugin::add_channel), or
    /// [`ChannelId::FAST`]). Send it with [`SwarmBroadcast<T>`], read it with
    /// `MessageReader<FromPeer<T>>`. Bytes that do not decode as `T` are dropped and reported
    /// once per peer as a [`SwarmError`]. Registering the same type twice does nothing.
    ///
    /// Give each type its own channel: every message on the channel is decoded as `T`.
    ///
    /// # Panics
    ///
    /// When another type was registered on `channel` already: a mistake in the app's setup
    /// (like a plugin added twice), refused when the registration is made rather than seen as
    /// undecodable messages at run time.
    fn add_swarm_message<T: SwarmMessage>(&mut self, channel: ChannelId) -> &mut Self;
}

impl AppSwarmExt for App {
    fn add_swarm_message<T: SwarmMessage>(&mut self, channel: ChannelId) -> &mut Self {
        if self.world().contains_resource::<TypedChannel<T>>() {
            return self;
        }
        let type_name = std::any::type_name::<T>();
        let mut types = self.world_mut().get_resource_or_init::<ChannelTypes>();
        if let Some(other) = types.0.get(&channel) {
            refuse_second_type(channel, other, type_name);
        }
        types.0.insert(channel, type_name);
        self.insert_resource(TypedChannel::<T> {
            channel,
            _marker: PhantomData,
        })
        .add_message::<FromPeer<T>>()
        .add_systems(PreUpdate, decode::<T>.in_set(FastRtcSystems::Decode))
    }
}

/// The panic of a second type on one channel: says what to do instead.
#[allow(clippy::panic)] // a programmer error at setup, like Bevy's missing-plugin panics
fn refuse_second_type(channel: ChannelId, registered: &str, type_name: &str) -> ! {
    panic!(
        "bevy_fast_rtc: cannot register `{type_name}` on channel {channel:?}: `{registered}` \
         is registered on it already, and every message on a channel is decoded as its one \
         type. Declare a channel for each type with `FastRtcPlugin::add_channel` and pass \
         that channel to `add_swarm_message::<{type_name}>`."
    )
}

fn decode<T: SwarmMessage>(
    typed: Res<TypedChannel<T>>,
    mut data: MessageReader<PeerData>,
    mut out: MessageWriter<FromPeer<T>>,
    mut errors: MessageWriter<SwarmError>,
    mut reported: Local<HashSet<UserId>>,
) {
    for msg in data.read() {
        if msg.channel != typed.channel {
            continue;
        }
        let bytes = match &msg.payload {
            Payload::Binary(b) => b.as_slice(),
            Payload::Text(t) => t.as_bytes(),
        };
        match codec::decode::<T>(bytes) {
            Ok(value) => {
                out.write(FromPeer {
                    peer: msg.peer.clone(),
                    entity: msg.entity,
                    value,
                });
            }
            Err(e) => {
                if reported.insert(msg.peer.clone()) {
                    tracing::warn!(peer = %msg.peer, type_name = std::any::type_name::<T>(), error = %e, "undecodable message dropped");
                    errors.write(SwarmError {
                        peer: Some(msg.peer.clone()),
                        error: FastRtcError::Decode {
                            type_name: std::any::type_name::<T>(),
                            error: e.0,
                        },
                    });
                }
            }
        }
    }
}

/// Sends `T` to peers: `broadcast.send(&value)` to everyone, `broadcast.send_to(&peer, &value)`
/// to one. Messages are queued and leave in [`FastRtcSystems::Send`] at the end of the frame.
///
/// Panics at system initialization (not at run time) if `T` was not registered with
/// [`add_swarm_message`](AppSwarmExt::add_swarm_message): Bevy reports the missing
/// `TypedChannel<T>` resource.
#[derive(SystemParam)]
pub struct SwarmBroadcast<'w, T: SwarmMessage> {
    swarm: ResMut<'w, Swarm>,
    typed: Res<'w, TypedChannel<T>>,
    errors: MessageWriter<'w, SwarmError>,
}

impl<T: SwarmMessage> SwarmBroadcast<'_, T> {
    /// Sends `value` to every connected peer. Returns whether it was queued (a full outbox or an
    /// encoding failure is reported as a [`SwarmError`]).
    pub fn send(&mut self, value: &T) -> bool {
        self.queue(None, value)
    }

    /// Sends `value` to `peer`.
    pub fn send_to(&mut self, peer: &UserId, value: &T) -> bool {
        self.queue(Some(peer.clone()), value)
    }

    /// Connected peers.
    pub fn peer_count(&self) -> usize {
        self.swarm.peer_count()
    }

    fn queue(&mut self, to: Option<UserId>, value: &T) -> bool {
        let bytes = match codec::encode(value) {
            Ok(b) => b,
            Err(e) => {
                self.errors.write(SwarmError {
                    peer: to,
                    error: FastRtcError::Encode {
                        type_name: std::any::type_name::<T>(),
                        error: e.0,
                    },
                });
                return false;
            }
        };
        match self
            .swarm
            .queue(to.clone(), self.typed.channel, Payload::Binary(bytes))
        {
            Ok(()) => true,
            Err(e) => {
                self.errors.write(SwarmError {
                    peer: to,
                    error: e.into(),
                });
                false
            }
        }
    }
}
