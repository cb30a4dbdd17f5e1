//! A room of headless Bevy apps linked without sockets: each app runs [`FastRtcPlugin`] on the
//! in-memory backend ([`MemoryNet`]) with a shared [`ManualClock`], and its signaling frames
//! go through the real room state machine ([`Hub`]) in this process. The swarms' own
//! handshake decisions all run; only WebRTC and the network are replaced.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bevy::prelude::*;
use bevy_fast_rtc::prelude::*;
use bevy_fast_rtc::swarm::memory::MemoryNet;
use bevy_fast_rtc::swarm::{Clock, ManualClock, SwarmHandle};
use bevy_fast_rtc::{BackendFactory, Swarm};
use fast_rtc_protocol::ClientMsg;
use fast_rtc_server::Limits;
use fast_rtc_server::hub::{ConnId, Hub, Identity, Output, RoomGrant};
use std::time::Duration;

/// One app of the room.
pub struct Member {
    pub name: UserId,
    pub app: App,
    pub conn: ConnId,
    /// This member's answers are dropped instead of reaching the hub (its handshakes stall).
    pub drop_answers: bool,
}

/// The room: apps, the hub between them, the network and the clock.
pub struct Room {
    pub hub: Hub,
    pub net: MemoryNet,
    pub clock: ManualClock,
    pub members: Vec<Member>,
    next_conn: u64,
}

impl Room {
    pub fn new() -> Self {
        Room {
            hub: Hub::new(Limits::default()),
            net: MemoryNet::new(),
            clock: ManualClock::new(),
            members: Vec::new(),
            next_conn: 0,
        }
    }

    /// A plugin for this room: memory backend, manual clock, signaling pumped by [`Room::pump`].
    pub fn plugin(&self) -> FastRtcPlugin {
        FastRtcPlugin::new("lobby")
            .with_custom_backend(BackendFactory::memory(
                self.net.clone(),
                Clock::Manual(self.clock.clone()),
            ))
            .with_external_signaling()
    }

    /// Adds `app` (built with [`Room::plugin`]) as member `name` and runs its first frame.
    pub fn join(&mut self, name: &str, mut app: App) -> usize {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        let identity = Identity {
            user_id: name.into(),
            rooms: RoomGrant::Any,
        };
        self.hub.connect(self.clock.now(), conn, identity);
        app.update();
        self.members.push(Member {
            name: name.into(),
            app,
            conn,
            drop_answers: false,
        });
        self.members.len() - 1
    }

    pub fn handle(&self, i: usize) -> Option<SwarmHandle> {
        self.members[i]
            .app
            .world()
            .resource::<Swarm>()
            .handle()
            .cloned()
    }

    /// Moves every signaling frame waiting in either direction; returns how many moved.
    pub fn pump(&mut self) -> usize {
        let now = self.clock.now();
        let mut moved = 0;
        for i in 0..self.members.len() {
            let Some(handle) = self.handle(i) else {
                continue;
            };
            while let Some(msg) = handle.try_next_signal() {
                moved += 1;
                let dropped =
                    self.members[i].drop_answers && matches!(msg, ClientMsg::Answer { .. });
                if !dropped {
                    self.hub.handle_msg(now, self.members[i].conn, msg);
                }
            }
        }
        while let Some(out) = self.hub.poll() {
            if let Output::Send { to, msg } = out
                && let Some(m) = self.members.iter().position(|m| m.conn == to)
                && let Some(handle) = self.handle(m)
            {
                moved += 1;
                handle.dispatch(msg);
            }
        }
        moved
    }

    /// Pumps and updates every app until `done` holds, at most `frames` times. The swarms'
    /// drivers run on Bevy's IO task pool, so each frame also yields a little to them.
    pub fn run_until(&mut self, frames: usize, mut done: impl FnMut(&mut Room) -> bool) -> bool {
        for _ in 0..frames {
            self.pump();
            for m in &mut self.members {
                m.app.update();
            }
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        false
    }

    /// Runs `frames` frames whatever happens.
    pub fn run(&mut self, frames: usize) {
        self.run_until(frames, |_| false);
    }

    /// The app of member `i`.
    pub fn app(&mut self, i: usize) -> &mut App {
        &mut self.members[i].app
    }
}
