//! The network around `join`: the namespace it re-runs itself in, the proxy that delays the
//! joiner's signaling link, and the loopback round trip of the floor.

use crate::util::median;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NETNS_ENV: &str = "FAST_RTC_BENCH_IN_NETNS";
const NETNS_ADDR: &str = "10.203.0.1/24";

/// The namespace's own address (on `veth0`).
pub fn netns_ip() -> std::net::IpAddr {
    std::net::IpAddr::from([10, 203, 0, 1])
}

/// Whether this process runs inside the benchmark's namespace (the re-run, or its children).
pub fn in_netns() -> bool {
    std::env::var_os(NETNS_ENV).is_some()
}

/// Creates the namespace, re-runs this command line in it, deletes it and exits with the
/// re-run's status.
pub fn rerun_in_netns() -> ! {
    let ns = format!("fastrtc-bench-{}", std::process::id());
    let ip = |a: &[&str]| {
        Command::new("ip")
            .args(a)
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        ip(&["netns", "add", &ns]),
        "`ip netns add` failed: the join benchmark needs root and iproute2 (or pass --no-netns)"
    );
    let setup = [
        vec!["-n", &ns, "link", "set", "lo", "up"],
        vec![
            "-n", &ns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
        ],
        vec!["-n", &ns, "addr", "add", NETNS_ADDR, "dev", "veth0"],
        vec!["-n", &ns, "link", "set", "veth1", "up"],
        vec!["-n", &ns, "link", "set", "veth0", "up"],
        vec!["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "veth0"],
    ];
    for a in &setup {
        if !ip(a) {
            ip(&["netns", "del", &ns]);
            panic!("`ip {}` failed", a.join(" "));
        }
    }
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(NETNS_ENV, "1")
        .status();
    ip(&["netns", "del", &ns]);
    let status = status.unwrap();
    std::process::exit(status.code().unwrap_or(1));
}

/// A TCP proxy to `upstream` that holds every byte for `delay` in each direction.
pub async fn delay_proxy(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            let Ok(up) = tokio::net::TcpStream::connect(upstream).await else {
                continue;
            };
            let _ = down.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            tokio::spawn(pump(dr, uw, delay));
            tokio::spawn(pump(ur, dw, delay));
        }
    });
    addr
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let writer = tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            // async-io's timers fire on time; tokio's round up to the next millisecond.
            async_io::Timer::at(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let at = Instant::now() + delay;
                if tx.send((at, buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Median UDP round trip on 127.0.0.1 (the peer-to-peer part of the floor).
pub async fn loopback_rtt() -> Duration {
    let a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let echo = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = b.recv_from(&mut buf).await {
            if buf[..n] == *b"stop" || b.send_to(&buf[..n], from).await.is_err() {
                break;
            }
        }
    });
    let mut samples = Vec::new();
    let mut buf = [0u8; 64];
    for _ in 0..500 {
        let t = Instant::now();
        a.send_to(b"ping", ba).await.unwrap();
        a.recv_from(&mut buf).await.unwrap();
        samples.push(t.elapsed().as_secs_f64());
    }
    a.send_to(b"stop", ba).await.unwrap();
    let _ = echo.await;
    let _ = aa;
    Duration::from_secs_f64(median(samples))
}
