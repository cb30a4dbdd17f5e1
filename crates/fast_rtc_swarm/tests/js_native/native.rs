//! Native members as separate processes: `examples/echo_peer.rs` with `--json --hello-binary
//! --stdin`, its events read from stdout into the log.

use super::events::{Event, Report, Reporter};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Instant;

/// A running `echo_peer`: it echoes everything with an `echo:` prefix and greets every peer on
/// open with `hello from native`, as text and as binary.
pub struct NativeMember {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// `echo_peer` beside this test's binary (`target/<profile>/examples/`); the script builds it.
fn echo_peer() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("examples/echo_peer");
    assert!(
        path.exists(),
        "{path:?} is missing: build it with `cargo build -p fast_rtc_swarm --example echo_peer`"
    );
    path
}

impl NativeMember {
    pub fn spawn(name: &str, url: &str, token: &str, room: &str, log: Reporter) -> NativeMember {
        let mut child = Command::new(echo_peer())
            .args(["--url", url, "--token", token, "--room", room])
            .args(["--json", "--hello-binary", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let member = name.to_owned();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                let event: Event = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{member}: {e} in {line:?}"));
                if event.kind == "started" {
                    continue;
                }
                let at = Instant::now();
                let report = Report { member: member.clone(), at, event };
                if log.send(report).is_err() {
                    break;
                }
            }
        });
        NativeMember {
            stdin: child.stdin.take(),
            child,
        }
    }

    /// Leaves the room (`close` on stdin: `SwarmHandle::close`).
    pub fn close(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            stdin.write_all(b"close\n").unwrap();
        }
    }
}

impl Drop for NativeMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
