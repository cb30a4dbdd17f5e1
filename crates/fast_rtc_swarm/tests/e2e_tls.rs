//! Real WebRTC over `wss://` signaling: a test CA and a server certificate for 127.0.0.1 made
//! with rcgen, the real server with TLS on a random loopback port, real webrtc-rs members that
//! trust the CA through `NativeConfig::tls_roots` (or do not).
#![cfg(not(target_arch = "wasm32"))] // native backend; the browser's wss is the page's
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)]

mod support;

use fast_rtc_protocol::{RoomId, UserId};
use fast_rtc_server::{ServerConfig, ServerHandle, TlsConfig};
use fast_rtc_swarm::{
    ChannelId, FailReason, NativeConfig, NativeError, Payload, ReconnectPolicy, Signaling,
    SignalingState, StartError, SwarmConfig, SwarmEvent, start,
};
use fast_rtc_testkit::pki::{Pki, TEST_CA};
use std::time::{Duration, Instant};
use support::*;

/// A CA (DER), and the PEM certificate and key it signed for `127.0.0.1` and `localhost`.
fn make_pki() -> (Vec<u8>, String, String) {
    let pki = Pki::new(TEST_CA).unwrap();
    (pki.ca_der, pki.cert_pem, pki.key_pem)
}

async fn tls_server(cert_pem: &str, key_pem: &str) -> ServerHandle {
    server_with(ServerConfig {
        tls: Some(TlsConfig::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap()),
        ..ServerConfig::default()
    })
    .await
}

/// Two members that trust the test CA join over wss://, link over WebRTC and exchange data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_join_over_wss_and_exchange_data() {
    let (ca, cert, key) = make_pki();
    let server = tls_server(&cert, &key).await;
    assert!(server.ws_url().starts_with("wss://127.0.0.1:"));
    let native = NativeConfig::loopback().with_tls_root(ca);
    let a = member_with(&server, "a", SwarmConfig::new("tls"), native.clone());
    let b = member_with(&server, "b", SwarmConfig::new("tls"), native);
    let started = Instant::now();
    wait_open(&a, &["b".into()], Duration::from_secs(30)).await;
    wait_open(&b, &["a".into()], Duration::from_secs(30)).await;
    eprintln!("linked over wss:// signaling in {:?}", started.elapsed());
    assert!(a.signaling_connected() && b.signaling_connected());

    a.send(&UserId::from("b"), ChannelId::FAST, "hello over wss")
        .unwrap();
    let got = collect_until(&b, Duration::from_secs(10), |evs| {
        evs.iter().any(|e| matches!(e, SwarmEvent::Data { .. }))
    })
    .await;
    let data = got.iter().find_map(|e| match e {
        SwarmEvent::Data { from, payload, .. } => Some((from.clone(), payload.clone())),
        _ => None,
    });
    assert_eq!(
        data,
        Some((UserId::from("a"), Payload::Text("hello over wss".into()))),
        "{got:?}"
    );
    a.close();
    b.close();
    server.shutdown().await.unwrap();
}

/// A member that does not trust the server's CA never gets in: no member on the server, no
/// link, and after its retry budget it fails with a typed `Unreachable` whose last error names
/// the certificate problem and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_does_not_trust_the_ca_does_not_connect_and_says_why() {
    let (ca, cert, key) = make_pki();
    let server = tls_server(&cert, &key).await;
    let trusted = member_with(
        &server,
        "trusted",
        SwarmConfig::new("tls-refused"),
        NativeConfig::loopback().with_tls_root(ca),
    );
    let mut config = SwarmConfig::new("tls-refused");
    config.reconnect = ReconnectPolicy {
        max_attempts: Some(3),
        ..ReconnectPolicy::default()
    };
    let untrusted = member_with(&server, "untrusted", config, NativeConfig::loopback());
    let events = collect_until(&untrusted, Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, SwarmEvent::Signaling(s) if s.is_failed()))
    })
    .await;
    let states: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::Signaling(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert!(opened(&events).is_empty(), "{events:?}");
    match states.as_slice() {
        [
            SignalingState::Connecting,
            SignalingState::Failed(FailReason::Unreachable {
                attempts: 3,
                last_error,
            }),
        ] => {
            assert!(
                last_error.contains("invalid peer certificate")
                    && last_error.contains("UnknownIssuer"),
                "{last_error}"
            );
            assert!(last_error.contains("tls_roots"), "{last_error}");
        }
        other => panic!("expected Connecting then Unreachable after 3 attempts: {other:?}"),
    }
    assert!(untrusted.is_closed());
    assert!(trusted.signaling_connected());
    let room = server.room(&RoomId::from("tls-refused")).await.unwrap();
    let members: Vec<_> = room.members.iter().map(|m| m.user_id.clone()).collect();
    assert_eq!(members, vec![UserId::from("trusted")]);
    trusted.close();
    server.shutdown().await.unwrap();
}

/// A `tls_roots` entry that is not a certificate makes `start` fail at once, saying which.
#[test]
fn a_bad_tls_root_fails_start() {
    let native = NativeConfig::loopback().with_tls_root(b"not DER".to_vec());
    let signaling = Signaling::WebSocket {
        url: "wss://127.0.0.1:1/ws".into(),
        token: "t".into(),
    };
    let err = start(SwarmConfig::new("r"), native, signaling)
        .err()
        .expect("start must refuse a bad root");
    assert!(
        matches!(
            err,
            StartError::Backend(NativeError::TlsRoot { index: 0, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("tls_roots[0]"), "{err}");
}
