//! One room of the test: our real signaling server on a random loopback port, the page of JS
//! members, the native member processes, and the log of all their events.
//!
//! The server hands out ICE servers (its own STUN server on 127.0.0.1), as a deployment
//! across the internet does: every member's `joined` carries `iceServers`, which the JS
//! reference client must ignore, and which the native members use.

use super::events::{Log, Reporter};
use super::native::NativeMember;
use super::page::JsPage;
use crate::support::{server_with, token};
use fast_rtc_server::{IceConfig, ServerConfig, ServerHandle, StunListen};
use std::collections::BTreeMap;

pub struct Room {
    pub name: String,
    pub log: Log,
    /// Whether native members joining from now on also open the `state` game channel (as
    /// offerers) besides `fast`, the only channel the JS client uses.
    pub game_channel: bool,
    /// Whether JS members joining from now on greet in the task after their `open` handler
    /// instead of in it: Chromium may lose sends made in that handler (see the `known_bug_`
    /// tests of `tests/js_native_interop.rs`), which is not what most tests look at.
    pub js_greet_later: bool,
    reporter: Reporter,
    page: JsPage,
    natives: BTreeMap<String, NativeMember>,
    // Dropped last: the members above go first.
    server: ServerHandle,
}

impl Room {
    pub async fn new(name: &str) -> Room {
        let server = server_with(ServerConfig {
            ice: IceConfig {
                stun_listen: Some(StunListen::new("127.0.0.1:0".parse().unwrap())),
                ..IceConfig::default()
            },
            ..ServerConfig::default()
        })
        .await;
        let (reporter, log) = Log::new();
        let page = JsPage::open(reporter.clone()).await;
        Room {
            name: name.to_owned(),
            log,
            game_channel: true,
            js_greet_later: false,
            reporter,
            page,
            natives: BTreeMap::new(),
            server,
        }
    }

    /// A JS member `name` (also its identity) joins.
    pub fn join_js(&self, name: &str) {
        let url = self.server.ws_url();
        self.page
            .join(name, &url, &token(name), &self.name, self.js_greet_later);
    }

    /// A native member `name` (also its identity) joins, as a new process.
    pub fn join_native(&mut self, name: &str) {
        self.spawn_native(name, None);
    }

    /// A native member `name` joins playing a sine of `hz` on its track `voice`.
    pub fn join_native_with_tone(&mut self, name: &str, hz: f32) {
        self.spawn_native(name, Some(hz));
    }

    fn spawn_native(&mut self, name: &str, tone: Option<f32>) {
        let url = self.server.ws_url();
        let token = token(name);
        let log = self.reporter.clone();
        let member =
            NativeMember::spawn(name, &url, &token, &self.name, self.game_channel, tone, log);
        self.natives.insert(name.to_owned(), member);
    }

    /// A JS member `name` joins sending a sine of `hz` as stream and track `voice`.
    pub fn join_js_with_tone(&self, name: &str, hz: f32) {
        let url = self.server.ws_url();
        self.page
            .join_with_tone(name, &url, &token(name), &self.name, hz);
    }

    /// JS member `name` mutes its track `voice`.
    pub fn mute_js(&self, name: &str) {
        self.page.mute(name);
    }

    /// Native member `name` mutes or unmutes its track `voice`.
    pub fn mute_native(&mut self, name: &str, muted: bool) {
        self.natives
            .get_mut(name)
            .expect("no such native member")
            .mute(muted);
    }

    /// JS member `name` sends `text` to `user_id`.
    pub fn js_send(&self, name: &str, user_id: &str, text: &str) {
        self.page.send(name, user_id, text);
    }

    /// JS member `name` calls `close()`.
    pub fn close_js(&self, name: &str) {
        self.page.close(name);
    }

    /// Native member `name` calls `close()`.
    pub fn close_native(&mut self, name: &str) {
        self.natives
            .get_mut(name)
            .expect("no such native member")
            .close();
    }
}
