//! One room of the test: our real signaling server on a random loopback port, the pages of JS
//! members (one per browser), the native member processes, and the log of all their events.
//!
//! The server hands out ICE servers (its own STUN server on 127.0.0.1), as a deployment
//! across the internet does: every member's `joined` carries `iceServers`, which the JS
//! reference client must ignore, and which the native members use.

use super::browser::Browser;
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
    /// A page per browser; JS members join the first unless told otherwise.
    pages: Vec<(Browser, JsPage)>,
    /// The page of each JS member (an index into `pages`).
    js_pages: BTreeMap<String, usize>,
    natives: BTreeMap<String, NativeMember>,
    // Dropped last: the members above go first.
    server: ServerHandle,
}

impl Room {
    /// A room whose JS members run in the browser `FAST_RTC_JS_BROWSER` names (Chromium by
    /// default).
    pub async fn new(name: &str) -> Room {
        Room::with_browsers(name, &[Browser::from_env()]).await
    }

    /// A room with a page of JS members in each of `browsers`.
    pub async fn with_browsers(name: &str, browsers: &[Browser]) -> Room {
        let server = server_with(ServerConfig {
            ice: IceConfig {
                stun_listen: Some(StunListen::new("127.0.0.1:0".parse().unwrap())),
                ..IceConfig::default()
            },
            ..ServerConfig::default()
        })
        .await;
        let (reporter, log) = Log::new();
        let mut pages = Vec::new();
        for &browser in browsers {
            pages.push((browser, JsPage::open(browser, reporter.clone()).await));
        }
        Room {
            name: name.to_owned(),
            log,
            game_channel: true,
            js_greet_later: false,
            reporter,
            pages,
            js_pages: BTreeMap::new(),
            natives: BTreeMap::new(),
            server,
        }
    }

    /// A JS member `name` (also its identity) joins, in the room's first page.
    pub fn join_js(&mut self, name: &str) {
        let browser = self.pages[0].0;
        self.join_js_in(browser, name);
    }

    /// A JS member `name` joins in the page of `browser`.
    pub fn join_js_in(&mut self, browser: Browser, name: &str) {
        let index = self
            .pages
            .iter()
            .position(|(b, _)| *b == browser)
            .unwrap_or_else(|| panic!("the room has no {} page", browser.name()));
        self.js_pages.insert(name.to_owned(), index);
        let url = self.server.ws_url();
        self.pages[index]
            .1
            .join(name, &url, &token(name), &self.name, self.js_greet_later);
    }

    /// The page of JS member `name`.
    fn page(&self, name: &str) -> &JsPage {
        let index = self.js_pages.get(name).expect("no such JS member");
        &self.pages[*index].1
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

    /// A JS member `name` joins, in the room's first page, sending a sine of `hz` as stream
    /// and track `voice`.
    pub fn join_js_with_tone(&mut self, name: &str, hz: f32) {
        self.js_pages.insert(name.to_owned(), 0);
        let url = self.server.ws_url();
        self.pages[0]
            .1
            .join_with_tone(name, &url, &token(name), &self.name, hz);
    }

    /// JS member `name` mutes its track `voice`.
    pub fn mute_js(&self, name: &str) {
        self.page(name).mute(name);
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
        self.page(name).send(name, user_id, text);
    }

    /// JS member `name` calls `close()`.
    pub fn close_js(&self, name: &str) {
        self.page(name).close(name);
    }

    /// Native member `name` calls `close()`.
    pub fn close_native(&mut self, name: &str) {
        self.natives
            .get_mut(name)
            .expect("no such native member")
            .close();
    }
}
