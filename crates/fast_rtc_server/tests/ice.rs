//! The ICE servers a real server hands out over a real WebSocket, its STUN server over real
//! UDP on 127.0.0.1, and the binary's ICE flags.
//!
//! - `joined` carries the server's own STUN server (named after the host the client used),
//!   the `--stun` URLs and a TURN entry whose username is `<expiry>:<sub>` and whose
//!   credential is coturn's HMAC of it; then fresh credentials arrive in `iceServers` frames
//!   at half the lifetime; without ICE configuration `joined` has no `iceServers` key at all.
//! - a Binding request to the STUN port gets the client's own address back; garbage gets
//!   nothing and changes nothing; a source past its burst is not answered (and it shows in
//!   `/metrics`).
//! - the binary serves the flags (`--stun-listen`, `--stun`, `--turn`, `--turn-secret-file`,
//!   `--turn-ttl`), and never prints or logs the TURN secret or a credential.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests read the clock for tokens and deadlines

use fast_rtc_protocol::{ClientMsg, IceServer, ServerMsg, decode_server, encode};
use fast_rtc_server::ice::{turn_credential, turn_username};
use fast_rtc_server::{
    IceConfig, JwtAuthenticator, Secret, Server, ServerConfig, ServerHandle, StunListen,
    TokenIssuer, TurnConfig, TurnSecret,
};
use fast_rtc_testkit::server_bin::{self, ServerProcess};
use futures_util::{SinkExt, StreamExt};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
const TURN_SECRET: &str = "turn-static-auth-secret-for-tests";
const TURN_URL: &str = "turn:127.0.0.1:3478?transport=udp";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn token(sub: &str) -> String {
    TokenIssuer::new(&Secret::new(SECRET).unwrap())
        .issue(sub, "*", Duration::from_secs(600), SystemTime::now())
        .unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn start(ice: IceConfig) -> ServerHandle {
    let config = ServerConfig {
        ice,
        ..ServerConfig::default()
    };
    Server::new(config, JwtAuthenticator::new(&Secret::new(SECRET).unwrap()))
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn full_ice(ttl: Duration) -> IceConfig {
    IceConfig {
        stun: vec!["stun:stun.example.test:3478".into()],
        turn: Some(TurnConfig {
            urls: vec![TURN_URL.into()],
            secret: TurnSecret::new(TURN_SECRET).unwrap(),
            ttl,
        }),
        stun_listen: Some(StunListen::new("127.0.0.1:0".parse().unwrap())),
    }
}

async fn join(url: &str, sub: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?token={}", token(sub)))
        .await
        .unwrap();
    ws.send(Message::text(encode(&ClientMsg::Init {
        user_id: None,
        room_id: "r".into(),
        resume: None,
    })))
    .await
    .unwrap();
    ws
}

/// The next protocol frame within `wait`.
async fn next(ws: &mut Ws, wait: Duration) -> Option<ServerMsg> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(decode_server(t.as_str()).unwrap()),
            Ok(_) => continue,
            Err(e) => panic!("socket error: {e}"),
        }
    }
}

/// The TURN entry of `servers`, checked: `<expiry>:<sub>` with the expiry about `ttl` from
/// now, and the credential coturn computes for it. Returns the expiry.
fn check_turn(servers: &[IceServer], sub: &str, ttl: Duration) -> u64 {
    let turn = servers
        .iter()
        .find(|s| s.urls == [TURN_URL])
        .unwrap_or_else(|| panic!("no TURN entry in {servers:?}"));
    let (expiry, subject) = turn.username.split_once(':').unwrap();
    assert_eq!(subject, sub);
    let expiry: u64 = expiry.parse().unwrap();
    let want = unix_now() + ttl.as_secs();
    assert!(
        expiry.abs_diff(want) <= 2,
        "expiry {expiry}, expected about {want}"
    );
    assert_eq!(
        turn.username,
        turn_username(expiry, &sub.into()),
        "the username is built as coturn reads it"
    );
    assert_eq!(
        turn.credential,
        turn_credential(&TurnSecret::new(TURN_SECRET).unwrap(), &turn.username)
    );
    expiry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_carries_the_servers_and_fresh_credentials_follow() {
    let ttl = Duration::from_secs(2);
    let server = start(full_ice(ttl)).await;
    let stun = server.stun_addr().unwrap();
    let mut alice = join(&server.ws_url(), "alice").await;
    let Some(ServerMsg::Joined {
        user_id,
        ice_servers: Some(servers),
        ..
    }) = next(&mut alice, Duration::from_secs(10)).await
    else {
        panic!("no joined with iceServers");
    };
    assert_eq!(user_id.as_str(), "alice");
    // Its own STUN server, named after the host the client used (127.0.0.1), then --stun.
    assert_eq!(
        servers[..2],
        [
            IceServer::stun(format!("stun:127.0.0.1:{}", stun.port())),
            IceServer::stun("stun:stun.example.test:3478"),
        ]
    );
    let first = check_turn(&servers, "alice", ttl);
    // Another member gets credentials of its own.
    let mut bob = join(&server.ws_url(), "bob").await;
    let Some(ServerMsg::Joined {
        ice_servers: Some(bob_servers),
        ..
    }) = next(&mut bob, Duration::from_secs(10)).await
    else {
        panic!("no joined with iceServers for bob");
    };
    check_turn(&bob_servers, "bob", ttl);
    // Fresh credentials every half lifetime (1 s here), each later than the one before.
    let mut expiries = vec![first];
    let started = std::time::Instant::now();
    while expiries.len() < 4 {
        match next(&mut alice, Duration::from_secs(3)).await {
            Some(ServerMsg::IceServers { ice_servers }) => {
                expiries.push(check_turn(&ice_servers, "alice", ttl));
            }
            Some(_) => continue, // bob's arrival (offerRequest)
            None => panic!("no fresh iceServers within 3 s; got {expiries:?}"),
        }
    }
    let took = started.elapsed();
    println!("3 refreshes in {took:?}, expiries {expiries:?}");
    assert!(
        took >= Duration::from_millis(2500) && took <= Duration::from_secs(6),
        "{took:?}"
    );
    assert!(expiries.windows(2).all(|w| w[0] <= w[1]), "{expiries:?}");
    assert!(expiries[3] > expiries[0], "{expiries:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ice_configuration_joined_is_unchanged() {
    let server = start(IceConfig::default()).await;
    assert_eq!(server.stun_addr(), None);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{}?token={}", server.ws_url(), token("alice")))
            .await
            .unwrap();
    ws.send(Message::text(r#"{"type":"init","roomId":"r"}"#))
        .await
        .unwrap();
    let text = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => break t.to_string(),
            _ => continue,
        }
    };
    assert_eq!(text, r#"{"type":"joined","userId":"alice"}"#);
    server.shutdown().await.unwrap();
}

/// A Binding request (RFC 8489: type 0x0001, magic cookie, `id`), with no attributes.
fn binding_request(id: &[u8; 12]) -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(id);
    m
}

/// The XOR-MAPPED-ADDRESS (IPv4) of a Binding success response to `id`, read by hand (RFC
/// 8489 §14.2), and whether it ends with a FINGERPRINT.
fn mapped_address(response: &[u8], id: &[u8; 12]) -> (SocketAddr, bool) {
    assert_eq!(response[..2], [0x01, 0x01], "a Binding success response");
    assert_eq!(response[4..8], [0x21, 0x12, 0xa4, 0x42]);
    assert_eq!(&response[8..20], id, "the same transaction");
    let mut at = 20;
    let mut mapped = None;
    let mut last = 0u16;
    while at + 4 <= response.len() {
        let kind = u16::from_be_bytes([response[at], response[at + 1]]);
        let len = usize::from(u16::from_be_bytes([response[at + 2], response[at + 3]]));
        let value = &response[at + 4..at + 4 + len];
        if kind == 0x0020 {
            assert_eq!(value[1], 0x01, "IPv4");
            let port = u16::from_be_bytes([value[2], value[3]]) ^ 0x2112;
            let ip: [u8; 4] = std::array::from_fn(|i| value[4 + i] ^ [0x21, 0x12, 0xa4, 0x42][i]);
            mapped = Some(SocketAddr::from((ip, port)));
        }
        last = kind;
        at += 4 + len.div_ceil(4) * 4;
    }
    (mapped.expect("no XOR-MAPPED-ADDRESS"), last == 0x8028)
}

fn ask(socket: &UdpSocket, to: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    socket.send_to(packet, to).unwrap();
    let mut buf = [0u8; 1500];
    match socket.recv_from(&mut buf) {
        Ok((n, from)) => {
            assert_eq!(from, to);
            Some(buf[..n].to_vec())
        }
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stun_server_answers_with_the_clients_address_and_bounds_each_source() {
    let ice = IceConfig {
        stun_listen: Some(StunListen {
            rate_per_second: 1,
            burst: 5,
            ..StunListen::new("127.0.0.1:0".parse().unwrap())
        }),
        ..IceConfig::default()
    };
    let server = start(ice).await;
    let stun = server.stun_addr().unwrap();
    let url = server.ws_url();
    tokio::task::spawn_blocking(move || {
        // From 127.0.0.2: the answers, and garbage (4 requests, within the burst of 5).
        let client = UdpSocket::bind("127.0.0.2:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let id = *b"fast-rtc-t01";
        let response = ask(&client, stun, &binding_request(&id)).expect("no answer");
        let (mapped, fingerprint) = mapped_address(&response, &id);
        assert_eq!(
            mapped,
            client.local_addr().unwrap(),
            "the client's own address"
        );
        assert!(fingerprint, "FINGERPRINT last");
        // Garbage: no answer, and the server goes on answering.
        assert_eq!(ask(&client, stun, b"\x00\x01garbage, not stun"), None);
        let mut truncated = binding_request(&id);
        truncated[3] = 40; // claims 40 bytes of attributes it does not have
        assert_eq!(ask(&client, stun, &truncated), None);
        let response = ask(&client, stun, &binding_request(b"fast-rtc-t02")).expect("no answer");
        assert_eq!(mapped_address(&response, b"fast-rtc-t02").0, mapped);
        // From 127.0.0.1 (a budget of its own, unless the two addresses share one of the 4096
        // slots: a 1 in 4096 chance): 20 requests at once, 5 answered (the burst;
        // a 6th if a token refilled meanwhile), the rest refused.
        let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..20u8 {
            let id: [u8; 12] = std::array::from_fn(|k| if k == 0 { i } else { 9 });
            flood.send_to(&binding_request(&id), stun).unwrap();
        }
        flood
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 1500];
        let mut answered = 0;
        while flood.recv_from(&mut buf).is_ok() {
            answered += 1;
        }
        println!("{answered} of 20 requests sent at once answered (burst 5, 1/s)");
        assert!(
            (5..=6).contains(&answered),
            "{answered} of 20 answered at once with a burst of 5"
        );
    })
    .await
    .unwrap();
    let body = reqwest_metrics(&url).await;
    for line in [
        "fast_rtc_stun_packets_total{reason=\"malformed\"} 2",
        "fast_rtc_stun_packets_total{reason=\"rate_limited\"}",
    ] {
        assert!(body.contains(line), "missing {line:?} in\n{body}");
    }
    server.shutdown().await.unwrap();
}

/// `GET /metrics` over a plain TCP socket.
async fn reqwest_metrics(ws_url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_the_ice_flags_and_never_prints_a_secret() {
    let dir = std::env::temp_dir().join(format!("fast-rtc-ice-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("turn-secret");
    std::fs::write(&secret_file, format!("{TURN_SECRET}\n")).unwrap();
    let stun_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.join("stderr.log");
    let mut cmd = server_bin::command().unwrap();
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--stun-listen", &format!("127.0.0.1:{stun_port}")])
        .args(["--stun", "stun:stun.example.test:3478"])
        .args([
            "--turn",
            TURN_URL,
            "--turn-ttl",
            "10m",
            "--turn-secret-file",
        ])
        .arg(&secret_file)
        .env("FAST_RTC_SECRET", SECRET)
        .env("RUST_LOG", "trace")
        .stderr(std::fs::File::create(&log).unwrap());
    let mut server = ServerProcess::spawn(&mut cmd).unwrap();
    let mut alice = join(server.url(), "alice").await;
    let Some(ServerMsg::Joined {
        ice_servers: Some(servers),
        ..
    }) = next(&mut alice, Duration::from_secs(10)).await
    else {
        panic!("no joined with iceServers from the binary");
    };
    assert_eq!(
        servers[0],
        IceServer::stun(format!("stun:127.0.0.1:{stun_port}"))
    );
    check_turn(&servers, "alice", Duration::from_secs(600));
    let credential = servers[2].credential.clone();
    // Its STUN server answers.
    tokio::task::spawn_blocking(move || {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let to = SocketAddr::from(([127, 0, 0, 1], stun_port));
        let mut answer = None;
        for _ in 0..20 {
            answer = ask(&client, to, &binding_request(b"fast-rtc-bin")).or(answer);
            if answer.is_some() {
                break;
            }
        }
        let answer = answer.expect("the binary's STUN server did not answer");
        assert_eq!(
            mapped_address(&answer, b"fast-rtc-bin").0,
            client.local_addr().unwrap()
        );
    })
    .await
    .unwrap();
    drop(alice);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.is_empty(), "RUST_LOG=trace logged nothing");
    assert!(!logged.contains(TURN_SECRET), "the secret was logged");
    assert!(!logged.contains(&credential), "a credential was logged");
    // A bad flag is refused at start.
    let out = server_bin::command()
        .unwrap()
        .args(["serve", "--listen", "127.0.0.1:0", "--stun", "turn:x"])
        .env("FAST_RTC_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a stun: URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
