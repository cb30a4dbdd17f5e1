//! The server with TLS: a test CA and a server certificate for 127.0.0.1/localhost made with
//! rcgen, the real server (library and binary) on a random loopback port, real rustls clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests read the clock for tokens and deadlines

use fast_rtc_protocol::{ClientMsg, RoomId, encode};
use fast_rtc_server::{
    JwtAuthenticator, Secret, Server, ServerConfig, ServerHandle, TlsConfig, TlsError, TokenIssuer,
};
use fast_rtc_testkit::pki::{Pki, TEST_CA};
use fast_rtc_testkit::server_bin::{self, ServerProcess};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "tls-test-secret-0123456789abcdef0123456789abcdef";
const STEP: Duration = Duration::from_secs(10);

fn token(sub: &str) -> String {
    TokenIssuer::new(&Secret::new(SECRET).unwrap())
        .issue(sub, "*", Duration::from_secs(600), SystemTime::now())
        .unwrap()
}

async fn start(tls: TlsConfig) -> ServerHandle {
    let auth = JwtAuthenticator::new(&Secret::new(SECRET).unwrap());
    let config = ServerConfig {
        tls: Some(tls),
        ..ServerConfig::default()
    };
    Server::new(config, auth)
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn connector(ca_der: &[u8]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(ca_der.to_vec().into()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

type Wss = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// A WebSocket over TLS to `url` (`wss://127.0.0.1:PORT/ws`) as `sub`, trusting `ca_der` only.
async fn wss(url: &str, ca_der: &[u8], sub: &str) -> Result<Wss, String> {
    let addr = url
        .strip_prefix("wss://")
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector(ca_der)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (ws, _) = tokio_tungstenite::client_async(format!("{url}?token={}", token(sub)), tls)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn join(ws: &mut Wss, room: &str) {
    let init = ClientMsg::Init {
        user_id: None,
        room_id: room.into(),
        resume: None,
    };
    ws.send(Message::text(encode(&init))).await.unwrap();
}

/// Waits until `room` has exactly `n` members.
async fn wait_members(server: &ServerHandle, room: &str, n: usize) {
    let deadline = Instant::now() + STEP;
    loop {
        let members = server
            .room(&RoomId::from(room))
            .await
            .map_or(0, |r| r.members.len());
        if members == n {
            return;
        }
        assert!(Instant::now() < deadline, "{members} members, want {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A trusted client joins over wss; a client that does not trust the CA, one that sends
/// garbage and one that never finishes its handshake fail alone: the next trusted client still
/// joins, and the stalled one is dropped after the handshake timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_serves_trusted_clients_and_failed_handshakes_hurt_nobody_else() {
    let pki = Pki::new(TEST_CA).unwrap();
    let mut tls = TlsConfig::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
    tls.handshake_timeout = Duration::from_millis(500);
    let server = start(tls).await;
    let url = server.ws_url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");

    let mut alice = wss(&url, &pki.ca_der, "alice").await.unwrap();
    join(&mut alice, "tls").await;
    wait_members(&server, "tls", 1).await;

    // Stalled: connects, sends nothing.
    let mut stalled = TcpStream::connect(server.local_addr()).await.unwrap();
    // Garbage instead of a ClientHello.
    let mut garbage = TcpStream::connect(server.local_addr()).await.unwrap();
    garbage
        .write_all(b"GET /ws HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    // Another CA: the client rejects the server's certificate.
    let other = Pki::new("some other CA").unwrap();
    let refused = wss(&url, &other.ca_der, "mallory").await.unwrap_err();
    assert!(refused.contains("certificate"), "{refused}");
    // Plain ws:// against the TLS port fails too.
    let plain = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws?token={}",
        server.local_addr(),
        token("plain")
    ))
    .await;
    assert!(plain.is_err());

    let mut bob = wss(&url, &pki.ca_der, "bob").await.unwrap();
    join(&mut bob, "tls").await;
    wait_members(&server, "tls", 2).await;
    // Alice is still served: she hears about bob (an offer request or a relayed frame).
    let frame = tokio::time::timeout(STEP, alice.next()).await.unwrap();
    assert!(matches!(frame, Some(Ok(_))), "{frame:?}");

    // The stalled handshake is cut at its timeout (500 ms), not left open.
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(STEP, stalled.read(&mut buf))
        .await
        .expect("the stalled connection was never closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let read = tokio::time::timeout(STEP, garbage.read(&mut buf))
        .await
        .unwrap();
    // rustls answers garbage with an alert or closes; either way no HTTP response.
    if let Ok(n) = read {
        assert!(!buf[..n].starts_with(b"HTTP"), "{:?}", &buf[..n]);
    }

    server.shutdown().await.unwrap();
}

/// 1,000 clients that open TCP and never start their TLS handshake (more than the 256
/// handshakes the old listener ran at once before it stopped accepting) from other loopback
/// addresses: a trusted client still joins at once, and the server holds at most
/// `max_preauth` of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_never_block_accepting() {
    let pki = Pki::new(TEST_CA).unwrap();
    let tls = TlsConfig::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
    let auth = JwtAuthenticator::new(&Secret::new(SECRET).unwrap());
    let config = ServerConfig {
        tls: Some(tls),
        connections: fast_rtc_server::ConnectionLimits {
            max_preauth: 128,
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let server = Server::new(config, auth)
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = server.ws_url();
    let mut stalled = Vec::new();
    for i in 0..1000u32 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        let from = std::net::Ipv4Addr::new(127, 0, 1, 1 + (i % 20) as u8);
        socket.bind((from, 0).into()).unwrap();
        stalled.push(socket.connect(server.local_addr()).await.unwrap());
    }
    let started = Instant::now();
    let mut alice = wss(&url, &pki.ca_der, "alice").await.unwrap();
    join(&mut alice, "tls").await;
    wait_members(&server, "tls", 1).await;
    let took = started.elapsed();
    eprintln!(
        "wss join after 1,000 stalled handshakes: {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The first stalled connections were evicted at once (the handshake timeout is 10 s).
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(1), stalled[0].read(&mut buf))
        .await
        .expect("the oldest stalled connection is still open");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    server.shutdown().await.unwrap();
}

#[test]
fn bad_pem_is_a_clear_error() {
    let pki = Pki::new(TEST_CA).unwrap();
    let err = TlsConfig::from_pem(b"not a pem", pki.key_pem.as_bytes()).unwrap_err();
    assert!(matches!(err, TlsError::Certificate { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    let err = TlsConfig::from_pem(pki.cert_pem.as_bytes(), b"nope").unwrap_err();
    assert!(matches!(err, TlsError::Key { .. }), "{err}");
    // The key of another certificate.
    let other = Pki::new("other").unwrap();
    let err = TlsConfig::from_pem(pki.cert_pem.as_bytes(), other.key_pem.as_bytes()).unwrap_err();
    assert!(matches!(err, TlsError::Rejected(_)), "{err}");
    let missing = std::path::Path::new("/nonexistent/fast-rtc/cert.pem");
    let err = TlsConfig::from_pem_files(missing, missing).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/fast-rtc/cert.pem"),
        "{err}"
    );
    // The key never shows in Debug.
    let ok = TlsConfig::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
    assert!(!format!("{ok:?}").contains("PRIVATE"));
}

/// The real binary: `serve --tls-cert/--tls-key` prints a wss:// URL and serves it; a missing
/// or bad PEM file is a clear error and exit code 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_serves_tls_and_refuses_bad_pem() {
    let bin = server_bin::path().unwrap();
    let pki = Pki::new(TEST_CA).unwrap();
    let dir = std::env::temp_dir().join(format!("fast-rtc-tls-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, bad) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("bad.pem"),
    );
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    std::fs::write(&bad, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();

    let refuse = |cert: &std::path::Path, key: &std::path::Path, want: &str| {
        let out = std::process::Command::new(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .env("FAST_RTC_SECRET", SECRET)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "want {want:?} in: {err}");
    };
    refuse(&dir.join("missing.pem"), &key, "cannot read");
    refuse(&bad, &key, "bad certificate PEM");
    refuse(&cert, &bad, "bad private key PEM");
    // --tls-cert without --tls-key is a usage error (clap's exit code 2).
    let out = std::process::Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .env("FAST_RTC_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let mut server = ServerProcess::spawn(
        std::process::Command::new(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .env("FAST_RTC_SECRET", SECRET)
            .stderr(std::process::Stdio::null()),
    )
    .unwrap();
    let url = server.url().to_owned();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let mut ws = wss(&url, &pki.ca_der, "cli").await.unwrap();
    join(&mut ws, "cli-room").await;
    ws.send(Message::Ping(vec![1u8].into())).await.unwrap();
    let reply = tokio::time::timeout(STEP, ws.next()).await.unwrap();
    assert!(matches!(reply, Some(Ok(_))), "{reply:?}");
    server.kill();
    std::fs::remove_dir_all(&dir).unwrap();
}
