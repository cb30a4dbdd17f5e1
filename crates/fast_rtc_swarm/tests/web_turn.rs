//! The browser backend through a real TURN relay: this page (headless Chromium) and a native
//! member (`examples/echo_peer.rs`) in two network namespaces that cannot reach each other,
//! linked only through coturn, with relay-only candidates and with all candidates. Data flows
//! both ways, and the browser's selected candidate pair (from `RTCPeerConnection.getStats()`)
//! must go through the relay.
//!
//! Run by `scripts/turn-test.sh`, which builds the namespaces, starts coturn, the signaling
//! server and the native members (`native-relay` with `--relay-only` in room `browser-relay`,
//! `native-all` in room `browser-all`), and passes the settings in at compile time (a wasm test
//! cannot read the environment). The script checks the native side's selected pair itself.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;

use browser::*;
use fast_rtc_swarm::{
    ChannelId, IceServer, IceTransportPolicy, Payload, Signaling, SwarmConfig, SwarmHandle,
    WebConfig, start,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

// The swarm's peer connections are its own; the test sees them by wrapping the page's
// `RTCPeerConnection` constructor (the backend's `new RTCPeerConnection(..)` looks the global up
// at each call) before the swarm starts, and reads the selected pair from their stats.
#[wasm_bindgen(inline_js = r#"
export function recordPeerConnections() {
  if (globalThis.__fastRtcTurnPcs) return globalThis.__fastRtcTurnPcs.length;
  const pcs = [];
  const Original = globalThis.RTCPeerConnection;
  globalThis.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); pcs.push(this); }
  };
  globalThis.__fastRtcTurnPcs = pcs;
  return 0;
}

// The selected candidate pair of each connected peer connection created since `since`, as JSON:
// [{ local: { type, address, port, protocol, relayProtocol }, remote: { ... } }].
export async function connectedRoutes(since) {
  const routes = [];
  const describe = (c) => c && {
    type: c.candidateType, address: c.address ?? c.ip, port: c.port, protocol: c.protocol,
    relayProtocol: c.relayProtocol ?? null,
  };
  for (const pc of globalThis.__fastRtcTurnPcs.slice(since)) {
    if (pc.connectionState !== 'connected') continue;
    const stats = await pc.getStats();
    let pairId = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
    const pair = pairId ? stats.get(pairId) : null;
    routes.push({
      local: pair ? describe(stats.get(pair.localCandidateId)) : null,
      remote: pair ? describe(stats.get(pair.remoteCandidateId)) : null,
    });
  }
  return JSON.stringify(routes);
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = recordPeerConnections)]
    fn record_peer_connections() -> u32;
    #[wasm_bindgen(js_name = connectedRoutes)]
    async fn connected_routes(since: u32) -> JsValue;
}

/// One end of a selected candidate pair, as the browser's stats describe it.
#[derive(serde::Deserialize, Debug)]
struct Candidate {
    #[serde(rename = "type")]
    kind: String,
    address: Option<String>,
}

#[derive(serde::Deserialize, Debug)]
struct Route {
    local: Option<Candidate>,
    remote: Option<Candidate>,
}

/// Joins `room` through the TURN server with `policy`, opens a link with the native member
/// `native`, exchanges data both ways, and returns the browser's selected pair of that link.
async fn link_through_turn(room: &str, native: &str, policy: IceTransportPolicy) -> Route {
    let since = record_peer_connections();
    let mut config = SwarmConfig::new(room);
    config.ice_servers = vec![IceServer::turn(
        setting(
            option_env!("FAST_RTC_TURN_TEST_ICE_URL"),
            "FAST_RTC_TURN_TEST_ICE_URL",
        ),
        setting(
            option_env!("FAST_RTC_TURN_TEST_ICE_USERNAME"),
            "FAST_RTC_TURN_TEST_ICE_USERNAME",
        ),
        setting(
            option_env!("FAST_RTC_TURN_TEST_ICE_CREDENTIAL"),
            "FAST_RTC_TURN_TEST_ICE_CREDENTIAL",
        ),
    )];
    config.ice_transport_policy = policy;
    let signaling = Signaling::WebSocket {
        url: setting(
            option_env!("FAST_RTC_TURN_TEST_URL"),
            "FAST_RTC_TURN_TEST_URL",
        )
        .into(),
        token: setting(
            option_env!("FAST_RTC_TURN_TEST_TOKEN"),
            "FAST_RTC_TURN_TEST_TOKEN",
        )
        .into(),
    };
    let (web, driver) = start(config, WebConfig::default(), signaling).expect("start");
    wasm_bindgen_futures::spawn_local(driver);

    let peer = opened(&web).await;
    assert_eq!(peer.user_id.as_str(), native);
    // native -> browser: echo_peer's hello, sent when its end opened.
    let (hello, from) = data_on(&web, ChannelId::FAST).await;
    assert_eq!(
        (hello, from.as_str()),
        (Payload::Text("hello from native".into()), native)
    );
    // browser -> native -> browser (the script also finds this message in the native's log).
    let ping = format!("ping from the browser through {room}");
    web.send(&peer.user_id, ChannelId::FAST, ping.as_str())
        .unwrap();
    assert_eq!(
        data_on(&web, ChannelId::FAST).await.0,
        Payload::Text(format!("echo:{ping}"))
    );

    let routes = connected_routes(since).await.as_string().expect("a string");
    let mut routes: Vec<Route> = serde_json::from_str(&routes).unwrap();
    web_sys::console::log_1(&format!("{room}: browser's selected pairs {routes:?}").into());
    assert_eq!(routes.len(), 1, "one connected peer connection: {routes:?}");
    close_and_settle(web).await;
    routes.remove(0)
}

/// Closes `web` and gives its connections a moment to close before the next test.
async fn close_and_settle(web: SwarmHandle) {
    web.close();
    sleep_ms(300).await;
}

fn kind(c: &Option<Candidate>) -> &str {
    c.as_ref().map_or("none", |c| c.kind.as_str())
}

/// Relay-only on both ends: the browser's pair is relay <-> relay.
#[wasm_bindgen_test]
async fn browser_and_native_link_through_turn_relay_only() {
    let route = link_through_turn("browser-relay", "native-relay", IceTransportPolicy::Relay).await;
    assert_eq!(
        (kind(&route.local), kind(&route.remote)),
        ("relay", "relay"),
        "{route:?}"
    );
}

/// All candidates on both ends: host pairs cannot work (the namespaces do not route to each
/// other), so the selected pair must go through the relay: the browser's own relay candidate,
/// or the native's relayed address (the relay's IP, which the browser may see as
/// peer-reflexive).
#[wasm_bindgen_test]
async fn browser_and_native_link_through_turn_all_candidates() {
    // Chromium then offers its real host address (10.201.2.2) instead of an mDNS name: a
    // candidate the native end can try, and must fail on.
    allow_loopback_candidates().await;
    let relay_ip = setting(
        option_env!("FAST_RTC_TURN_TEST_RELAY_IP"),
        "FAST_RTC_TURN_TEST_RELAY_IP",
    );
    let route = link_through_turn("browser-all", "native-all", IceTransportPolicy::All).await;
    let remote_is_relayed = route
        .remote
        .as_ref()
        .is_some_and(|c| c.kind == "relay" || c.address.as_deref() == Some(relay_ip));
    assert!(
        kind(&route.local) == "relay" || remote_is_relayed,
        "the selected pair does not go through the relay: {route:?}"
    );
}
