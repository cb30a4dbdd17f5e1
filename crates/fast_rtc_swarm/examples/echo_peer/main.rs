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
use fast_rtc_swarm::{
    ChannelConfig, ChannelId, IceServer, IceTransportPolicy, NativeConfig, Payload, Signaling,
    SwarmConfig, SwarmEvent, SwarmHandle, TrackId, start,
};
use fast_rtc_testkit::routes::{self, RouteLayer};
use serde_json::{Value, json};
use tracing_subscriber::prelude::*;

const HELLO: &str = "hello from native";
const ECHO: &str = "echo:";

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

/// Closes the swarm at the first `close` line on stdin, or at the end of stdin.
fn close_on_stdin(swarm: SwarmHandle, voice: Option<TrackId>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            match line.as_deref().map(str::trim) {
                Ok("close") | Err(_) => break,
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

fn echo_of(payload: Payload) -> Option<Payload> {
    match payload {
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
    if args.stdin {
        close_on_stdin(swarm.clone(), track);
    }
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
                SwarmEvent::Interrupted { user_id, id } => report(
                    json,
                    json!({ "type": "interrupted", "userId": user_id.to_string(), "id": id.to_string() }),
                    Some(format!("the path to {user_id} is lost: restoring it")),
                ),
                SwarmEvent::Restored {
                    user_id,
                    id,
                    outage,
                } => report(
                    json,
                    json!({
                        "type": "restored",
                        "userId": user_id.to_string(),
                        "id": id.to_string(),
                        "outageMs": outage.as_millis() as u64,
                    }),
                    Some(format!("the path to {user_id} is back after {outage:?}")),
                ),
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
