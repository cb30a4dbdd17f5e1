//! What a test app saw: the plugin's messages, recorded every frame by [`record`].
#![allow(dead_code)]

use bevy::prelude::*;
use bevy_fast_rtc::prelude::*;

/// The messages one app received, in order. `T` is the app's typed game message.
#[derive(Resource)]
pub struct Seen<T: Send + Sync + 'static> {
    pub opened: Vec<UserId>,
    pub closed: Vec<(UserId, CloseReason)>,
    pub values: Vec<(UserId, T)>,
    pub raw: Vec<(UserId, ChannelId, Payload)>,
    pub errors: Vec<SwarmError>,
}

impl<T: Send + Sync + 'static> Default for Seen<T> {
    fn default() -> Self {
        Seen {
            opened: Vec::new(),
            closed: Vec::new(),
            values: Vec::new(),
            raw: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// Adds every message of this frame to the app's [`Seen<T>`].
pub fn record<T: Clone + Send + Sync + 'static>(
    mut seen: ResMut<Seen<T>>,
    mut opened: MessageReader<PeerOpened>,
    mut closed: MessageReader<PeerClosed>,
    mut values: MessageReader<FromPeer<T>>,
    mut raw: MessageReader<PeerData>,
    mut errors: MessageReader<SwarmError>,
) {
    seen.opened.extend(opened.read().map(|m| m.peer.clone()));
    seen.closed
        .extend(closed.read().map(|m| (m.peer.clone(), m.reason.clone())));
    seen.values
        .extend(values.read().map(|m| (m.peer.clone(), m.value.clone())));
    seen.raw.extend(
        raw.read()
            .map(|m| (m.peer.clone(), m.channel, m.payload.clone())),
    );
    seen.errors.extend(errors.read().cloned());
}
