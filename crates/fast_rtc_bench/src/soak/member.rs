//! One soak member: a child process running one swarm (webrtc-rs on 127.0.0.1), driven by the
//! parent over its stdin and stdout, one line per command and one JSON line per reply.
//!
//! Commands (each with a sequence number the reply repeats, so a late reply is never taken for
//! the answer to a later command):
//! - `status N`: the member's open peers, its RTCPeerConnections and its signaling state;
//! - `roundtrip N`: sends `soak-ping:N` on `fast` to every open peer and replies once each has
//!   answered `soak-pong:N` (members answer pings whenever they arrive), or after 5 s with the
//!   peers that did not;
//! - `close N` (or the end of stdin: the parent is gone): `SwarmHandle::close`, waits for the
//!   driver to finish telling the server, replies and exits.
//!
//! The other way to leave is the parent killing the process (SIGKILL): no `close` frame, no
//! `@fast/close`, sockets torn down by the kernel.

use crate::join::members::our_member_task;
use crate::util::runtime;
use fast_rtc_swarm::{ChannelId, NativeConfig, Payload, SwarmConfig, SwarmEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a member waits for every peer's pong.
const ROUNDTRIP_WAIT: Duration = Duration::from_secs(5);
/// How long a closing member waits for its driver to finish.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The hidden `soak-member` subcommand's arguments, as [`Member::spawn`] passes them.
#[derive(clap::Args, Clone, Debug)]
pub struct MemberArgs {
    /// The server's base URL (`ws://ADDR`).
    #[arg(long)]
    url: String,
    #[arg(long)]
    user: String,
    #[arg(long)]
    room: String,
}

/// A member's answer to one command.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Status {
        seq: u64,
        /// `SwarmHandle::connection_count`: RTCPeerConnections alive (open links, handshakes,
        /// parked offers).
        connections: usize,
        /// `SwarmHandle::peers`: peers with an open link.
        peers: BTreeSet<String>,
        signaling: bool,
    },
    Roundtrip {
        seq: u64,
        /// Peers whose pong came back.
        answered: BTreeSet<String>,
        /// Peers that were sent a ping and did not answer in time (or refused the send).
        missing: BTreeSet<String>,
    },
    Closed {
        seq: u64,
        /// Whether the driver finished within the wait.
        clean: bool,
    },
}

impl Reply {
    fn seq(&self) -> u64 {
        match self {
            Reply::Status { seq, .. }
            | Reply::Roundtrip { seq, .. }
            | Reply::Closed { seq, .. } => *seq,
        }
    }
}

fn say(reply: &Reply) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string(reply).unwrap());
    let _ = out.flush();
}

/// A round trip in progress.
struct Pending {
    seq: u64,
    waiting: BTreeSet<String>,
    answered: BTreeSet<String>,
    missing: BTreeSet<String>,
    deadline: tokio::time::Instant,
}

/// Child process: one member until `close`, the end of stdin, or SIGKILL.
pub fn main(args: MemberArgs) {
    // Commands arrive on a thread of their own: a blocking read of stdin.
    let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    runtime().block_on(async move {
        let (h, driver) = our_member_task(
            &args.url,
            &args.user,
            &args.room,
            SwarmConfig::new(args.room.as_str()),
            NativeConfig::loopback(),
        );
        let mut pending: Option<Pending> = None;
        let close_seq = loop {
            let deadline = pending.as_ref().map(|p| p.deadline);
            tokio::select! {
                ev = h.recv() => match ev {
                    None => break None,
                    Some(SwarmEvent::Data { from, channel: ChannelId::FAST, payload: Payload::Text(text), .. }) => {
                        if let Some(nonce) = text.strip_prefix("soak-ping:") {
                            // A refused pong shows up as a missing answer at the other end.
                            let _ = h.send(&from, ChannelId::FAST, format!("soak-pong:{nonce}"));
                        } else if let Some(nonce) = text.strip_prefix("soak-pong:")
                            && let Some(p) = pending.as_mut()
                            && nonce == p.seq.to_string()
                            && p.waiting.remove(from.as_str())
                        {
                            p.answered.insert(from.to_string());
                        }
                    }
                    Some(_) => {}
                },
                cmd = commands.recv() => {
                    let line = cmd.unwrap_or_default();
                    let (word, seq) = line.split_once(' ').unwrap_or((line.as_str(), "0"));
                    let seq: u64 = seq.trim().parse().unwrap_or(0);
                    match word {
                        "status" => say(&Reply::Status {
                            seq,
                            connections: h.connection_count(),
                            peers: h.peers().iter().map(|p| p.user_id.to_string()).collect(),
                            signaling: h.signaling_connected(),
                        }),
                        "roundtrip" => {
                            let mut p = Pending {
                                seq,
                                waiting: BTreeSet::new(),
                                answered: BTreeSet::new(),
                                missing: BTreeSet::new(),
                                deadline: tokio::time::Instant::now() + ROUNDTRIP_WAIT,
                            };
                            for peer in h.peers() {
                                let name = peer.user_id.to_string();
                                match h.send(&peer.user_id, ChannelId::FAST, format!("soak-ping:{seq}")) {
                                    Ok(()) => p.waiting.insert(name),
                                    Err(_) => p.missing.insert(name),
                                };
                            }
                            pending = Some(p);
                        }
                        // `close`, or stdin ended: the parent is gone.
                        _ => break Some(seq),
                    }
                }
                () = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(p) = pending.as_mut() {
                        p.missing.append(&mut p.waiting);
                    }
                }
            }
            if pending.as_ref().is_some_and(|p| p.waiting.is_empty())
                && let Some(p) = pending.take()
            {
                say(&Reply::Roundtrip {
                    seq: p.seq,
                    answered: p.answered,
                    missing: p.missing,
                });
            }
        };
        h.close();
        let clean = tokio::time::timeout(CLOSE_WAIT, driver).await.is_ok();
        say(&Reply::Closed {
            seq: close_seq.unwrap_or(0),
            clean,
        });
    });
    // Connection tasks may still be winding down; the member has left.
    std::process::exit(0);
}

/// The parent's side of one member process.
pub struct Member {
    pub name: String,
    child: Child,
    stdin: ChildStdin,
    replies: mpsc::Receiver<Reply>,
    seq: u64,
}

impl Member {
    /// Starts a member process that joins `room` on the server at `url` as `name`.
    pub fn spawn(url: &str, name: &str, room: &str) -> Member {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["soak-member", "--url", url, "--user", name, "--room", room])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(reply) = serde_json::from_str::<Reply>(&line)
                    && tx.send(reply).is_err()
                {
                    break;
                }
            }
        });
        Member {
            name: name.to_owned(),
            child,
            stdin,
            replies,
            seq: 0,
        }
    }

    /// The process id (for its resident memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `word` and waits up to `wait` for its reply; `None` if none came.
    fn ask(&mut self, word: &str, wait: Duration) -> Option<Reply> {
        self.seq += 1;
        let seq = self.seq;
        writeln!(self.stdin, "{word} {seq}").ok()?;
        self.stdin.flush().ok()?;
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self.replies.recv_timeout(left).ok()?;
            if reply.seq() == seq {
                return Some(reply);
            }
        }
    }

    /// Its status: (connection count, open peers, signaling up).
    pub fn status(&mut self) -> Option<(usize, BTreeSet<String>, bool)> {
        match self.ask("status", Duration::from_secs(5))? {
            Reply::Status {
                connections,
                peers,
                signaling,
                ..
            } => Some((connections, peers, signaling)),
            _ => None,
        }
    }

    /// Pings every open peer on `fast`: (peers that answered, peers that did not).
    pub fn roundtrip(&mut self) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
        match self.ask("roundtrip", ROUNDTRIP_WAIT + Duration::from_secs(2))? {
            Reply::Roundtrip {
                answered, missing, ..
            } => Some((answered, missing)),
            _ => None,
        }
    }

    /// Asks the member to leave with `SwarmHandle::close`; see [`Leaving::reap`].
    pub fn close(mut self) -> Leaving {
        self.seq += 1;
        let _ = writeln!(self.stdin, "close {}", self.seq);
        let _ = self.stdin.flush();
        Leaving {
            member: self,
            since: Instant::now(),
        }
    }

    /// Kills the process (SIGKILL): no goodbye to the server or the peers.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A member that was asked to close and has not exited yet.
pub struct Leaving {
    member: Member,
    since: Instant,
}

/// How a closing member ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// It closed, its driver finished, and it exited.
    Clean,
    /// It exited, but its driver had not finished within its wait.
    DriverStuck,
    /// It had not exited after `hung`; it was killed.
    Hung,
}

impl Leaving {
    /// The member's name.
    pub fn name(&self) -> &str {
        &self.member.name
    }

    /// `Some` once the process has exited (killing it if it is still there after `hung`).
    pub fn reap(&mut self, hung: Duration) -> Option<Left> {
        let exited = matches!(self.member.child.try_wait(), Ok(Some(_)));
        if !exited && self.since.elapsed() < hung {
            return None;
        }
        if !exited {
            let _ = self.member.child.kill();
            let _ = self.member.child.wait();
            return Some(Left::Hung);
        }
        // The reader thread may still hold the last line; it ends at the pipe's end.
        let mut clean = false;
        while let Ok(reply) = self.member.replies.recv_timeout(Duration::from_secs(1)) {
            clean |= matches!(reply, Reply::Closed { clean: true, .. });
        }
        Some(if clean {
            Left::Clean
        } else {
            Left::DriverStuck
        })
    }
}
