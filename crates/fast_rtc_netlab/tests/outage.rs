//! A member's address changes mid-game: two `echo_peer` members behind cone NATs (the
//! signaling server's own STUN), a game-like stream of sequenced reliable messages each way
//! (`--stream-ms`), then one member's NAT changes: [`Lab::rebind`](fast_rtc_netlab::Lab::rebind)
//! (its UDP mappings die, its signaling TCP lives on), or
//! [`Lab::renumber`](fast_rtc_netlab::Lab::renumber) (its public address changes: UDP and the
//! signaling TCP die; the member's socket reconnects and resumes its session). The link must
//! come back by ICE restart (`interrupted` then `restored` at both ends), never close, deliver
//! every message exactly once and in order (those sent during the outage too), and run over a
//! server-reflexive pair afterwards. Prints when the path was found lost and when it was back,
//! from the change.
//! Needs root: `#[ignore]`d in a plain `cargo test`; `scripts/netlab-test.sh` runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;

use common::{End, Ice, Running, Scenario, cone_stun_source, link_kind, start};
use fast_rtc_netlab::{LinkSpec, Nat};
use serde_json::Value;
use std::time::{Duration, Instant};

/// 40 ms one way on every link: 80 ms round trips.
const WAN: LinkSpec = LinkSpec::delay(Duration::from_millis(40));
/// A game's tick: one reliable message each way every 20 ms.
const STREAM_MS: &str = "20";
/// The longest the link may take to come back (the swarm's restore timeout is 20 s).
const RESTORE_WITHIN: Duration = Duration::from_secs(30);

/// How a member's address changes.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// Its NAT forgets its UDP mappings; UDP leaves from a new address (TCP stays).
    Rebind,
    /// Its NAT's public address changes: every mapping dies, the signaling TCP too.
    Renumber,
}

/// The `seq:N` numbers `member` received from `from`, in order.
fn received(member: &common::Member, from: &str) -> Vec<u64> {
    member
        .events("data")
        .into_iter()
        .filter(|(_, e)| e["userId"] == from)
        .filter_map(|(_, e)| e["text"].as_str()?.strip_prefix("seq:")?.parse().ok())
        .collect()
}

/// Waits (bounded) until `done` holds for the drained members; panics with the report if not.
fn wait(running: &mut Running, within: Duration, what: &str, done: impl Fn(&Running) -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        running.members.iter_mut().for_each(common::Member::drain);
        if done(running) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} within {within:?}\n{}", running.report());
}

/// The `--json` event's selected pair as an [`End`].
fn end(member: &str, e: &Value) -> End {
    let field = |k: &str| e[k].as_str().unwrap_or("?").to_owned();
    End {
        member: member.to_owned(),
        id: field("id"),
        local: field("local"),
        remote: field("remote"),
        local_addr: field("localAddr"),
        remote_addr: field("remoteAddr"),
    }
}

/// The test: `change` applied to member `who` a second into the game (`m1` offered the
/// link, `m2` answered it).
fn outage(name: &'static str, change: Change, who: &str) {
    let scenario = Scenario {
        name,
        nat: Nat::Cone,
        link: WAN,
        ice: Ice::Stun(cone_stun_source()),
        members: 2,
        credential_ttl: None,
    };
    let args = ["--stream-ms", STREAM_MS, "--stdin"].map(String::from);
    let mut running = start(&scenario, &args);
    std::thread::sleep(Duration::from_secs(1));

    let changed = Instant::now();
    let new = match change {
        Change::Rebind => running.lab.rebind(who).unwrap(),
        Change::Renumber => running.lab.renumber(who).unwrap(),
    };
    wait(
        &mut running,
        RESTORE_WITHIN,
        "both ends did not report the link restored",
        |r| r.members.iter().all(|m| !m.events("restored").is_empty()),
    );
    // The game goes on a little over the restored path, then stops.
    std::thread::sleep(Duration::from_secs(1));
    for m in &mut running.members {
        m.command("stop");
    }
    wait(
        &mut running,
        Duration::from_secs(5),
        "a member did not report its stream's end",
        |r| r.members.iter().all(|m| !m.events("streamed").is_empty()),
    );
    let last = |m: &common::Member| m.events("streamed")[0].1["last"].as_u64().unwrap();
    let lasts: Vec<u64> = running.members.iter().map(last).collect();
    let names = running.names.clone();
    wait(
        &mut running,
        Duration::from_secs(10),
        "the stream did not arrive whole",
        |r| {
            (0..2).all(|i| received(&r.members[1 - i], &names[i]).last().copied() >= Some(lasts[i]))
        },
    );

    let report = running.report();
    let mut lines = Vec::new();
    for (i, m) in running.members.iter().enumerate() {
        let closes = m.events("close");
        assert!(closes.is_empty(), "{} closed the link: {report}", m.name);
        let interrupted = m.events("interrupted");
        let restored = m.events("restored");
        assert!(
            !interrupted.is_empty(),
            "{} saw no interruption: {report}",
            m.name
        );
        assert_eq!(
            m.opens().count(),
            1,
            "{}: one link, opened once: {report}",
            m.name
        );
        let (lost_at, _) = interrupted[0];
        let (back_at, event) = restored[restored.len() - 1];
        let restored_end = end(&m.name, event);
        lines.push(format!(
            "{}: path lost {} ms after the change, back {} ms after it (outage {} ms as the swarm measured it), now {}",
            m.name,
            (lost_at - changed).as_millis(),
            (back_at - changed).as_millis(),
            event["outageMs"],
            restored_end.describe(),
        ));
        let from = &names[1 - i];
        let got = received(m, from);
        let want: Vec<u64> = (1..=lasts[1 - i]).collect();
        assert!(
            got == want,
            "{} got {} messages from {from}, not 1..={} once each in order (first gap or repeat at {:?}): {report}",
            m.name,
            got.len(),
            lasts[1 - i],
            got.iter().zip(&want).position(|(g, w)| g != w),
        );
    }
    let ends: Vec<End> = running
        .members
        .iter()
        .map(|m| end(&m.name, m.events("restored").last().unwrap().1))
        .collect();
    let kind = link_kind(&ends.iter().collect::<Vec<_>>(), &running.lab, None);
    let mut signaling = String::new();
    if let Change::Renumber = change {
        // The member's signaling socket died with its address: it reconnected and the server
        // resumed its session (so its peer never heard it left).
        let m = running.members.iter().find(|m| m.name == who).unwrap();
        let states: Vec<(Instant, &str)> = m
            .events("signaling")
            .into_iter()
            .filter_map(|(at, e)| Some((at, e["state"].as_str()?)))
            .collect();
        let lost = states.iter().find(|(_, s)| *s == "Reconnecting");
        let back = states
            .iter()
            .rev()
            .find(|(at, s)| *s == "Joined" && lost.is_some_and(|(l, _)| at > l));
        let (Some((lost, _)), Some((back, _))) = (lost, back) else {
            panic!("{who}'s signaling did not reconnect: {states:?}\n{report}");
        };
        let server_log = running.server_log();
        assert!(
            server_log.contains("resumed"),
            "the server did not resume {who}'s session\n{report}"
        );
        signaling = format!(
            "{who}'s signaling lost {} ms after the change, joined again (resumed) {} ms after it; ",
            (*lost - changed).as_millis(),
            (*back - changed).as_millis()
        );
    }
    println!(
        "netlab: {name}: {who}'s NAT now {new}; {signaling}{}; {} and {} reliable messages each way arrived once and in order; pair after restore: {kind}",
        lines.join("; "),
        lasts[0],
        lasts[1],
    );
    assert_eq!(kind, "srflx", "after the restore: {ends:?}\n{report}");
}

#[test]
#[ignore = "needs root (network namespaces, TUN, nftables, conntrack): scripts/netlab-test.sh"]
fn a_nat_rebinding_mid_game_is_restored_by_ice_restart() {
    outage("cone NATs, m1's NAT rebinds (UDP)", Change::Rebind, "m1");
}

/// The test: the link's answerer (whose signaling socket only finds out it is dead
/// by its own ping) is renumbered; its session resumes, the offerer's restarts reach it.
#[test]
#[ignore = "needs root (network namespaces, TUN, nftables, conntrack): scripts/netlab-test.sh"]
fn a_renumbered_member_resumes_its_session_and_its_link_by_ice_restart() {
    outage(
        "cone NATs, m2's NAT renumbered (UDP and TCP)",
        Change::Renumber,
        "m2",
    );
}

/// The same with the link's offerer renumbered: its own restart offer finds its signaling
/// socket dead.
#[test]
#[ignore = "needs root (network namespaces, TUN, nftables, conntrack): scripts/netlab-test.sh"]
fn a_renumbered_offerer_resumes_its_session_and_restores_its_link() {
    outage(
        "cone NATs, m1's NAT renumbered (UDP and TCP)",
        Change::Renumber,
        "m1",
    );
}
