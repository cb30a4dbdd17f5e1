//! The `fast-rtc-server` binary as a child process: where it is, and spawning it and reading
//! the line it prints once it listens (`fast-rtc-server listening on ws://ADDR/ws`).
//!
//! The one way tests find the binary is [`path`]: `fast-rtc-server` next to the running test
//! executable's `deps/` folder, where cargo puts the binaries of the build (for example
//! `target/debug/fast-rtc-server` beside `target/debug/deps/cluster-HASH`). Cargo builds it
//! before the server's own integration tests; tests of other crates (`fast_rtc_swarm`'s
//! `tests/cluster_webrtc.rs`) need `cargo build -p fast_rtc_server` first, in the same profile
//! (`scripts/redis-test.sh` does).
//!
//! [`spawn_announced`] is the lower step: any child whose first line of output says where it
//! listens (the bench's server children print their address).

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

/// The binary's name.
pub const BINARY: &str = "fast-rtc-server";

/// What the binary prints first, before its URL, once it listens.
pub const LISTENING: &str = "fast-rtc-server listening on ";

/// Why the binary could not be found or started.
#[derive(Debug, thiserror::Error)]
pub enum ServerBinError {
    /// The running executable's path is unknown.
    #[error("cannot find the running test executable: {0}")]
    CurrentExe(io::Error),
    /// The binary is not where the build puts it.
    #[error(
        "no {BINARY} at {0}: build it first (`cargo build -p fast_rtc_server`, same profile as the test)"
    )]
    NotBuilt(PathBuf),
    /// The child could not be run.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The spawn error.
        source: io::Error,
    },
    /// The child's first line could not be read (it exited before printing one, for example).
    #[error("cannot read the first line of {program}: {source}")]
    Read {
        /// The program.
        program: String,
        /// The read error.
        source: io::Error,
    },
    /// The first line is not `fast-rtc-server listening on ws[s]://ADDR/ws`.
    #[error("unexpected first line of {BINARY}: {0:?}")]
    Unexpected(String),
}

/// The `fast-rtc-server` binary of this build: next to the running executable's `deps/`
/// folder. An error if it is not there (not built).
pub fn path() -> Result<PathBuf, ServerBinError> {
    let exe = std::env::current_exe().map_err(ServerBinError::CurrentExe)?;
    // target/<profile>/deps/<test> → target/<profile>/fast-rtc-server
    let dir = exe
        .parent()
        .filter(|d| d.file_name() == Some(OsStr::new("deps")))
        .and_then(|deps| deps.parent())
        .or_else(|| exe.parent())
        .map(|d| d.to_path_buf())
        .unwrap_or_default();
    let bin = dir.join(format!("{BINARY}{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(ServerBinError::NotBuilt(bin))
    }
}

/// A [`Command`] for the binary at [`path`].
pub fn command() -> Result<Command, ServerBinError> {
    Ok(Command::new(path()?))
}

/// Spawns `cmd` with its stdout piped and reads its first line (trimmed): the child and the
/// line. Its stderr is left as `cmd` says.
pub fn spawn_announced(cmd: &mut Command) -> Result<(Child, String), ServerBinError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| ServerBinError::Spawn {
            program: program.clone(),
            source,
        })?;
    let mut line = String::new();
    let read = match child.stdout.take() {
        Some(stdout) => BufReader::new(stdout).read_line(&mut line),
        None => Err(io::Error::other("stdout was not piped")),
    };
    if let Err(source) = read {
        crate::stop(&mut child);
        return Err(ServerBinError::Read { program, source });
    }
    Ok((child, line.trim().to_owned()))
}

/// A running `fast-rtc-server`; killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    url: String,
    addr: SocketAddr,
}

impl ServerProcess {
    /// Spawns `cmd` (made by [`command`], with its arguments and environment; its stderr as
    /// it says) and reads its listening line.
    pub fn spawn(cmd: &mut Command) -> Result<ServerProcess, ServerBinError> {
        let (mut child, line) = spawn_announced(cmd)?;
        let parsed = line.strip_prefix(LISTENING).and_then(|url| {
            let addr = url
                .strip_prefix("ws://")
                .or_else(|| url.strip_prefix("wss://"))?
                .strip_suffix("/ws")?
                .parse()
                .ok()?;
            Some((url.to_owned(), addr))
        });
        match parsed {
            Some((url, addr)) => Ok(ServerProcess { child, url, addr }),
            None => {
                crate::stop(&mut child);
                Err(ServerBinError::Unexpected(line))
            }
        }
    }

    /// Its WebSocket URL, as it printed it: `ws://ADDR/ws` (or `wss://`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id (to send it a signal).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits until it exits.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait()
    }

    /// Kills it with SIGKILL (no graceful shutdown) and reaps it.
    pub fn kill(&mut self) {
        crate::stop(&mut self.child);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shell child that prints `line`, then waits to be killed.
    fn announcing(line: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("echo '{line}'; exec sleep 30")]);
        cmd
    }

    #[test]
    fn the_listening_line_gives_the_url_and_the_address() {
        let server = ServerProcess::spawn(&mut announcing(
            "fast-rtc-server listening on ws://127.0.0.1:4321/ws",
        ))
        .unwrap();
        assert_eq!(server.url(), "ws://127.0.0.1:4321/ws");
        assert_eq!(server.addr(), "127.0.0.1:4321".parse().unwrap());
        let tls = ServerProcess::spawn(&mut announcing(
            "fast-rtc-server listening on wss://127.0.0.1:4322/ws",
        ))
        .unwrap();
        assert_eq!(tls.addr(), "127.0.0.1:4322".parse().unwrap());
    }

    #[test]
    fn another_first_line_is_an_error_that_shows_it() {
        let err = ServerProcess::spawn(&mut announcing("Address already in use")).unwrap_err();
        assert!(matches!(err, ServerBinError::Unexpected(ref l) if l == "Address already in use"));
        let (mut child, line) = spawn_announced(&mut announcing("127.0.0.1:9")).unwrap();
        assert_eq!(line, "127.0.0.1:9");
        crate::stop(&mut child);
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = spawn_announced(&mut Command::new("/nonexistent/fast-rtc-server")).unwrap_err();
        assert!(matches!(err, ServerBinError::Spawn { .. }), "{err}");
    }
}
