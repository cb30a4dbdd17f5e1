//! TURN on loopback: a real coturn (Debian's `turnserver`) started by each test on a free port
//! of 127.0.0.1 with long-term credentials, the real signaling server, real webrtc-rs members
//! bound to 127.0.0.1 with the relay-only policy.
//!
//! These tests need `turnserver` on `PATH`, so they are `#[ignore]`d: a plain `cargo test`
//! lists them as ignored. `scripts/turn-loopback-test.sh` (run by `scripts/test.sh`) installs
//! coturn if missing and runs them with `--ignored`; there a missing `turnserver` FAILS them.
//!
//! - `a_wrong_turn_password_is_a_typed_fault`: a relay-only member with a wrong password gets
//!   `SwarmFault::RelayUnavailable` naming the TURN server, and no link; a member with the
//!   right password next to it gets no such fault.
//! - `the_right_turn_password_links_through_the_relay` (the positive control): two relay-only
//!   members with the right password link, exchange data, get no such fault, and both ends'
//!   selected candidate pair is `local=relay remote=relay` (read from the native backend's
//!   `selected candidate pair` event's fields by a tracing layer, not from text).
#![cfg(not(target_arch = "wasm32"))] // native backend and a local coturn
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)]

mod support;

use fast_rtc_protocol::{ConnectionId, UserId};
use fast_rtc_swarm::{
    ChannelId, IceServer, IceTransportPolicy, Payload, SignalingState, SwarmConfig, SwarmEvent,
    SwarmFault, SwarmHandle,
};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use support::*;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// A coturn on 127.0.0.1 with one long-term-credential user; killed on drop.
struct Coturn {
    child: Child,
    dir: PathBuf,
    /// `turn:127.0.0.1:PORT?transport=udp`.
    url: String,
}

impl Coturn {
    fn start(user: &str, password: &str) -> Coturn {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("fast-rtc-coturn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty_conf = dir.join("empty.conf");
        std::fs::write(&empty_conf, "").unwrap();
        let log = std::fs::File::create(dir.join("turn.log")).unwrap();
        let child = Command::new("turnserver")
            .args([
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--no-tcp",
                "--no-tcp-relay",
                "--lt-cred-mech",
                "--fingerprint",
                "--realm",
                "fast-rtc.test",
                "--listening-ip",
                "127.0.0.1",
                "--relay-ip",
                "127.0.0.1",
                "--allow-loopback-peers",
            ])
            .args(["--user", &format!("{user}:{password}")])
            .args(["--listening-port", &port.to_string()])
            // Debian's /etc/turnserver.conf says `syslog`: read an empty file instead, log to stdout.
            .arg("-c")
            .arg(&empty_conf)
            .args(["--log-file", "stdout"])
            .arg("--pidfile")
            .arg(dir.join("turn.pid"))
            .arg("--userdb")
            .arg(dir.join("turndb"))
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `turnserver` ({e}): these tests need Debian's coturn \
                     (scripts/turn-loopback-test.sh installs it and runs them)"
                )
            });
        let mut coturn = Coturn {
            child,
            dir,
            url: format!("turn:127.0.0.1:{port}?transport=udp"),
        };
        coturn.wait_ready(port);
        coturn
    }

    /// Waits until coturn answers a STUN binding request on its port.
    fn wait_ready(&mut self, port: u16) {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        // Binding request: type 0x0001, length 0, magic cookie, 12-byte transaction id.
        let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        request.extend_from_slice(b"fastrtcprobe");
        let mut buf = [0u8; 512];
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("turnserver exited at start ({status}):\n{}", self.log());
            }
            let _ = probe.send_to(&request, ("127.0.0.1", port));
            if let Ok(n) = probe.recv(&mut buf)
                && n >= 2
                && buf[..2] == [0x01, 0x01]
            {
                return;
            }
        }
        panic!("turnserver did not answer on port {port}:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("turn.log")).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One `selected candidate pair` event of the native backend: (connection id, local type,
/// remote type).
type Route = (String, String, String);

static ROUTES: Mutex<Vec<Route>> = Mutex::new(Vec::new());

/// Records the fields of the native backend's `selected candidate pair` events into [`ROUTES`].
struct RouteLayer;

impl<S: tracing::Subscriber> Layer<S> for RouteLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            message: String,
            id: String,
            local: String,
            remote: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                let value = format!("{value:?}");
                match field.name() {
                    "message" => self.message = value,
                    "id" => self.id = value,
                    "local" => self.local = value,
                    "remote" => self.remote = value,
                    _ => {}
                }
            }
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message == "selected candidate pair" {
            ROUTES.lock().unwrap().push((f.id, f.local, f.remote));
        }
    }
}

fn init_route_capture() {
    let routes = RouteLayer.with_filter(tracing_subscriber::filter::Targets::new().with_target(
        "fast_rtc_swarm::platform::native::peer",
        tracing::Level::INFO,
    ));
    let fmt = tracing_subscriber::fmt::layer()
        .with_test_writer()
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        );
    // Once per test binary; support::init_tracing's later try_init is then a no-op.
    let _ = tracing_subscriber::registry()
        .with(routes)
        .with(fmt)
        .try_init();
}

/// The selected pairs recorded for link `id`, waiting up to 5 s for `n` of them.
async fn routes_of(id: &ConnectionId, n: usize) -> Vec<Route> {
    let id = id.to_string();
    for _ in 0..50 {
        let found: Vec<Route> = ROUTES
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.0 == id)
            .cloned()
            .collect();
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ROUTES
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 == id)
        .cloned()
        .collect()
}

fn relay_only(room: &str, turn_url: &str, user: &str, credential: &str) -> SwarmConfig {
    let mut config = SwarmConfig::new(room);
    config
        .ice_servers
        .push(IceServer::turn(turn_url, user, credential));
    config.ice_transport_policy = IceTransportPolicy::Relay;
    config
}

fn relay_fault(event: &SwarmEvent) -> Option<&SwarmFault> {
    match event {
        SwarmEvent::Fault(f @ SwarmFault::RelayUnavailable { .. }) => Some(f),
        _ => None,
    }
}

/// Every event `h` reports within `d`.
async fn events_for(h: &SwarmHandle, d: Duration) -> Vec<SwarmEvent> {
    collect_until(h, d, |_| false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs coturn's `turnserver`: run by scripts/turn-loopback-test.sh with --ignored"]
async fn a_wrong_turn_password_is_a_typed_fault() {
    init_route_capture();
    let coturn = Coturn::start("player", "right-password");
    let server = server().await;
    let good = member(
        &server,
        "good",
        relay_only("turn-bad", &coturn.url, "player", "right-password"),
    );
    // The good member's parked offer is claimed by the bad one below.
    collect_until(&good, Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, SwarmEvent::Signaling(SignalingState::Joined)))
    })
    .await;
    let bad = member(
        &server,
        "bad",
        relay_only("turn-bad", &coturn.url, "player", "wrong-password"),
    );
    let events = collect_until(&bad, Duration::from_secs(20), |evs| {
        evs.iter().any(|e| relay_fault(e).is_some())
    })
    .await;
    let Some(SwarmFault::RelayUnavailable {
        servers,
        relay_only,
        id,
    }) = events.iter().find_map(relay_fault)
    else {
        panic!(
            "no RelayUnavailable fault for a wrong TURN password; events: {events:?}\ncoturn:\n{}",
            coturn.log()
        );
    };
    assert_eq!(servers, std::slice::from_ref(&coturn.url));
    assert!(relay_only);
    let text = events.iter().find_map(relay_fault).unwrap().to_string();
    println!("the fault: {text}");
    assert!(
        text.contains(&coturn.url) && text.contains(id.as_str()),
        "{text}"
    );
    assert!(
        opened(&events).is_empty(),
        "a member without TURN allocation linked: {events:?}"
    );
    // coturn did refuse the credentials (the fault is about them, not about reachability).
    assert!(
        coturn
            .log()
            .contains("user player credentials are incorrect"),
        "coturn did not log the refused credentials:\n{}",
        coturn.log()
    );
    // The member with the right password gathered its relay candidates: no such fault.
    let good_events = events_for(&good, Duration::from_secs(1)).await;
    assert!(
        !good_events.iter().any(|e| relay_fault(e).is_some()),
        "the right password was reported: {good_events:?}"
    );
    bad.close();
    good.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs coturn's `turnserver`: run by scripts/turn-loopback-test.sh with --ignored"]
async fn the_right_turn_password_links_through_the_relay() {
    init_route_capture();
    let coturn = Coturn::start("player", "right-password");
    let server = server().await;
    let a = member(
        &server,
        "a",
        relay_only("turn-ok", &coturn.url, "player", "right-password"),
    );
    let b = member(
        &server,
        "b",
        relay_only("turn-ok", &coturn.url, "player", "right-password"),
    );
    let a_events = wait_open(&a, &["b".into()], Duration::from_secs(20)).await;
    let b_events = wait_open(&b, &["a".into()], Duration::from_secs(20)).await;
    let id = a_events
        .iter()
        .find_map(|e| match e {
            SwarmEvent::Open(p) => Some(p.id.clone()),
            _ => None,
        })
        .unwrap();
    a.send(&UserId::from("b"), ChannelId::FAST, "through the relay")
        .unwrap();
    let got = collect_until(&b, Duration::from_secs(10), |evs| {
        evs.iter().any(|e| matches!(e, SwarmEvent::Data { .. }))
    })
    .await;
    assert!(
        got.iter().any(|e| matches!(e, SwarmEvent::Data { payload: Payload::Text(t), .. } if t == "through the relay")),
        "no data through the relay: {got:?}"
    );
    // Both ends' selected pair is relay to relay.
    let routes = routes_of(&id, 2).await;
    assert_eq!(routes.len(), 2, "selected pairs of {id}: {routes:?}");
    for (_, local, remote) in &routes {
        assert_eq!(
            (local.as_str(), remote.as_str()),
            ("relay", "relay"),
            "{routes:?}"
        );
    }
    let later_a = events_for(&a, Duration::from_secs(1)).await;
    for events in [&a_events, &b_events, &got, &later_a] {
        assert!(
            !events.iter().any(|e| relay_fault(e).is_some()),
            "a RelayUnavailable fault with the right password: {events:?}"
        );
    }
    a.close();
    b.close();
}
