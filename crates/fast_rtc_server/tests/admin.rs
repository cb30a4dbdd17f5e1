//! The admin API over the wire: a real server with its admin listener on random loopback ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests read the clock for tokens and deadlines

mod http;
mod running;

use fast_rtc_protocol::{ClientMsg, ServerMsg, decode_server, encode};
use fast_rtc_server::{AdminConfig, CLOSE_KICKED, Secret, ServerConfig, ServerHandle};
use futures_util::{SinkExt, StreamExt};
use running::token;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const ADMIN: &str = "admin-secret-0123456789abcdef0123456789abcdef";
const STEP: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn start() -> ServerHandle {
    running::start(ServerConfig {
        admin: Some(AdminConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            secret: Secret::new(ADMIN).unwrap(),
        }),
        ..ServerConfig::default()
    })
    .await
}

async fn connect(server: &ServerHandle, tok: &str) -> Result<Ws, u16> {
    let url = format!("{}?token={tok}", server.ws_url());
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

async fn send(ws: &mut Ws, msg: &ClientMsg) {
    ws.send(Message::text(encode(msg))).await.unwrap();
}

async fn recv(ws: &mut Ws) -> ServerMsg {
    loop {
        match tokio::time::timeout(STEP, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => return decode_server(t.as_str()).unwrap(),
            Some(Ok(Message::Close(c))) => panic!("closed: {c:?}"),
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

/// Joins `room` and parks offer `offer`.
async fn member(server: &ServerHandle, tok: &str, offer: &str) -> Ws {
    let mut ws = connect(server, tok).await.unwrap();
    send(
        &mut ws,
        &ClientMsg::Offer {
            id: offer.into(),
            sdp: "v=0".into(),
        },
    )
    .await;
    send(
        &mut ws,
        &ClientMsg::Init {
            user_id: None,
            room_id: "r".into(),
            resume: None,
        },
    )
    .await;
    assert!(matches!(recv(&mut ws).await, ServerMsg::Joined { .. }));
    ws
}

/// A raw HTTP request to `addr`: the status and the body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: Bearer {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split(' ').nth(1).unwrap().parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn admin(
    server: &ServerHandle,
    method: &'static str,
    path: &'static str,
    auth: Option<&'static str>,
    body: String,
) -> (u16, String) {
    let addr = server.admin_addr().unwrap();
    tokio::task::spawn_blocking(move || request(addr, method, path, auth, &body))
        .await
        .unwrap()
}

/// An operator kicks bob: bob gets `kicked` and the close code 4001, alice (linked to him) gets
/// `kicked` and `leaveSwarm` for their link, and bob's token is refused from then on (a fresh
/// token of his is not). Without the admin secret nothing happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_member_is_closed_told_to_the_room_and_its_token_revoked() {
    let server = start().await;
    let mut alice = member(&server, &token("alice"), "a1").await;
    let bob_token = token("bob");
    let mut bob = member(&server, &bob_token, "b1").await;
    // Bob took alice's parked offer: they are linked by a1.
    assert!(matches!(recv(&mut bob).await, ServerMsg::Accept { .. }));
    let kick = r#"{"room":"r","userId":"bob","reason":"cheating"}"#.to_owned();

    assert_eq!(
        admin(&server, "POST", "/kick", None, kick.clone()).await.0,
        401
    );
    assert_eq!(
        admin(&server, "POST", "/kick", Some("wrong-secret"), kick.clone())
            .await
            .0,
        401
    );
    let (status, body) = admin(&server, "POST", "/kick", Some(ADMIN), kick.clone()).await;
    assert_eq!((status, body.as_str()), (200, r#"{"kicked":true}"#));

    assert_eq!(
        recv(&mut bob).await,
        ServerMsg::Kicked {
            user_id: "bob".into(),
            reason: "cheating".into()
        }
    );
    let closed = loop {
        match tokio::time::timeout(STEP, bob.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            _ => break None,
        }
    };
    assert_eq!(closed, Some(CLOSE_KICKED));

    let mut told = Vec::new();
    while told.len() < 2 {
        match recv(&mut alice).await {
            ServerMsg::OfferAccepted { .. } | ServerMsg::OfferRequest => {}
            msg => told.push(msg),
        }
    }
    assert!(
        told.contains(&ServerMsg::LeaveSwarm { id: "a1".into() }),
        "{told:?}"
    );
    assert!(
        told.contains(&ServerMsg::Kicked {
            user_id: "bob".into(),
            reason: "cheating".into()
        }),
        "{told:?}"
    );
    // Bob cannot come back with the same token; the room no longer has him.
    assert_eq!(connect(&server, &bob_token).await.err(), Some(401));
    let room = server.room(&"r".into()).await.unwrap();
    assert_eq!(room.members.len(), 1);
    // Kicking him again: he is not in the room.
    assert_eq!(
        admin(&server, "POST", "/kick", Some(ADMIN), kick).await.0,
        404
    );
    // A bad body is refused.
    let (status, _) = admin(&server, "POST", "/kick", Some(ADMIN), "{}".to_owned()).await;
    assert_eq!(status, 400);
    // A token issued later (the game decided to let him back) is accepted.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a different `exp`, a different token
    assert!(connect(&server, &token("bob")).await.is_ok());
    server.shutdown().await.unwrap();
}

/// `/metrics` moves to the admin listener (behind the secret); `/healthz` is on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_the_admin_listener_only() {
    let server = start().await;
    let _alice = member(&server, &token("alice"), "a1").await;
    let (status, body) = admin(&server, "GET", "/metrics", Some(ADMIN), String::new()).await;
    assert_eq!(status, 200);
    assert!(body.lines().any(|l| l == "fast_rtc_members 1"), "{body}");
    assert_eq!(
        admin(&server, "GET", "/metrics", None, String::new())
            .await
            .0,
        401
    );
    let (status, body) = admin(&server, "GET", "/healthz", None, String::new()).await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let addr = server.local_addr();
    let signaling = tokio::task::spawn_blocking(move || {
        (
            http::get(addr, "/metrics", STEP).0,
            http::get(addr, "/healthz", STEP).0,
        )
    })
    .await
    .unwrap();
    assert_eq!(signaling, (404, 200));
    server.shutdown().await.unwrap();
}
