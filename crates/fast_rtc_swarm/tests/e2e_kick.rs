//! An operator kicks a member through the server's admin API, with real webrtc-rs members on
//! 127.0.0.1: the kicked member ends `Failed(Kicked)` and does not come back, and the others
//! drop their open links to it (on the server's `kicked`, or on the kicked member's own
//! `@fast/close`, whichever comes first).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests read the clock for deadlines
#![cfg(not(target_arch = "wasm32"))] // native backend

mod support;

use fast_rtc_server::{AdminConfig, Secret, ServerConfig};
use fast_rtc_swarm::{CloseReason, FailReason, SignalingState, SwarmConfig, SwarmEvent};
use std::io::{Read, Write};
use std::time::Duration;
use support::{collect_until, member, server_with, wait_open};

const ADMIN: &str = "admin-secret-0123456789abcdef0123456789abcdef";

/// `POST /kick` on the admin listener: the status.
fn kick(addr: std::net::SocketAddr, body: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /kick HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {ADMIN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_member_fails_kicked_and_the_others_drop_their_links_to_it() {
    let server = server_with(ServerConfig {
        admin: Some(AdminConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            secret: Secret::new(ADMIN).unwrap(),
        }),
        ..ServerConfig::default()
    })
    .await;
    let names = ["a", "b", "c"];
    let members: Vec<_> = names
        .iter()
        .map(|n| member(&server, n, SwarmConfig::new("k")))
        .collect();
    for (i, m) in members.iter().enumerate() {
        let others: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| n.to_string())
            .collect();
        wait_open(m, &others, Duration::from_secs(30)).await;
    }
    let admin = server.admin_addr().unwrap();
    let status = tokio::task::spawn_blocking(move || {
        kick(admin, r#"{"room":"k","userId":"b","reason":"cheating"}"#)
    })
    .await
    .unwrap();
    assert_eq!(status, 200);

    let failed = SignalingState::Failed(FailReason::Kicked {
        reason: "cheating".into(),
    });
    let events = collect_until(&members[1], Duration::from_secs(10), |evs| {
        evs.iter()
            .any(|e| matches!(e, SwarmEvent::Signaling(s) if s.is_failed()))
    })
    .await;
    assert!(
        events.contains(&SwarmEvent::Signaling(failed.clone())),
        "{events:?}"
    );
    assert!(members[1].is_closed());
    for i in [0, 2] {
        let events = collect_until(&members[i], Duration::from_secs(10), |evs| {
            evs.iter().any(|e| matches!(e, SwarmEvent::Close { .. }))
        })
        .await;
        // The server's `kicked` and b's own `@fast/close` (its swarm closes every link when it
        // fails) race: either closes the link (the core's tests pin the `kicked` path).
        assert!(
            events.iter().any(|e| matches!(
                e,
                SwarmEvent::Close { peer, reason: CloseReason::Kicked | CloseReason::Remote }
                    if peer.user_id.as_str() == "b"
            )),
            "member {i}: {events:?}"
        );
        assert_eq!(
            members[i].peers().len(),
            1,
            "member {i} keeps its other link"
        );
    }
    // The kicked member does not come back.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let room = server.room(&"k".into()).await.unwrap();
    let mut left: Vec<_> = room.members.iter().map(|m| m.user_id.to_string()).collect();
    left.sort();
    assert_eq!(
        left,
        ["a", "c"],
        "b stays out (the three joined in any order)"
    );
    server.shutdown().await.unwrap();
}
