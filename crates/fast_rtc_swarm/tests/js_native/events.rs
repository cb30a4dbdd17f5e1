//! What members report (the page's JS members and the `echo_peer --json` processes use the same
//! JSON shape), and the log the test waits on.

use fast_rtc_swarm::Payload;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// How long any one wait may take before the test fails (a bound, never a timing assert).
pub const WAIT: Duration = Duration::from_secs(30);

/// One event of a member: `open`, `close`, `data`, and the failures `error` (JS), `send_error`
/// and `fault` (native), `page_error` (the page's own glue).
#[derive(serde::Deserialize, Debug, Clone)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    /// The peer the event is about (the token's `sub`, on both sides).
    #[serde(rename = "userId")]
    pub user_id: Option<String>,
    /// The link (connection id) of an `open` or `data` event: two links for one pair show here.
    pub id: Option<String>,
    pub text: Option<String>,
    pub bytes: Option<Vec<u8>>,
    pub error: Option<String>,
    /// Native only: why a peer closed.
    pub reason: Option<String>,
    /// Native only: whether this member offered or answered the link (`Offered`, `Answered`).
    pub origin: Option<String>,
    /// Native only: the channel number of a `data` event (`fast` is 0).
    pub channel: Option<u16>,
    /// JS only: the label of the channel the client took for the link, on `open`.
    pub label: Option<String>,
    /// `audio` (voice tests): the frequency heard from the peer, Hz.
    #[serde(rename = "peakHz")]
    pub peak_hz: Option<f64>,
    /// `audio` (voice tests): the level heard from the peer, RMS from 0 to 1.
    pub level: Option<f64>,
    /// Native `track` events: `added`, `muted`, `unmuted`, `removed`.
    pub state: Option<String>,
    /// Native `open` events: the selected candidate pair's local and remote candidate types
    /// (`host`, `srflx`, `prflx`, `relay`) and addresses, as the member recorded them.
    pub local: Option<String>,
    pub remote: Option<String>,
    #[serde(rename = "localAddr")]
    pub local_addr: Option<String>,
    #[serde(rename = "remoteAddr")]
    pub remote_addr: Option<String>,
}

impl Event {
    /// The message of a `data` event.
    pub fn payload(&self) -> Option<Payload> {
        match (&self.text, &self.bytes) {
            (Some(text), _) => Some(Payload::Text(text.clone())),
            (None, Some(bytes)) => Some(Payload::Binary(bytes.clone())),
            (None, None) => None,
        }
    }

    fn is_failure(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "error" | "send_error" | "fault" | "page_error"
        )
    }
}

/// An event of `member`, stamped when the harness received it.
#[derive(Debug, Clone)]
pub struct Report {
    pub member: String,
    pub at: Instant,
    pub event: Event,
}

/// Where reporters send.
pub type Reporter = UnboundedSender<Report>;

/// Everything reported so far, in arrival order.
pub struct Log {
    rx: UnboundedReceiver<Report>,
    pub reports: Vec<Report>,
}

impl Log {
    pub fn new() -> (Reporter, Log) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (
            tx,
            Log {
                rx,
                reports: Vec::new(),
            },
        )
    }

    /// Takes reports until `missing` finds nothing missing from the log, and returns when the
    /// report that completed it arrived. Fails the test after [`WAIT`] (printing the log and
    /// what is still missing), or at once if a member reports a failure.
    pub async fn wait_for(
        &mut self,
        what: &str,
        missing: impl Fn(&[Report]) -> Vec<String>,
    ) -> Instant {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(failure) = self.reports.iter().find(|r| r.event.is_failure()) {
                panic!(
                    "{} reported a failure while waiting for {what}: {:?}\n{}",
                    failure.member,
                    failure.event,
                    self.dump()
                );
            }
            let left = missing(&self.reports);
            if left.is_empty() {
                return self.reports.last().map_or_else(Instant::now, |r| r.at);
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(report)) => self.reports.push(report),
                Ok(None) => panic!("every reporter is gone while waiting for {what}"),
                Err(_) => panic!(
                    "{what}: not within {WAIT:?}\n{}missing: {left:#?}",
                    self.dump()
                ),
            }
        }
    }

    /// The log, one report a line, with times relative to the first.
    pub fn dump(&self) -> String {
        let start = self.reports.first().map(|r| r.at);
        self.reports
            .iter()
            .map(|r| {
                let ms = start.map_or(0.0, |s| r.at.duration_since(s).as_secs_f64() * 1e3);
                format!("{ms:9.1} ms  {:<9} {:?}\n", r.member, r.event)
            })
            .collect()
    }
}

fn peers_of<'a>(reports: &'a [Report], member: &str, kind: &str) -> BTreeSet<&'a str> {
    reports
        .iter()
        .filter(|r| r.member == member && r.event.kind == kind)
        .filter_map(|r| r.event.user_id.as_deref())
        .collect()
}

/// The peers `member` has reported open.
pub fn opened<'a>(reports: &'a [Report], member: &str) -> BTreeSet<&'a str> {
    peers_of(reports, member, "open")
}

/// The peers `member` has reported closed.
pub fn closed<'a>(reports: &'a [Report], member: &str) -> BTreeSet<&'a str> {
    peers_of(reports, member, "close")
}

/// The messages `member` received from `from`, in order.
pub fn received(reports: &[Report], member: &str, from: &str) -> Vec<Payload> {
    reports
        .iter()
        .filter(|r| r.member == member && r.event.kind == "data")
        .filter(|r| r.event.user_id.as_deref() == Some(from))
        .filter_map(|r| r.event.payload())
        .collect()
}

/// Every pair of `members`, both ways, as `(member, peer)`.
pub fn pairs<'a>(members: &'a [&'a str]) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    members
        .iter()
        .flat_map(move |a| members.iter().map(move |b| (*a, *b)))
        .filter(|(a, b)| a != b)
}

/// The pairs of `members` not reported open yet, as `member -> peer`.
pub fn not_open(reports: &[Report], members: &[&str]) -> Vec<String> {
    pairs(members)
        .filter(|(m, p)| !opened(reports, m).contains(p))
        .map(|(m, p)| format!("{m} -> {p}"))
        .collect()
}

/// The `members` that have not reported `peer` closed yet.
pub fn not_closed(reports: &[Report], members: &[&str], peer: &str) -> Vec<String> {
    members
        .iter()
        .filter(|m| !closed(reports, m).contains(peer))
        .map(|m| format!("{m} has not seen {peer} close"))
        .collect()
}

/// Data a member reported from a peer it had not reported open yet, as `(member, peer)`.
pub fn data_before_open(reports: &[Report]) -> Vec<(String, String)> {
    let mut open = BTreeSet::new();
    let mut early = Vec::new();
    for r in reports {
        let Some(peer) = r.event.user_id.as_deref() else {
            continue;
        };
        match r.event.kind.as_str() {
            "open" => {
                open.insert((r.member.as_str(), peer));
            }
            "data" if !open.contains(&(r.member.as_str(), peer)) => {
                early.push((r.member.clone(), peer.to_owned()));
            }
            _ => {}
        }
    }
    early
}
