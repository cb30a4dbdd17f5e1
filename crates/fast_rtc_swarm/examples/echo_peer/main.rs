//! A native member that echoes: every message it receives goes back to its sender on the same
//! channel, prefixed with `echo:` (a message that already starts with `echo:` is not echoed
//! again, so two echo peers do not ping-pong forever). On each peer's open it also says
//! `hello from native` on `fast`, from the `Open` event itself: the first moment the API allows.
//! The browser tests (`scripts/browser-test.sh`) run it beside a page; it is also a quick
//! partner for trying any client by hand.
//!
//! ```sh
//! cargo run -p fast_rtc_swarm --example echo_peer -- --url ws://127.0.0.1:8787/ws --token TOKEN --room ROOM
//! ```
//!
//! Its channels: `fast` and the unreliable `state` (channel 1), as the browser test's swarm;
//! `--fast-only` leaves `state` out.
//!
//! For test harnesses (`tests/js_native_interop.rs`): `--json` prints one JSON object per line
//! on stdout for each event (`open`, `close`, `data`, `send_error`, `fault`, `signaling`: the
//! signaling session's state, `Joined` once the server took it into the room; `interrupted` and
//! `restored` around an ICE restart), `--hello-binary`
//! also sends the hello as a binary message, and `--stdin` reads commands from stdin (`close`
//! leaves the room; end of input does too), so a harness can close it at a moment of its
//! choosing.
//!
//! For voice tests (`tests/js_native_voice.rs`, feature `voice`): `--tone HZ` declares the
//! audio track `voice`, plays a sine of `HZ` on it, and reports what it hears (`audio`
//! events, see `voice.rs`) and the peers' track changes (`track` events); `mute` and `unmute`
//! on stdin mute and unmute it.
//!
//! For the network lab's outage tests (`crates/fast_rtc_netlab/tests/outage.rs`):
//! `--stream-ms MS` sends a game-like stream on `fast` (reliable, ordered) to every open peer,
//! `seq:1`, `seq:2`, … (one counter per peer, a number taken only by a send the swarm
//! accepted, so the receiver must see every one exactly once and in order; `seq:` messages
//! are not echoed), one every `MS` ms; with `--stdin`, the command `stop` ends the stream and
//! prints a `streamed` event per peer with the last number sent. `restored` events name the
//! selected pair after the restore (`local`, `remote`, `localAddr`, `remoteAddr`, as `open`).
//!
//! For TURN tests (`scripts/turn-test.sh`): `--ice-server URL` (repeatable) with
//! `--ice-username`/`--ice-credential`, `--relay-only` (relay candidates only) and `--bind ADDR`
//! (the local UDP address to bind instead of `127.0.0.1:0`).
//!
//! Each `open` event also names the link's selected candidate pair, as the native backend
//! logged it from webrtc-rs's stats when ICE connected (recorded by the test kit's
//! `RouteLayer`): `local` and `remote` are the candidate types (`host`, `srflx`, `prflx`,
//! `relay`), `localAddr` and `remoteAddr` their addresses (`null` if none was recorded). The
//! network lab's tests (`crates/fast_rtc_netlab/tests/`) read them.

#[cfg(feature = "voice")]
mod voice;

use clap::Parser;
use fast_rtc_protocol::UserId;
use fast_rtc_swarm::{
    ChannelConfig, ChannelId, IceServer, IceTransportPolicy, NativeConfig, Payload, Signaling,
    SwarmConfig, SwarmEvent, SwarmHandle, TrackId, start,
};
use fast_rtc_testkit::routes::{self, RouteLayer};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tracing_subscriber::prelude::*;

const HELLO: &str = "hello from native";
const ECHO: &str = "echo:";
/// The prefix of the `--stream-ms` messages.
const SEQ: &str = "seq:";

#[derive(Parser)]
struct Args {
    /// Signaling server WebSocket URL.
    #[arg(long)]
    url: String,
    /// This member's token (`fast-rtc-server token --sub NAME --room ROOM`).
    #[arg(long)]
    token: String,
    /// Room to join.
    #[arg(long)]
    room: String,
    /// Print events as JSON lines on stdout instead of human-readable lines.
    #[arg(long)]
    json: bool,
    /// On each open, also send the hello as a binary message (after the text one).
    #[arg(long)]
    hello_binary: bool,
    /// Read commands from stdin, one a line: `close` leaves the room (so does end of input).
    #[arg(long)]
    stdin: bool,
    /// Only the `fast` channel, no `state`.
    #[arg(long)]
    fast_only: bool,
    /// A STUN or TURN server URL (`turn:10.0.0.1:3478?transport=udp`); repeatable.
    #[arg(long)]
    ice_server: Vec<String>,
    /// TURN username, for every `--ice-server`.
    #[arg(long, default_value = "")]
    ice_username: String,
    /// TURN credential, for every `--ice-server`.
    #[arg(long, default_value = "")]
    ice_credential: String,
    /// Use relay (TURN) candidates only.
    #[arg(long)]
    relay_only: bool,
    /// Local UDP address to bind (default `127.0.0.1:0`).
    #[arg(long)]
    bind: Option<std::net::SocketAddr>,
    /// Send `seq:N` on `fast` to every open peer every this many milliseconds.
    #[arg(long)]
    stream_ms: Option<u64>,
    /// Play a sine of this frequency on the audio track `voice` (feature `voice`).
    #[cfg(feature = "voice")]
    #[arg(long)]
    tone: Option<f32>,
}

/// Prints one event: its JSON form with `--json`, else the human line (if any).
fn report(json: bool, event: Value, human: Option<String>) {
    if json {
        println!("{event}");
    } else if let Some(line) = human {
        println!("echo_peer: {line}");
    }
}

/// Closes the swarm at the first `close` line on stdin, or at the end of stdin; `stop` ends
/// the stream.
fn close_on_stdin(swarm: SwarmHandle, voice: Option<TrackId>, stream: Option<Arc<Stream>>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            match line.as_deref().map(str::trim) {
                Ok("close") | Err(_) => break,
                Ok("stop") => match &stream {
                    Some(stream) => stream.stop(),
                    None => eprintln!("echo_peer: stop: no stream (--stream-ms)"),
                },
                Ok(command @ ("mute" | "unmute")) => match voice {
                    Some(track) => {
                        if let Err(e) = swarm.mute_track(track, command == "mute") {
                            eprintln!("echo_peer: {command}: {e}");
                        }
                    }
                    None => eprintln!("echo_peer: {command}: no audio track (--tone)"),
                },
                Ok(other) => eprintln!("echo_peer: unknown command {other:?}"),
            }
        }
        swarm.close();
    });
}

/// The `--stream-ms` stream: each open peer's next number.
struct Stream {
    peers: Mutex<Vec<(UserId, u64)>>,
    stopped: AtomicBool,
}

impl Stream {
    /// Sends to every open peer every `interval` until stopped.
    fn start(swarm: SwarmHandle, interval: Duration) -> Arc<Stream> {
        let stream = Arc::new(Stream {
            peers: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
        });
        let shared = stream.clone();
        std::thread::spawn(move || {
            while !shared.stopped.load(Ordering::SeqCst) && !swarm.is_closed() {
                for (peer, next) in shared.lock().iter_mut() {
                    let message = format!("{SEQ}{next}");
                    // A refused send (a full buffer) takes no number: it is tried again.
                    if swarm.send(peer, ChannelId::FAST, message).is_ok() {
                        *next += 1;
                    }
                }
                std::thread::sleep(interval);
            }
        });
        stream
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(UserId, u64)>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A peer opened: its stream starts at 1.
    fn open(&self, peer: &UserId) {
        let mut peers = self.lock();
        if !peers.iter().any(|(p, _)| p == peer) {
            peers.push((peer.clone(), 1));
        }
    }

    /// A peer closed: nothing more to it.
    fn close(&self, peer: &UserId) {
        self.lock().retain(|(p, _)| p != peer);
    }

    /// Ends the stream and reports the last number sent to each peer.
    fn stop(&self) {
        let peers = self.lock();
        self.stopped.store(true, Ordering::SeqCst);
        for (peer, next) in peers.iter() {
            let last = next - 1;
            println!(
                "{}",
                json!({ "type": "streamed", "userId": peer.to_string(), "last": last })
            );
        }
    }
}

fn echo_of(payload: Payload) -> Option<Payload> {
    match payload {
        Payload::Text(t) if t.starts_with(SEQ) => None,
        Payload::Text(t) if !t.starts_with(ECHO) => Some(Payload::Text(format!("{ECHO}{t}"))),
        Payload::Binary(mut b) if !b.starts_with(ECHO.as_bytes()) => {
            b.splice(0..0, ECHO.bytes());
            Some(Payload::Binary(b))
        }
        _ => None,
    }
}

fn payload_json(payload: &Payload) -> Value {
    match payload {
        Payload::Text(t) => json!({ "text": t }),
        Payload::Binary(b) => json!({ "bytes": b }),
    }
}

/// The selected pair recorded for link `id` after the first `before` (ICE connected again
/// after a restart), waiting for it up to a second: the backend records it while the swarm
/// reports the restore.
fn new_route(id: &str, before: usize) -> Option<routes::Route> {
    // 100 looks, 10 ms apart.
    for _ in 0..100 {
        if routes::recorded(&[id.to_owned()]).len() > before {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    routes::recorded(&[id.to_owned()])
        .into_iter()
        .skip(before)
        .last()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .with(RouteLayer::filtered())
        .init();
    let mut config = SwarmConfig::new(args.room);
    if !args.fast_only {
        config.add_channel(ChannelConfig::unreliable("state"));
    }
    config.ice_servers = args
        .ice_server
        .iter()
        .map(|url| IceServer::turn(url, &args.ice_username, &args.ice_credential))
        .collect();
    if args.relay_only {
        config.ice_transport_policy = IceTransportPolicy::Relay;
    }
    let mut native = NativeConfig::loopback();
    if let Some(bind) = args.bind {
        native.udp_addrs = vec![bind];
    }
    #[cfg(feature = "voice")]
    let track = args.tone.map(|_| voice::declare(&mut config));
    #[cfg(not(feature = "voice"))]
    let track: Option<TrackId> = None;
    let signaling = Signaling::WebSocket {
        url: args.url,
        token: args.token,
    };
    let (swarm, driver) = start(config, native, signaling)?;
    std::thread::spawn(move || futures_lite::future::block_on(driver));
    let stream = args
        .stream_ms
        .map(|ms| Stream::start(swarm.clone(), Duration::from_millis(ms.max(1))));
    if args.stdin {
        close_on_stdin(swarm.clone(), track, stream.clone());
    }
    // Per link, how many selected pairs were recorded when its path was lost.
    let mut routes_at_outage: HashMap<String, usize> = HashMap::new();
    #[cfg(feature = "voice")]
    if let (Some(track), Some(hz)) = (track, args.tone) {
        voice::play(&swarm, track, hz)?;
    }
    #[cfg(feature = "voice")]
    let mut ears = voice::Ears::default();
    let json = args.json;
    report(json, json!({ "type": "started" }), Some("joined".into()));
    let send = |to: &fast_rtc_protocol::UserId, channel: ChannelId, payload: Payload| {
        if let Err(e) = swarm.send(to, channel, payload) {
            report(
                json,
                json!({ "type": "send_error", "userId": to.to_string(), "error": e.to_string() }),
                None,
            );
            eprintln!("echo_peer: could not send to {to}: {e}");
        }
    };
    futures_lite::future::block_on(async {
        while let Some(event) = swarm.recv().await {
            match event {
                SwarmEvent::Open(peer) => {
                    let origin = format!("{:?}", peer.origin);
                    // Logged when ICE connected, before the channels opened.
                    let route = routes::recorded(&[peer.id.to_string()]).pop();
                    let via = route
                        .as_ref()
                        .map(|r| format!(" via {} -> {}", r.local, r.remote))
                        .unwrap_or_default();
                    report(
                        json,
                        json!({
                            "type": "open",
                            "userId": peer.user_id.to_string(),
                            "id": peer.id.to_string(),
                            "origin": origin,
                            "local": route.as_ref().map(|r| &r.local),
                            "remote": route.as_ref().map(|r| &r.remote),
                            "localAddr": route.as_ref().map(|r| &r.local_addr),
                            "remoteAddr": route.as_ref().map(|r| &r.remote_addr),
                        }),
                        Some(format!("open {}{via}", peer.user_id)),
                    );
                    send(&peer.user_id, ChannelId::FAST, HELLO.into());
                    if let Some(stream) = &stream {
                        stream.open(&peer.user_id);
                    }
                    if args.hello_binary {
                        send(&peer.user_id, ChannelId::FAST, HELLO.as_bytes().into());
                    }
                }
                SwarmEvent::Data {
                    from,
                    id,
                    channel,
                    payload,
                } => {
                    let mut event = payload_json(&payload);
                    event["type"] = "data".into();
                    event["userId"] = from.to_string().into();
                    event["id"] = id.to_string().into();
                    event["channel"] = channel.0.into();
                    report(json, event, None);
                    if let Some(echo) = echo_of(payload) {
                        send(&from, channel, echo);
                    }
                }
                SwarmEvent::Close { peer, reason } => {
                    if let Some(stream) = &stream {
                        stream.close(&peer.user_id);
                    }
                    report(
                        json,
                        json!({
                            "type": "close",
                            "userId": peer.user_id.to_string(),
                            "reason": format!("{reason:?}"),
                        }),
                        Some(format!("closed {} ({reason:?})", peer.user_id)),
                    );
                }
                #[cfg(feature = "voice")]
                SwarmEvent::Audio { from, samples, .. } => {
                    if let Some(event) = ears.hear(&from, &samples) {
                        report(json, event, None);
                    }
                }
                SwarmEvent::TrackAdded { peer, .. } => report(
                    json,
                    json!({ "type": "track", "userId": peer.to_string(), "state": "added" }),
                    Some(format!("{peer} added a track")),
                ),
                SwarmEvent::TrackMuted { peer, muted, .. } => {
                    let state = if muted { "muted" } else { "unmuted" };
                    report(
                        json,
                        json!({ "type": "track", "userId": peer.to_string(), "state": state }),
                        Some(format!("{peer}'s track is {state}")),
                    );
                }
                SwarmEvent::TrackRemoved { peer, .. } => report(
                    json,
                    json!({ "type": "track", "userId": peer.to_string(), "state": "removed" }),
                    Some(format!("{peer} removed a track")),
                ),
                SwarmEvent::Interrupted { user_id, id } => {
                    let recorded = routes::recorded(&[id.to_string()]).len();
                    routes_at_outage.insert(id.to_string(), recorded);
                    report(
                        json,
                        json!({ "type": "interrupted", "userId": user_id.to_string(), "id": id.to_string() }),
                        Some(format!("the path to {user_id} is lost: restoring it")),
                    )
                }
                SwarmEvent::Restored {
                    user_id,
                    id,
                    outage,
                } => {
                    let before = routes_at_outage.remove(&id.to_string()).unwrap_or(0);
                    let route = new_route(&id.to_string(), before);
                    report(
                        json,
                        json!({
                            "type": "restored",
                            "userId": user_id.to_string(),
                            "id": id.to_string(),
                            "outageMs": outage.as_millis() as u64,
                            "local": route.as_ref().map(|r| &r.local),
                            "remote": route.as_ref().map(|r| &r.remote),
                            "localAddr": route.as_ref().map(|r| &r.local_addr),
                            "remoteAddr": route.as_ref().map(|r| &r.remote_addr),
                        }),
                        Some(format!("the path to {user_id} is back after {outage:?}")),
                    )
                }
                SwarmEvent::Signaling(state) => report(
                    json,
                    json!({ "type": "signaling", "state": format!("{state:?}") }),
                    Some(format!("signaling: {state:?}")),
                ),
                SwarmEvent::Fault(fault) => {
                    report(
                        json,
                        json!({ "type": "fault", "error": fault.to_string() }),
                        Some(format!("fault: {fault}")),
                    );
                }
                _ => {}
            }
        }
    });
    Ok(())
}
