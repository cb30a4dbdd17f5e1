//! A Redis server of the test's own (Valkey where it is installed, else Debian's
//! `redis-server`) on a loopback port, without persistence; killed on drop.
//!
//! Used by the server's cluster tests, `tests/cluster_webrtc.rs` and the bench's cluster rows.
//! `scripts/redis-test.sh` installs it.

use std::io;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Why [`Redis::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Neither `valkey-server` nor `redis-server` runs.
    #[error(
        "neither valkey-server nor redis-server is installed: run scripts/redis-test.sh (it installs one)"
    )]
    NotInstalled,
    /// No free loopback port could be picked.
    #[error("no free loopback port: {0}")]
    Port(io::Error),
    /// The server could not be run.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// `valkey-server` or `redis-server`.
        binary: &'static str,
        /// The spawn error.
        source: io::Error,
    },
    /// The server did not accept connections within 5 s.
    #[error("{binary} did not listen on port {port}")]
    NotListening {
        /// `valkey-server` or `redis-server`.
        binary: &'static str,
        /// The port it was started on.
        port: u16,
    },
}

/// A running Redis (or Valkey) on `127.0.0.1`; killed on drop.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// The installed server binary: `valkey-server` if it runs, else `redis-server`.
    fn binary() -> Result<&'static str, RedisError> {
        ["valkey-server", "redis-server"]
            .into_iter()
            .find(|name| {
                Command::new(name)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                    .is_ok()
            })
            .ok_or(RedisError::NotInstalled)
    }

    /// Starts one on a free loopback port and waits until it accepts connections.
    pub fn start() -> Result<Redis, RedisError> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(RedisError::Port)?
            .port();
        Self::start_on(port)
    }

    /// Starts one on `port` of `127.0.0.1` (a restart where an earlier one was) and waits until
    /// it accepts connections.
    pub fn start_on(port: u16) -> Result<Redis, RedisError> {
        let binary = Self::binary()?;
        let child = Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|source| RedisError::Spawn { binary, source })?;
        // Killed on drop, also when it does not come up.
        let redis = Redis { child, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(redis);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(RedisError::NotListening { binary, port })
    }

    /// Its URL: `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (SIGKILL) and reaps it; [`Redis::start_on`] its port starts it again.
    pub fn kill(&mut self) {
        crate::stop(&mut self.child);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
