//! Real members across the lab: a signaling server (`fast-rtc-server`) and optionally coturn on
//! a public site, `echo_peer` members on their own sites (behind NATs or not), and what each
//! member's `--json` events say: when its link opened, whether its hello came back echoed, and
//! the link's selected candidate pair.
//!
//! The binaries are the build's own: `fast-rtc-server` beside the test executable's `deps/`
//! folder (the test kit's `server_bin`), `echo_peer` in its `examples/` folder.
//! `scripts/netlab-test.sh` builds both first.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use base64::Engine;
use fast_rtc_netlab::{Lab, LinkSpec, Nat, Site};
use fast_rtc_testkit::coturn::{Coturn, CoturnAuth, CoturnOptions};
use fast_rtc_testkit::server_bin::{self, ServerProcess};
use hmac::{Hmac, Mac};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The signaling server's port on the public site.
const SIGNALING_PORT: u16 = 8787;
/// coturn's port on the public site (STUN and TURN).
const TURN_PORT: u16 = 3478;
/// The longest a scenario waits for every member's link and echo.
const LINK_WITHIN: Duration = Duration::from_secs(30);
/// What echo_peer says on each open, and what comes back.
const ECHOED_HELLO: &str = "echo:hello from native";

/// The seed of the lab's loss draws: `FAST_RTC_NETLAB_SEED`, else 1 (to repeat a run, or try
/// others).
pub fn seed() -> u64 {
    std::env::var("FAST_RTC_NETLAB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Where the members' STUN server comes from in the cone-NAT test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StunSource {
    /// coturn on the public site, given to each member (`--ice-server stun:…`).
    Coturn,
    /// The signaling server's own STUN listener (`serve --stun-listen ADDR`), which it advertises
    /// in its `joined` frame: members get no ICE flag at all.
    Server,
}

/// The cone-NAT test's STUN source: the signaling server's own STUN listener, as a deployment
/// that follows the README runs it ([`StunSource::Coturn`] is kept to compare).
pub fn cone_stun_source() -> StunSource {
    StunSource::Server
}

/// Who mints the members' TURN credentials in the symmetric-NAT test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnSource {
    /// The test, for each member (TURN REST API, [`turn_rest_credential`]), given with
    /// `--ice-server turn:… --ice-username … --ice-credential …`.
    Test,
    /// The signaling server (`serve --turn URL --turn-secret-file PATH`), in its `joined`
    /// frame: members get no ICE flag at all.
    Server,
}

/// The symmetric-NAT test's TURN credentials: minted by the signaling server for each member
/// (no TURN password in any client; [`TurnSource::Test`] is kept to compare).
pub fn symmetric_turn_source() -> TurnSource {
    TurnSource::Server
}

/// What the members are given to get past NATs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ice {
    /// Nothing: host candidates only.
    None,
    /// A STUN server, from `source`.
    Stun(StunSource),
    /// coturn as a TURN server with REST API credentials (`use-auth-secret`; no static password
    /// anywhere), minted by `source`.
    Turn(TurnSource),
}

/// One test: the members' NAT, every link's spec, what ICE servers they get.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// How it is printed.
    pub name: &'static str,
    /// Every member's NAT.
    pub nat: Nat,
    /// Every link, each way (members and servers alike).
    pub link: LinkSpec,
    /// The members' ICE servers.
    pub ice: Ice,
    /// Members (the first joins first; the last is the joiner whose join is timed).
    pub members: usize,
    /// With TURN credentials from the server: their lifetime (`serve --turn-ttl`), and each
    /// member after the first joins only twice this after the one before, once every earlier
    /// member's first credential has expired (its new offers must use the refreshed ones).
    pub credential_ttl: Option<Duration>,
}

/// One end of a link: the selected candidate pair, as the member reported it at `open`.
#[derive(Clone, Debug)]
pub struct End {
    /// The member.
    pub member: String,
    /// The link's connection id (the same at both ends).
    pub id: String,
    /// Its local candidate's type.
    pub local: String,
    /// The remote candidate's type; `unknown` for a peer-reflexive one (learned from a check
    /// before its candidate was signaled), which webrtc-rs 0.21.1 lists in no stats entry.
    pub remote: String,
    /// The local candidate's address.
    pub local_addr: String,
    /// The remote candidate's address (`?` when unknown).
    pub remote_addr: String,
}

impl End {
    /// `member: local -> remote (local_addr -> remote_addr)`.
    pub fn describe(&self) -> String {
        format!(
            "{}: {} -> {} ({} -> {})",
            self.member, self.local, self.remote, self.local_addr, self.remote_addr
        )
    }
}

/// What a scenario gave.
#[derive(Debug)]
pub struct Outcome {
    /// From the joiner's start to its first `open`.
    pub join: Duration,
    /// Each member's end of each of its links.
    pub ends: Vec<End>,
    /// Each link (connection id) and the kind of path its selected pair takes ([`link_kind`]).
    pub links: Vec<(String, &'static str)>,
}

/// The kind of path a link's selected pair takes, from both ends' candidate types and
/// addresses in `lab`: `relay` through TURN (a relay candidate at either end, or a remote at the
/// relay's address), `srflx` through the NATs' mappings (a server-reflexive candidate, or a
/// remote at a NAT's public address), `host` between the hosts' own addresses (host local
/// candidates at both ends, every known remote a host's address; one end may know its remote
/// only as peer-reflexive), else `unknown`.
pub fn link_kind(ends: &[&End], lab: &Lab, relay_ip: Option<Ipv4Addr>) -> &'static str {
    let ip_of = |addr: &str| {
        addr.rsplit_once(':')
            .and_then(|(ip, _)| ip.parse::<Ipv4Addr>().ok())
    };
    let remote_ips: Vec<Ipv4Addr> = ends.iter().filter_map(|e| ip_of(&e.remote_addr)).collect();
    let nat_public = |ip: &Ipv4Addr| {
        lab.sites()
            .iter()
            .any(|s| s.nat() != Nat::None && (s.public_addr() == *ip || s.udp_public_addr() == *ip))
    };
    let host = |ip: &Ipv4Addr| lab.sites().iter().any(|s| s.addr() == *ip);
    let any_type = |t: &str| ends.iter().any(|e| e.local == t || e.remote == t);
    if any_type("relay") || relay_ip.is_some_and(|r| remote_ips.contains(&r)) {
        "relay"
    } else if any_type("srflx") || remote_ips.iter().any(nat_public) {
        "srflx"
    } else if ends.iter().all(|e| e.local == "host")
        && !remote_ips.is_empty()
        && remote_ips.iter().all(host)
    {
        "host"
    } else {
        "unknown"
    }
}

/// A scratch folder for logs and the secret; removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The members' log filter: `FAST_RTC_NETLAB_LOG`, else `warn`.
fn log_filter() -> String {
    std::env::var("FAST_RTC_NETLAB_LOG").unwrap_or_else(|_| "warn".into())
}

/// `echo_peer` of this build.
fn echo_peer_path() -> PathBuf {
    let server = server_bin::path().unwrap_or_else(|e| panic!("{e}"));
    let path = server.with_file_name("examples").join("echo_peer");
    assert!(
        path.is_file(),
        "no echo_peer at {}: build it first (`cargo build -p fast_rtc_swarm --example echo_peer`)",
        path.display()
    );
    path
}

/// 32 random bytes, hex: a secret.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// TURN REST API credentials for `name`, valid for `ttl` (coturn's `use-auth-secret`): the
/// username `EXPIRY:NAME`, the credential base64(HMAC-SHA1(secret, username)).
pub fn turn_rest_credential(secret: &str, name: &str, ttl: Duration) -> (String, String) {
    let expiry = (SystemTime::now() + ttl)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let username = format!("{expiry}:{name}");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// A running member: its child and its events as they come (time of arrival, JSON).
pub struct Member {
    /// Its name (`m1`…), also its identity.
    pub name: String,
    child: Child,
    /// Its stdin (commands, with `--stdin`).
    pub stdin: Option<ChildStdin>,
    started: Instant,
    events: Receiver<(Instant, Value)>,
    /// What it reported so far (after [`drain`](Self::drain)), with the time it arrived.
    pub seen: Vec<(Instant, Value)>,
    stderr: PathBuf,
}

impl Member {
    /// Takes what it reported so far.
    pub fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event);
        }
    }

    /// Its `open` events.
    pub fn opens(&self) -> impl Iterator<Item = &(Instant, Value)> {
        self.seen.iter().filter(|(_, e)| e["type"] == "open")
    }

    /// Its links opened (`want` of them) and each hello came back echoed.
    fn done(&self, want: usize) -> bool {
        let echoes = self
            .seen
            .iter()
            .filter(|(_, e)| e["type"] == "data" && e["text"] == ECHOED_HELLO)
            .count();
        self.opens().count() >= want && echoes >= want
    }

    /// Its events of type `kind`, with their arrival times.
    pub fn events(&self, kind: &str) -> Vec<(Instant, &Value)> {
        self.seen
            .iter()
            .filter(|(_, e)| e["type"] == kind)
            .map(|(at, e)| (*at, e))
            .collect()
    }

    /// Sends one command line (`--stdin`).
    pub fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("no stdin");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn summary(&self) -> String {
        let events: Vec<String> = self.seen.iter().map(|(_, e)| e.to_string()).collect();
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        format!(
            "== {} events:\n{}\n== {} stderr (last lines, newest first):\n{}",
            self.name,
            events.join("\n"),
            self.name,
            tail.join("\n")
        )
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `scenario`: a lab with a public `server` site and `m1…mN`, the server (and coturn for
/// STUN or TURN), the members one after the other; waits (at most 30 s) until every member
/// has a link to every other and got its hello back echoed. Panics with the members' events
/// and logs otherwise.
pub fn run(scenario: &Scenario) -> Outcome {
    start(scenario, &[]).outcome()
}

/// A scenario under way ([`start`]): its lab, servers and members, for a test that acts on
/// it (changes a site's address, reads more events) before its [`outcome`](Self::outcome).
pub struct Running {
    /// Its members, `m1…mN` in order (dropped, so killed, first).
    pub members: Vec<Member>,
    coturn: Option<Coturn>,
    server: ServerProcess,
    server_log: PathBuf,
    /// The scenario.
    pub scenario: Scenario,
    /// The members' names.
    pub names: Vec<String>,
    /// The lab (dropped after the processes in it).
    pub lab: Lab,
    scratch: Scratch,
}

/// Starts `scenario` as [`run`] does, each member with `member_args` added to its command
/// line, and waits until every member is linked to every other.
pub fn start(scenario: &Scenario, member_args: &[String]) -> Running {
    let seed = seed();
    let mut builder = Lab::builder()
        .seed(seed)
        .default_link(scenario.link)
        .site("server", Nat::None);
    let names: Vec<String> = (1..=scenario.members).map(|i| format!("m{i}")).collect();
    for name in &names {
        builder = builder.site(name, scenario.nat);
    }
    let lab = builder.build().unwrap_or_else(|e| panic!("lab: {e}"));
    let public = lab.site("server").unwrap();
    // Named after a namespace of this lab: unique on the machine while the lab lives.
    let scratch = Scratch(std::env::temp_dir().join(format!("fast-rtc-{}", public.namespace())));
    std::fs::create_dir_all(&scratch.0).unwrap();
    let public_ip = public.public_addr();

    // coturn, for STUN from coturn or TURN.
    let turn_secret = random_secret();
    let coturn = matches!(scenario.ice, Ice::Stun(StunSource::Coturn) | Ice::Turn(_)).then(|| {
        let probe = public
            .enter(|| UdpSocket::bind((public_ip, 0)))
            .unwrap()
            .unwrap();
        Coturn::start_with(CoturnOptions {
            ip: public_ip.into(),
            port: Some(TURN_PORT),
            auth: CoturnAuth::Secret(turn_secret.clone()),
            wrapper: vec![
                "ip".into(),
                "netns".into(),
                "exec".into(),
                public.namespace().into(),
            ],
            probe: Some(probe),
            allowed_peers: vec!["10.77.0.0-10.77.255.255".into()],
        })
        .unwrap_or_else(|e| panic!("coturn: {e}"))
    });

    // The signaling server, on the public site.
    let secret_file = scratch.0.join("secret");
    std::fs::write(&secret_file, random_secret()).unwrap();
    let server_log = scratch.0.join("server.log");
    let mut serve = public.command(server_bin::path().unwrap());
    serve
        .args([
            "serve",
            "--listen",
            &format!("{public_ip}:{SIGNALING_PORT}"),
        ])
        .arg("--secret-file")
        .arg(&secret_file)
        .stderr(std::fs::File::create(&server_log).unwrap());
    if scenario.ice == Ice::Stun(StunSource::Server) {
        serve.args(["--stun-listen", &format!("{public_ip}:{TURN_PORT}")]);
    }
    if let (Ice::Turn(TurnSource::Server), Some(coturn)) = (scenario.ice, &coturn) {
        let file = scratch.0.join("turn-secret");
        std::fs::write(&file, &turn_secret).unwrap();
        serve
            .args(["--turn", coturn.url()])
            .arg("--turn-secret-file")
            .arg(file);
        if let Some(ttl) = scenario.credential_ttl {
            serve.args(["--turn-ttl", &format!("{}ms", ttl.as_millis())]);
        }
    }
    let server = ServerProcess::spawn(&mut serve).unwrap_or_else(|e| panic!("server: {e}"));

    let mut members: Vec<Member> = Vec::new();
    for name in &names {
        let site = lab.site(name).unwrap();
        let ice_args = match scenario.ice {
            Ice::None | Ice::Stun(StunSource::Server) | Ice::Turn(TurnSource::Server) => Vec::new(),
            Ice::Stun(StunSource::Coturn) => {
                vec!["--ice-server".into(), coturn.as_ref().unwrap().stun_url()]
            }
            Ice::Turn(TurnSource::Test) => {
                let (user, credential) =
                    turn_rest_credential(&turn_secret, name, Duration::from_secs(600));
                vec![
                    "--ice-server".into(),
                    coturn.as_ref().unwrap().url().to_owned(),
                    "--ice-username".into(),
                    user,
                    "--ice-credential".into(),
                    credential,
                ]
            }
        };
        let args: Vec<String> = ice_args.iter().chain(member_args).cloned().collect();
        members.push(spawn_member(
            &scratch.0,
            site,
            name,
            server.url(),
            &secret_file,
            &args,
        ));
        if members.len() < names.len() {
            // The earlier members are in the room before the joiner comes.
            wait_joined(members.last_mut().unwrap());
            if let Some(ttl) = scenario.credential_ttl {
                std::thread::sleep(ttl * 2);
            }
        }
    }

    let want = names.len() - 1;
    let deadline = Instant::now() + LINK_WITHIN;
    while Instant::now() < deadline {
        members.iter_mut().for_each(Member::drain);
        if members.iter().all(|m| m.done(want)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let failed: Vec<&Member> = members.iter().filter(|m| !m.done(want)).collect();
    if !failed.is_empty() {
        let logs: Vec<String> = members.iter().map(Member::summary).collect();
        let server_log = std::fs::read_to_string(&server_log).unwrap_or_default();
        panic!(
            "{}: {} of {} members did not link to every other and get their hello echoed within {LINK_WITHIN:?}\n{}\n== server:\n{server_log}\n== WAN: {}",
            scenario.name,
            failed.len(),
            members.len(),
            logs.join("\n"),
            wan_summary(&lab, &names),
        );
    }
    Running {
        members,
        coturn,
        server,
        server_log,
        scenario: scenario.clone(),
        names,
        lab,
        scratch,
    }
}

impl Running {
    /// The server's log so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.server_log).unwrap_or_default()
    }

    /// Every member's events and log, the server's log and the WAN's counters: what a failed
    /// assertion shows.
    pub fn report(&mut self) -> String {
        self.members.iter_mut().for_each(Member::drain);
        let logs: Vec<String> = self.members.iter().map(Member::summary).collect();
        format!(
            "{}\n== server:\n{}\n== WAN: {}",
            logs.join("\n"),
            self.server_log(),
            wan_summary(&self.lab, &self.names)
        )
    }

    /// The join time, each end's selected pair, each link's kind; printed as a `netlab:` line.
    pub fn outcome(self) -> Outcome {
        let Running {
            members,
            coturn,
            server,
            scenario,
            names,
            lab,
            ..
        } = self;
        let public_ip = lab.site("server").unwrap().public_addr();
        let joiner = members.last().unwrap();
        let first_open = joiner.opens().map(|(at, _)| *at).min().unwrap();
        let join = first_open - joiner.started;
        let ends: Vec<End> = members
            .iter()
            .flat_map(|m| {
                m.opens().map(|(_, e)| End {
                    member: m.name.clone(),
                    id: e["id"].as_str().unwrap_or("?").to_owned(),
                    local: e["local"].as_str().unwrap_or("none").to_owned(),
                    remote: e["remote"].as_str().unwrap_or("none").to_owned(),
                    local_addr: e["localAddr"].as_str().unwrap_or("?").to_owned(),
                    remote_addr: e["remoteAddr"].as_str().unwrap_or("?").to_owned(),
                })
            })
            .collect();
        let relay_ip = coturn.as_ref().map(|_| public_ip);
        let mut ids: Vec<&String> = ends.iter().map(|e| &e.id).collect();
        ids.sort();
        ids.dedup();
        let links = ids
            .into_iter()
            .map(|id| {
                let both: Vec<&End> = ends.iter().filter(|e| &e.id == id).collect();
                (id.clone(), link_kind(&both, &lab, relay_ip))
            })
            .collect();
        let outcome = Outcome { join, ends, links };
        println!(
            "netlab: {}: join {} ms (joiner start -> first open), pairs: {}; WAN: {}",
            scenario.name,
            outcome.join.as_millis(),
            outcome
                .links
                .iter()
                .map(|(id, kind)| {
                    let ends: Vec<String> = outcome
                        .ends
                        .iter()
                        .filter(|e| &e.id == id)
                        .map(End::describe)
                        .collect();
                    format!("{kind} [{}]", ends.join("; "))
                })
                .collect::<Vec<_>>()
                .join(", "),
            wan_summary(&lab, &names),
        );
        drop(members);
        drop(coturn);
        drop(server);
        drop(lab);
        outcome
    }
}

/// The member-to-member links' counters.
fn wan_summary(lab: &Lab, names: &[String]) -> String {
    let mut parts = Vec::new();
    for a in names {
        for b in names {
            if a != b
                && let Ok(s) = lab.link_stats(a, b)
            {
                parts.push(format!(
                    "{a}->{b} sent {} lost {} delivered {}",
                    s.sent, s.lost, s.delivered
                ));
            }
        }
    }
    parts.join(", ")
}

/// Starts `echo_peer` as member `name` on `site`, its events read by a thread.
fn spawn_member(
    dir: &Path,
    site: &Site,
    name: &str,
    url: &str,
    secret_file: &Path,
    ice_args: &[String],
) -> Member {
    let token = Command::new(server_bin::path().unwrap())
        .args(["token", "--sub", name, "--room", "*", "--ttl", "3600"])
        .arg("--secret-file")
        .arg(secret_file)
        .output()
        .unwrap();
    assert!(token.status.success(), "token: {token:?}");
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let stderr = dir.join(format!("{name}.err.log"));
    let started = Instant::now();
    let mut child = site
        .command(echo_peer_path())
        .args([
            "--json",
            "--fast-only",
            "--url",
            url,
            "--token",
            &token,
            "--room",
            "lab",
        ])
        .args(["--bind", &format!("{}:0", site.addr())])
        .args(ice_args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", log_filter())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stdin = child.stdin.take();
    let (tx, events) = sync_channel(1024);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if tx.send((Instant::now(), event)).is_err() {
                break;
            }
        }
    });
    Member {
        name: name.to_owned(),
        child,
        stdin,
        started,
        events,
        seen: Vec::new(),
        stderr,
    }
}

/// Waits (at most 15 s) until the server took the member into the room (its `signaling`
/// event `Joined`).
fn wait_joined(member: &mut Member) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        member.drain();
        if member
            .seen
            .iter()
            .any(|(_, e)| e["type"] == "signaling" && e["state"] == "Joined")
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "{} did not join the room:\n{}",
        member.name,
        member.summary()
    );
}
