//! Native members and members running the JavaScript reference client
//! `@mattkrick/fast-rtc-swarm@0.4.1` in one room, through our real signaling server (random
//! loopback port): the JS members in one page of a real headless Chromium (or Firefox, with
//! `FAST_RTC_JS_BROWSER=firefox`; or a page in each, `two_browsers_*`), each native member a
//! separate process (`examples/echo_peer/`, webrtc-rs backend). Every pair opens in both join
//! orders, data flows both ways on `fast` (text and binary) from the first moment each API
//! allows (for a JS member in the full-mesh tests, the task after its `open` handler: see
//! `full_mesh`), whichever side offered, each side sees the other's `close()`, and the field
//! report's scenario (two natives, three JS clients joining 300 ms apart, natives echoing) gets
//! every echo through.
//!
//! The harness is in `js_native/`: the page is served by the test and driven over a control
//! WebSocket, so every wait is on an event, never on a sleep. Needs the browser, the bundled page
//! (`scripts/setup-browser.sh`) and `echo_peer` built: `scripts/browser-test.sh` runs it, in a
//! network namespace holding only `lo`.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // the mesh times are read from the clock

mod js_native;
mod support;

use fast_rtc_swarm::Payload;
use js_native::browser::Browser;
use js_native::events::{
    Report, closed, data_before_open, not_closed, not_open, opened, pairs, received,
};
use js_native::room::Room;
use std::time::{Duration, Instant};

const NATIVES: [&str; 3] = ["native-1", "native-2", "native-3"];
const JS: [&str; 3] = ["js-1", "js-2", "js-3"];

fn is_native(member: &str) -> bool {
    member.starts_with("native")
}

/// What `member` sends each peer on open: `echo_peer`'s fixed hello, or the page's
/// `hello from NAME` (each as text, then as binary).
fn greeting(member: &str) -> String {
    if is_native(member) {
        "hello from native".into()
    } else {
        format!("hello from {member}")
    }
}

/// Joins `member`: a native process (`native-*`), a JS member in the page of Chromium
/// (`chromium-*`) or Firefox (`firefox-*`), or in the room's first page (`js-*`).
fn join(room: &mut Room, member: &str) {
    if is_native(member) {
        room.join_native(member);
    } else if member.starts_with("chromium-") {
        room.join_js_in(Browser::Chromium, member);
    } else if member.starts_with("firefox-") {
        room.join_js_in(Browser::Firefox, member);
    } else {
        room.join_js(member);
    }
}

/// How many times `to` received `text` from `from` as text, and as binary.
fn count(reports: &[Report], to: &str, from: &str, text: &str) -> (usize, usize) {
    let got = received(reports, to, from);
    let as_text = Payload::Text(text.into());
    let as_binary = Payload::Binary(text.as_bytes().to_vec());
    let count = |want: &Payload| got.iter().filter(|p| *p == want).count();
    (count(&as_text), count(&as_binary))
}

/// The greetings not received yet (text or binary), as `to <- from`.
fn not_greeted(reports: &[Report], members: &[&str]) -> Vec<String> {
    pairs(members)
        .filter(|(to, from)| {
            let (text, binary) = count(reports, to, from, &greeting(from));
            text == 0 || binary == 0
        })
        .map(|(to, from)| format!("{to} <- {from}: {:?}", greeting(from)))
        .collect()
}

/// The echoes of `text(js)` each of the JS members `js_members` has not received yet from each
/// native, as text (and, if `binary`, as binary too).
fn not_echoed(
    reports: &[Report],
    js_members: &[&str],
    natives: &[&str],
    text: impl Fn(&str) -> String,
    binary: bool,
) -> Vec<String> {
    let mut missing = Vec::new();
    for &js in js_members {
        for native in natives {
            let echo = format!("echo:{}", text(js));
            let (t, b) = count(reports, js, native, &echo);
            if t == 0 || (binary && b == 0) {
                missing.push(format!("{js} <- {native}: {echo:?} (text {t}, binary {b})"));
            }
        }
    }
    missing
}

/// Every JS member took `fast` for each of its links (the client takes the first channel the
/// other end announces).
fn assert_js_took_fast(reports: &[Report]) {
    for r in reports {
        if !is_native(&r.member) && r.event.kind == "open" {
            assert_eq!(r.event.label.as_deref(), Some("fast"), "{r:?}");
        }
    }
}

/// Nothing arrived twice, and no member got data from a peer before that peer's open. A
/// failure lists the links (connection ids) of `to`'s `open` and greeting events from `from`,
/// which tell two links for the pair from one message delivered twice.
fn assert_clean(reports: &[Report], members: &[&str]) {
    let unnamed: Vec<&Report> = reports
        .iter()
        .filter(|r| matches!(r.event.kind.as_str(), "open" | "data") && r.event.id.is_none())
        .collect();
    assert!(
        unnamed.is_empty(),
        "open/data reports without their link's id: {unnamed:?}"
    );
    for (to, from) in pairs(members) {
        let links = |kind: &str| -> Vec<String> {
            reports
                .iter()
                .filter(|r| r.member == to && r.event.kind == kind)
                .filter(|r| r.event.user_id.as_deref() == Some(from))
                .filter(|r| {
                    kind == "open" || r.event.payload().is_some_and(|p| is_greeting(&p, from))
                })
                .map(|r| r.event.id.clone().unwrap_or_else(|| "?".into()))
                .collect()
        };
        assert_eq!(
            count(reports, to, from, &greeting(from)),
            (1, 1),
            "{to} got {from}'s greeting (text, binary) this many times; {to}'s opens for {from} \
             on links {:?}, the greetings on links {:?}",
            links("open"),
            links("data")
        );
    }
    assert_eq!(data_before_open(reports), vec![], "data before open");
}

/// Whether `payload` is `from`'s greeting, as text or binary.
fn is_greeting(payload: &Payload, from: &str) -> bool {
    payload.as_bytes() == greeting(from).as_bytes()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Both groups join at once, one group after the other has its own links open; the JS members
/// in a page of each of `browsers` (see `join` for the names).
/// `game_channel`: the natives also open the `state` channel, not only `fast`. The natives
/// greet from their `Open` event; the JS members in the task after their `open` handler,
/// because Chromium itself may lose a send made in that handler (the `known_bug_` tests below;
/// it failed this test once in CI: "native-3 <- js-1", with Chromium's `INVALID_STATE` log).
async fn full_mesh(
    room_name: &str,
    browsers: &[Browser],
    first: &[&str],
    second: &[&str],
    game_channel: bool,
) {
    let all: Vec<&str> = first.iter().chain(second).copied().collect();
    let natives: Vec<&str> = all.iter().copied().filter(|m| is_native(m)).collect();
    let js: Vec<&str> = all.iter().copied().filter(|m| !is_native(m)).collect();
    let mut room = Room::with_browsers(room_name, browsers).await;
    room.game_channel = game_channel;
    room.js_greet_later = true;

    let start = Instant::now();
    for member in first {
        join(&mut room, member);
    }
    let first_open = room
        .log
        .wait_for("the first group open with each other", |r| {
            not_open(r, first)
        })
        .await;
    let second_start = Instant::now();
    for member in second {
        join(&mut room, member);
    }
    let all_at = room
        .log
        .wait_for("every pair open", |r| not_open(r, &all))
        .await;
    println!(
        "MESH TIME {room_name}: first join -> all {} pairs open: {:.1} ms (first group alone: \
         {:.1} ms; second group's join -> all open: {:.1} ms)",
        all.len() * (all.len() - 1) / 2,
        ms(all_at - start),
        ms(first_open - start),
        ms(all_at - second_start),
    );
    assert_js_took_fast(&room.log.reports);

    // Who offered: a joiner answers the members' parked offers (within a group, either).
    for r in &room.log.reports {
        if is_native(&r.member) && r.event.kind == "open" {
            let peer = r.event.user_id.as_deref().unwrap();
            let member_first = first.contains(&r.member.as_str());
            if !is_native(peer) && member_first != first.contains(&peer) {
                let want = if member_first { "Offered" } else { "Answered" };
                assert_eq!(r.event.origin.as_deref(), Some(want), "{r:?}");
            }
        }
    }

    // Sent from `open` (JS) and at `SwarmEvent::Open` (native): every greeting arrives, and
    // every native echoes every JS member's greeting back.
    room.log
        .wait_for("every greeting, text and binary, both ways", |r| {
            not_greeted(r, &all)
        })
        .await;
    room.log
        .wait_for("every native's echo of every JS greeting", |r| {
            not_echoed(r, &js, &natives, greeting, true)
        })
        .await;
    assert_clean(&room.log.reports, &all);

    // A JS close() is seen by every other member; then a native close() likewise.
    let others = |gone: &[&str]| -> Vec<&str> {
        all.iter().copied().filter(|m| !gone.contains(m)).collect()
    };
    let (js_1, native_1) = (js[0], natives[0]);
    room.close_js(js_1);
    room.log
        .wait_for(
            "the first JS member's close, seen by every other member",
            |r| not_closed(r, &others(&[js_1]), js_1),
        )
        .await;
    room.close_native(native_1);
    room.log
        .wait_for("the first native's close, seen by the members left", |r| {
            not_closed(r, &others(&[js_1, native_1]), native_1)
        })
        .await;
    // Nothing else closed for the members left.
    for member in others(&[js_1, native_1]) {
        let gone = closed(&room.log.reports, member);
        assert!(
            gone.iter().all(|p| [js_1, native_1].contains(p)),
            "{member} closed {gone:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and echo_peer: run scripts/browser-test.sh"]
async fn natives_first_then_js_full_mesh_data_and_close() {
    let browsers = [Browser::from_env()];
    full_mesh("natives-first", &browsers, &NATIVES, &JS, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and echo_peer: run scripts/browser-test.sh"]
async fn js_first_then_natives_full_mesh_data_and_close() {
    let browsers = [Browser::from_env()];
    full_mesh("js-first", &browsers, &JS, &NATIVES, true).await;
}

/// The natives here have a game channel (`state`) besides `fast`, as in the tests above. A JS
/// client that answers takes the FIRST channel `ondatachannel` gives it as its `fast`
/// (`fast-rtc-peer` 0.4.1), and webrtc-rs 0.21.1 announces an offerer's channels in `HashMap`
/// order: a native offerer that created `state` before the offer lost `fast` to 1 or 2 of the 9
/// JS links per run. A native offerer now creates game channels only after an answer that says
/// the remote takes them (`fast_rtc_swarm::sdp`), which a JS answer never does. This test is the
/// other configuration: natives with `fast` only, which must work the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and echo_peer: run scripts/browser-test.sh"]
async fn natives_with_fast_only_and_js_full_mesh_data_and_close() {
    let browsers = [Browser::from_env()];
    full_mesh("natives-fast-only", &browsers, &NATIVES, &JS, false).await;
}

/// Native members, JS members in a headless Chromium and JS members in a headless Firefox in
/// one room, each group of three (a native, a Chromium and a Firefox member) joining at once:
/// every pair of kinds opens (native, Chromium, Firefox, each with the others and with
/// itself), greets and echoes both ways, and sees the others' `close()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and Firefox, and echo_peer: run scripts/browser-test.sh"]
async fn two_browsers_natives_chromium_firefox_full_mesh() {
    let browsers = [Browser::Chromium, Browser::Firefox];
    let first = ["native-1", "chromium-1", "firefox-1"];
    let second = ["native-2", "chromium-2", "firefox-2"];
    full_mesh("two-browsers", &browsers, &first, &second, true).await;
}

/// The field report: two native members present, three JS clients joining 300 ms apart (the
/// scenario's spacing, not a synchronization), the natives echoing everything. A native once
/// logged "no open link to js1" for a message before its open, and that link's later messages
/// never arrived; here every JS member must get every echo, of its greeting and of later
/// messages. The natives have `fast` only.
///
/// KNOWN BUG (Chromium), skipped by `scripts/browser-test.sh` in Chromium (`--skip known_bug_`)
/// and run in Firefox, where it passed 22 of 22 runs: a JS member's greeting, sent in its
/// `open` handler, sometimes never reaches a native offerer (1 of 40 runs
/// here; 2 of 40 with a game channel, below). The message is lost in Chromium, before it is
/// sent: the browser logs `rtc_data_channel.cc:867] Send failedINVALID_STATE` once per lost
/// message (set `FAST_RTC_CHROMIUM_LOG` to see the browser's log in passing runs too). For a
/// channel the remote announced (the JS member answers), Blink's
/// `RTCPeerConnection::DidAddRemoteDataChannel` marks it open and dispatches `datachannel` and
/// `open` at once (`SetStateToOpenWithoutEvent`, `DispatchOpenEvent`), while the WebRTC channel
/// on the network thread is still `kConnecting`: it opens in `SctpDataChannel::OnTransportReady`,
/// which `DataChannelController::OnDataChannelOpenMessage` posts to the network thread only after
/// handing the channel to Blink. A send queued before that task runs is refused by
/// `SctpDataChannel::SendImpl` (`state_ != kOpen` -> `INVALID_STATE`), and Blink's `SendAsync`
/// callback only logs it. The native never gets the bytes; nothing on its side can recover
/// them. Only seen with native offerers so far (why their timing opens the window more often
/// is not known).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and echo_peer: run scripts/browser-test.sh"]
async fn known_bug_field_report_two_natives_three_js_300ms_apart_get_every_echo() {
    field_report("field-report", false).await;
}

/// KNOWN BUG (Chromium), skipped by `scripts/browser-test.sh` in Chromium and run in Firefox
/// (see above): the field report with natives that have a game channel (`state`) besides `fast`. In 2 of 40 runs (and 1 of 30 with
/// the browser's log on) a JS member's greeting (the text, or the text and the binary) never
/// reached one native offerer: Chromium refused to send it (see above: one
/// `Send failedINVALID_STATE` per lost message, in every such failure). One more run of the 40
/// failed differently: a native got one JS member's greeting twice (not investigated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and echo_peer: run scripts/browser-test.sh"]
async fn known_bug_field_report_with_game_channel_natives() {
    field_report("field-report-state", true).await;
}

async fn field_report(room_name: &str, game_channel: bool) {
    let natives = ["native-1", "native-2"];
    let all: Vec<&str> = natives.iter().chain(&JS).copied().collect();
    let mut room = Room::new(room_name).await;
    room.game_channel = game_channel;
    for native in natives {
        room.join_native(native);
    }
    room.log
        .wait_for("the natives open with each other", |r| {
            not_open(r, &natives)
        })
        .await;
    let start = Instant::now();
    for js in JS {
        room.join_js(js);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let all_at = room
        .log
        .wait_for("every pair open", |r| not_open(r, &all))
        .await;
    println!(
        "MESH TIME field-report: first JS join -> all pairs open: {:.1} ms (joins 300 ms apart)",
        ms(all_at - start)
    );
    assert_js_took_fast(&room.log.reports);
    room.log
        .wait_for("every native's echo of every JS greeting", |r| {
            not_echoed(r, &JS, &natives, greeting, true)
        })
        .await;
    let later = |js: &str| format!("later from {js}");
    for js in JS {
        for native in natives {
            room.js_send(js, native, &later(js));
        }
    }
    room.log
        .wait_for("every native's echo of every later message", |r| {
            not_echoed(r, &JS, &natives, later, false)
        })
        .await;
    assert_clean(&room.log.reports, &all);
    for member in &all {
        assert_eq!(
            opened(&room.log.reports, member).len(),
            all.len() - 1,
            "{member}"
        );
    }
}
