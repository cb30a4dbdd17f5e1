//! Native members as separate processes: `examples/echo_peer.rs` with `--json --hello-binary
//! --stdin` (and `--fast-only` unless asked for its `state` game channel), its events read from
//! stdout into the log; `--tone HZ` for voice (an `echo_peer` built with feature `voice`).

use super::events::{Event, Report, Reporter};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A running `echo_peer`: it echoes everything with an `echo:` prefix and greets every peer on
/// open with `hello from native`, as text and as binary.
pub struct NativeMember {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its stderr (webrtc-rs's warnings), printed if the test fails.
    stderr: Arc<Mutex<Vec<String>>>,
}

/// `echo_peer`: `FAST_RTC_ECHO_PEER` (`scripts/browser-test.sh` sets it to its own copy: the
/// target directory may be shared with other checkouts, whose builds overwrite
/// `examples/echo_peer`), else the one beside this test's binary.
fn echo_peer() -> PathBuf {
    let path = std::env::var_os("FAST_RTC_ECHO_PEER").map_or_else(
        || {
            let exe = std::env::current_exe().unwrap();
            let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
            dir.join("examples/echo_peer")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "{path:?} is missing: build it with `cargo build -p fast_rtc_swarm --example echo_peer`"
    );
    path
}

impl NativeMember {
    pub fn spawn(
        name: &str,
        url: &str,
        token: &str,
        room: &str,
        game_channel: bool,
        tone: Option<f32>,
        log: Reporter,
    ) -> NativeMember {
        let mut args: Vec<String> = Vec::new();
        args.extend((!game_channel).then(|| "--fast-only".to_owned()));
        args.extend(tone.map(|hz| format!("--tone={hz}")));
        NativeMember::spawn_with(
            Command::new(echo_peer()),
            name,
            [url, token, room],
            &args,
            log,
        )
    }

    /// A native member on a site of the network lab: `echo_peer` (with its `state` game
    /// channel) in the network namespace `netns`, its peer connections bound to `bind`.
    pub fn spawn_in(
        netns: &str,
        bind: std::net::Ipv4Addr,
        name: &str,
        [url, token, room]: [&str; 3],
        log: Reporter,
    ) -> NativeMember {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", netns]).arg(echo_peer());
        let args = ["--bind".to_owned(), format!("{bind}:0")];
        NativeMember::spawn_with(command, name, [url, token, room], &args, log)
    }

    /// `command` (which starts `echo_peer`) with the arguments every member has, then `args`.
    fn spawn_with(
        mut command: Command,
        name: &str,
        [url, token, room]: [&str; 3],
        args: &[String],
        log: Reporter,
    ) -> NativeMember {
        let mut child = command
            .args(["--url", url, "--token", token, "--room", room])
            .args(["--json", "--hello-binary", "--stdin"])
            .args(args)
            // The swarm's own debug lines, printed if the test fails (the handshake's and the
            // tracks' steps); RUST_LOG overrides.
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| {
                    "warn,fast_rtc_swarm=debug,fast_rtc_swarm_core=debug".into()
                }),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let keep = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
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
                let report = Report {
                    member: member.clone(),
                    at,
                    event,
                };
                if log.send(report).is_err() {
                    break;
                }
            }
        });
        NativeMember {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            stderr,
        }
    }

    /// Leaves the room (`close` on stdin: `SwarmHandle::close`).
    pub fn close(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            stdin.write_all(b"close\n").unwrap();
        }
    }

    /// Mutes or unmutes its track `voice` (`mute`/`unmute` on stdin).
    pub fn mute(&mut self, muted: bool) {
        if let Some(stdin) = &mut self.stdin {
            stdin
                .write_all(if muted { b"mute\n" } else { b"unmute\n" })
                .unwrap();
        }
    }
}

impl Drop for NativeMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // Without webrtc-rs's DTLS warnings about extensions it does not know (a dozen
            // per handshake with a browser), which would crowd out the swarm's own lines.
            let stderr = self
                .stderr
                .lock()
                .map(|l| {
                    l.iter()
                        .filter(|line| !line.contains("Unsupported Extension Type"))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            eprintln!("== {} stderr\n{stderr}", self.name);
        }
    }
}
