//! The page of the JS members: a small HTTP server on a free loopback port serves it (the
//! bundled `scripts/browser/js/harness.js`) and its control WebSocket, and a headless Chromium
//! or Firefox shows it. Commands go to the page over the socket; the page reports every member's events
//! back as they happen.

use super::browser::{Browser, BrowserProcess};
use super::events::{Event, Report, Reporter, WAIT};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::header::CONTENT_TYPE;
use axum::response::{Html, Response};
use axum::routing::get;
use serde_json::json;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>fast-rtc: JS reference-client members</title>
<script type="module" src="/harness.bundle.js"></script>
"#;

/// What the page sends: an event of a member, or (member `null`) of the page itself.
#[derive(serde::Deserialize)]
struct PageMessage {
    member: Option<String>,
    #[serde(flatten)]
    event: Event,
}

#[derive(Clone)]
struct Control {
    log: Reporter,
    commands: Arc<Mutex<Option<UnboundedReceiver<String>>>>,
    ready: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

/// The page, ready for commands: the browser has loaded it and granted it the fake microphone.
pub struct JsPage {
    commands: UnboundedSender<String>,
    _browser: BrowserProcess,
    server: tokio::task::JoinHandle<()>,
}

impl JsPage {
    pub async fn open(browser: Browser, log: Reporter) -> JsPage {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        JsPage::open_in(browser, log, listener, None).await
    }

    /// As [`JsPage::open`], the page served on `listener` (bound on the browser's loopback) to
    /// a browser in the network namespace `netns` when given (a member on a site of the
    /// network lab: `listener` was bound inside that site).
    pub async fn open_in(
        browser: Browser,
        log: Reporter,
        listener: std::net::TcpListener,
        netns: Option<&str>,
    ) -> JsPage {
        let bundle_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/harness.bundle.js");
        let bundle = std::fs::read_to_string(&bundle_path).unwrap_or_else(|e| {
            panic!("{bundle_path:?}: {e} (scripts/setup-browser.sh bundles it)")
        });
        let (commands, commands_rx) = unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let control = Control {
            log,
            commands: Arc::new(Mutex::new(Some(commands_rx))),
            ready: Arc::new(Mutex::new(Some(ready_tx))),
        };
        let app = Router::new()
            .route("/", get(|| async { Html(PAGE) }))
            .route(
                "/harness.bundle.js",
                get(|| async move { ([(CONTENT_TYPE, "text/javascript")], bundle) }),
            )
            .route("/control", get(upgrade))
            .with_state(control);
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let process = BrowserProcess::open_in(browser, &format!("http://{addr}/"), netns);
        tokio::time::timeout(WAIT, ready_rx)
            .await
            .unwrap_or_else(|_| panic!("the page in {} did not report ready", browser.name()))
            .expect("the page's control socket closed before ready");
        JsPage {
            commands,
            _browser: process,
            server,
        }
    }

    fn command(&self, command: serde_json::Value) {
        self.commands.send(command.to_string()).unwrap();
    }

    /// A new JS member `name` joins `room`; it greets every peer from its `open` handler, or
    /// (`greet_later`) in the task after it.
    pub fn join(&self, name: &str, url: &str, token: &str, room: &str, greet_later: bool) {
        self.command(json!({
            "cmd": "join", "name": name, "url": url, "token": token, "room": room,
            "greetLater": greet_later
        }));
    }

    /// A new JS member `name` joins `room` sending a sine of `hz` as stream and track `voice`,
    /// and reports what it hears of every stream it is sent (`audio` events).
    pub fn join_with_tone(&self, name: &str, url: &str, token: &str, room: &str, hz: f32) {
        self.command(json!({
            "cmd": "join", "name": name, "url": url, "token": token, "room": room, "tone": hz
        }));
    }

    /// `name` mutes its track `voice` (`swarm.muteTrack`).
    pub fn mute(&self, name: &str) {
        self.command(json!({ "cmd": "mute", "name": name }));
    }

    /// `name` sends `text` to its peer `user_id` on `fast`.
    pub fn send(&self, name: &str, user_id: &str, text: &str) {
        self.command(json!({ "cmd": "send", "name": name, "userId": user_id, "text": text }));
    }

    /// `name` leaves the room (`swarm.close()`).
    pub fn close(&self, name: &str) {
        self.command(json!({ "cmd": "close", "name": name }));
    }
}

impl Drop for JsPage {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn upgrade(ws: WebSocketUpgrade, State(control): State<Control>) -> Response {
    ws.on_upgrade(move |socket| serve_control(socket, control))
}

/// Relays commands to the page and the page's reports to the log, for the one page there is.
async fn serve_control(mut socket: WebSocket, control: Control) {
    let Some(mut commands) = control.commands.lock().unwrap().take() else {
        return;
    };
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { break };
                if socket.send(Message::Text(command.into())).await.is_err() {
                    break;
                }
            }
            message = socket.recv() => {
                let Some(Ok(message)) = message else { break };
                if let Message::Text(text) = message {
                    report(&control, &text);
                }
            }
        }
    }
}

fn report(control: &Control, text: &str) {
    let at = Instant::now();
    let message: PageMessage =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("page: {e} in {text:?}"));
    match message.member {
        None if message.event.kind == "ready" => {
            if let Some(ready) = control.ready.lock().unwrap().take() {
                let _ = ready.send(());
            }
        }
        member => {
            let member = member.unwrap_or_else(|| "page".into());
            let _ = control.log.send(Report {
                member,
                at,
                event: message.event,
            });
        }
    }
}
