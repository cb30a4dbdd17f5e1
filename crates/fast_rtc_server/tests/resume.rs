//! Resuming a session over the wire (`fast_rtc_server::hub#resuming-a-session`): real WebSocket
//! clients against a real server on a random loopback port. A socket the server loses (no
//! pong) holds its member, and a new socket with the resume token takes its place; a socket
//! still open is closed by the resume; a socket that ends leaves at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests read the clock for tokens and deadlines

mod http;
mod running;

use running::token_for;

use fast_rtc_protocol::{ClientMsg, ResumeToken, ServerMsg, decode_server, encode};
use fast_rtc_server::{ServerConfig, ServerHandle};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const STEP: Duration = Duration::from_secs(10);

async fn start(ping_interval: Duration) -> ServerHandle {
    running::start(ServerConfig {
        ping_interval,
        ..ServerConfig::default()
    })
    .await
}

async fn connect(server: &ServerHandle, sub: &str) -> Ws {
    let token = token_for(sub, "r");
    let url = format!("{}?token={token}", server.ws_url());
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn send(ws: &mut Ws, msg: &ClientMsg) {
    ws.send(Message::text(encode(msg))).await.unwrap();
}

async fn init(ws: &mut Ws, resume: Option<ResumeToken>) {
    let init = ClientMsg::Init {
        user_id: None,
        room_id: "r".into(),
        resume,
    };
    send(ws, &init).await;
}

/// The next frame within `wait` (`None`: none came).
async fn next(ws: &mut Ws, wait: Duration) -> Option<ServerMsg> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(decode_server(t.as_str()).unwrap()),
            Ok(Message::Close(c)) => panic!("closed: {c:?}"),
            Ok(_) => continue,
            Err(e) => panic!("{e}"),
        }
    }
}

async fn recv(ws: &mut Ws) -> ServerMsg {
    next(ws, Duration::from_secs(10)).await.expect("no frame")
}

/// Alice (resumable) parks `a1`, Bob joins and takes it. Returns both and Alice's token.
async fn linked(server: &ServerHandle) -> (Ws, Ws, ResumeToken) {
    let mut alice = connect(server, "alice").await;
    init(&mut alice, Some(ResumeToken::request())).await;
    let ServerMsg::Joined {
        resume_token: Some(token),
        resumed: false,
        ..
    } = recv(&mut alice).await
    else {
        panic!("no resumeToken");
    };
    send(
        &mut alice,
        &ClientMsg::Offer {
            id: "a1".into(),
            sdp: "sdp".into(),
        },
    )
    .await;
    let mut bob = connect(server, "bob").await;
    init(&mut bob, None).await;
    assert!(matches!(
        recv(&mut bob).await,
        ServerMsg::Joined {
            resume_token: None,
            ..
        }
    ));
    assert!(matches!(recv(&mut bob).await, ServerMsg::Accept { .. }));
    assert!(matches!(
        recv(&mut alice).await,
        ServerMsg::OfferAccepted { .. }
    ));
    assert!(matches!(recv(&mut alice).await, ServerMsg::OfferRequest));
    (alice, bob, token)
}

fn candidate() -> ClientMsg {
    ClientMsg::Candidate {
        id: "a1".into(),
        candidate: None,
    }
}

#[tokio::test]
async fn a_lost_socket_holds_its_member_and_a_new_one_resumes_it() {
    let server = start(Duration::from_millis(200)).await;
    let (alice, mut bob, token) = linked(&server).await;
    // Alice's socket stops answering pings (nothing reads it): the server loses it after two
    // intervals. Bob hears nothing of it; what he sends Alice is kept.
    // (Bob reads meanwhile, which answers the pings.)
    assert_eq!(next(&mut bob, Duration::from_millis(900)).await, None);
    let room = server.room(&"r".into()).await.unwrap();
    assert!(room.members[0].held, "{room:?}");
    send(&mut bob, &candidate()).await;
    assert_eq!(next(&mut bob, Duration::from_millis(300)).await, None);

    let mut alice2 = connect(&server, "alice").await;
    init(&mut alice2, Some(token.clone())).await;
    let ServerMsg::Joined {
        resume_token: Some(fresh),
        resumed: true,
        ..
    } = recv(&mut alice2).await
    else {
        panic!("not resumed");
    };
    assert!(!fresh.matches(&token));
    assert!(
        matches!(recv(&mut alice2).await, ServerMsg::Candidate { .. }),
        "the kept frame"
    );
    send(&mut bob, &candidate()).await;
    assert!(
        matches!(recv(&mut alice2).await, ServerMsg::Candidate { .. }),
        "relayed as before"
    );
    assert_eq!(next(&mut bob, Duration::from_millis(300)).await, None);
    assert!(!server.room(&"r".into()).await.unwrap().members[0].held);
    let addr = server.local_addr();
    let (_, body) = tokio::task::spawn_blocking(move || http::get(addr, "/metrics", STEP))
        .await
        .unwrap();
    for line in ["fast_rtc_held_total 1", "fast_rtc_resumed_total 1"] {
        assert!(body.lines().any(|l| l == line), "no {line:?} in\n{body}");
    }
    drop(alice);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_resume_closes_the_old_socket_and_an_ended_socket_leaves_at_once() {
    let server = start(Duration::from_secs(15)).await;
    let (mut alice, mut bob, token) = linked(&server).await;
    let mut alice2 = connect(&server, "alice").await;
    init(&mut alice2, Some(token)).await;
    assert!(matches!(
        recv(&mut alice2).await,
        ServerMsg::Joined { resumed: true, .. }
    ));
    // The old socket is closed, code 1000 `resumed`, without `duplicate_identity`.
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), alice.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(Message::Text(t))) => panic!("unexpected {t}"),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    let frame = closed.expect("a close frame");
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (1000, "resumed")
    );
    assert_eq!(next(&mut bob, Duration::from_millis(300)).await, None);

    // A socket that ends (a close, as a killed client's kernel ends it) leaves at once.
    alice2.close(None).await.unwrap();
    assert!(matches!(recv(&mut bob).await, ServerMsg::LeaveSwarm { .. }));
    server.shutdown().await.unwrap();
}
