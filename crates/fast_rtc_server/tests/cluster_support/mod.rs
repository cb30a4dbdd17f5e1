//! What the cluster tests share: the secret, the lease, a Redis of the test's own, in-process
//! instances in cluster mode, the binary in cluster mode, and which instance holds a room.
//!
//! Used by this crate's `tests/cluster.rs` and by `fast_rtc_swarm`'s `tests/cluster_webrtc.rs`
//! (through `#[path]`: those tests need the swarm too, and the server has no dev-dependency on
//! the swarm; the testkit's library cannot hold this, it may not depend on the server).
#![allow(dead_code)] // each including test uses a part

use fast_rtc_protocol::RoomId;
use fast_rtc_server::{
    ClusterConfig, JwtAuthenticator, RoomSnapshot, Secret, Server, ServerConfig, ServerHandle,
    TokenIssuer,
};
use fast_rtc_testkit::redis::Redis;
use fast_rtc_testkit::server_bin::{self, ServerProcess};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
pub const STEP: Duration = Duration::from_secs(15);
pub const LEASE: Duration = Duration::from_millis(1500);

/// A Redis server of the test's own on a free loopback port (a missing one fails the test).
pub fn start_redis() -> Redis {
    Redis::start().unwrap_or_else(|e| panic!("{e}"))
}

pub fn token(sub: &str, room: &str) -> String {
    TokenIssuer::new(&Secret::new(SECRET).unwrap())
        .issue(sub, room, Duration::from_secs(600), SystemTime::now())
        .unwrap()
}

pub fn cluster_config(redis: &Redis) -> ServerConfig {
    ServerConfig {
        cluster: Some(ClusterConfig {
            lease: LEASE,
            ..ClusterConfig::new(redis.url())
        }),
        ..ServerConfig::default()
    }
}

/// An in-process instance in cluster mode on a random loopback port.
pub async fn instance(redis: &Redis) -> ServerHandle {
    instance_with(cluster_config(redis)).await
}

/// An in-process instance with `config` (made from [`cluster_config`]) on a random loopback
/// port.
pub async fn instance_with(config: ServerConfig) -> ServerHandle {
    let auth = JwtAuthenticator::new(&Secret::new(SECRET).unwrap());
    Server::new(config, auth)
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// The `fast-rtc-server` binary in cluster mode, as a child process (to be killed with SIGKILL).
pub fn start_binary(redis: &Redis) -> ServerProcess {
    let mut cmd = server_bin::command().unwrap_or_else(|e| panic!("{e}"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--redis", &redis.url()])
        .args(["--redis-lease-ms", &LEASE.as_millis().to_string()])
        .env("FAST_RTC_SECRET", SECRET)
        .stderr(Stdio::null());
    ServerProcess::spawn(&mut cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// Which instance's hub holds `room`, and its snapshot (polls: the last frames may be in flight).
pub async fn owner_snapshot(
    instances: &[&ServerHandle],
    room: &str,
    members: usize,
) -> (usize, RoomSnapshot) {
    let room = RoomId::from(room);
    for _ in 0..200 {
        let mut found = Vec::new();
        for (i, s) in instances.iter().enumerate() {
            if let Some(snap) = s.room(&room).await {
                found.push((i, snap));
            }
        }
        assert!(found.len() <= 1, "two instances hold the room: {found:?}");
        if let Some((i, snap)) = found.pop()
            && snap.members.len() == members
            && snap.members.iter().all(|m| m.links.len() == members - 1)
        {
            return (i, snap);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no instance holds room {room} with {members} fully linked members");
}
