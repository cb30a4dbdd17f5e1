//! Voice between a native member and a member running the JavaScript reference client
//! `@mattkrick/fast-rtc-swarm@0.4.1` in one room, over real WebRTC on loopback: the native
//! (`examples/echo_peer` with `--tone`, feature `voice`, webrtc-rs and libopus) plays a sine
//! on its declared track `voice`; the JS member (a page of a headless Chromium) plays another
//! as its stream and track `voice` (an OscillatorNode) through the client's own `streams`
//! option. Each side must hear the other's frequency, in both join orders (so the JS client is
//! once the offerer and once the answerer, whose `transceiverRequest` and renegotiation offer
//! on the live link this crate answers), and a mute on either side must silence it at the
//! other.
//!
//! The harness is `js_native/` (see `tests/js_native_interop.rs`); `scripts/browser-test.sh`
//! runs it with an `echo_peer` built with `voice`.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // the harness reads the clock

mod js_native;
mod support;

use js_native::events::Report;
use js_native::room::Room;

/// The native's frequency and the JS member's: apart, and neither a harmonic of the other.
const NATIVE_HZ: f64 = 440.0;
const JS_HZ: f64 = 660.0;

/// How far from the sent frequency the heard one may be: the page's FFT bins are 5.9 Hz wide,
/// and the native counts zero crossings over half a second.
const TOLERANCE_HZ: f64 = 15.0;

/// A level (RMS, full scale 1) that only a tone reaches; silence and comfort noise stay below.
const HEARD: f64 = 0.05;

/// The `audio` reports of `member` about `from`: (peak Hz, level), in order.
fn heard(reports: &[Report], member: &str, from: &str) -> Vec<(f64, f64)> {
    reports
        .iter()
        .filter(|r| {
            r.member == member
                && r.event.kind == "audio"
                && r.event.user_id.as_deref() == Some(from)
        })
        .filter_map(|r| Some((r.event.peak_hz?, r.event.level?)))
        .collect()
}

/// Whether `member`'s reports about `from` since report `since` include `hz`, loud.
fn hears(reports: &[Report], member: &str, from: &str, hz: f64, since: usize) -> bool {
    heard(&reports[since.min(reports.len())..], member, from)
        .iter()
        .any(|(peak, level)| (peak - hz).abs() <= TOLERANCE_HZ && *level >= HEARD)
}

/// Both hear each other; then `muted` (the JS member, or the native) mutes and the other ends
/// up hearing nothing of it.
async fn voice(room_name: &str, native_first: bool, mute_js: bool) {
    let mut room = Room::new(room_name).await;
    room.game_channel = false;
    let (native, js) = ("native-v", "js-v");
    // The spacing of the joins decides who offers (checked below, from the native's `open`).
    let spacing = std::time::Duration::from_secs(1);
    if native_first {
        room.join_native_with_tone(native, NATIVE_HZ as f32);
        tokio::time::sleep(spacing).await;
        room.join_js_with_tone(js, JS_HZ as f32);
    } else {
        room.join_js_with_tone(js, JS_HZ as f32);
        tokio::time::sleep(spacing).await;
        room.join_native_with_tone(native, NATIVE_HZ as f32);
    }
    room.log
        .wait_for("both hear each other's tone", |r| {
            let mut missing = Vec::new();
            if !hears(r, native, js, JS_HZ, 0) {
                missing.push(format!(
                    "{native} hears {JS_HZ} Hz: {:?}",
                    heard(r, native, js)
                ));
            }
            if !hears(r, js, native, NATIVE_HZ, 0) {
                missing.push(format!(
                    "{js} hears {NATIVE_HZ} Hz: {:?}",
                    heard(r, js, native)
                ));
            }
            missing
        })
        .await;
    let origin = room
        .log
        .reports
        .iter()
        .find(|r| r.member == native && r.event.kind == "open")
        .and_then(|r| r.event.origin.clone());
    let expected = if native_first { "Offered" } else { "Answered" };
    assert_eq!(origin.as_deref(), Some(expected), "who offered");
    let r = &room.log.reports;
    println!(
        "VOICE {room_name}: {native} hears {js} at {:?} (Hz, level); {js} hears {native} at {:?}",
        heard(r, native, js).last(),
        heard(r, js, native).last()
    );
    let (speaker, listener) = if mute_js {
        room.mute_js(js);
        (js, native)
    } else {
        room.mute_native(native, true);
        (native, js)
    };
    // Reports that started before the mute may still carry the tone: wait for two in a row
    // that are quiet. A native reports only what it decodes, so a silenced JS track may also
    // simply stop its reports: then the native's reports of other peers' data go on, and the
    // page keeps reporting (every 500 ms) whatever the native sends, silence included.
    let since = room.log.reports.len();
    room.log
        .wait_for(&format!("{listener} no longer hears {speaker}"), |r| {
            let after = heard(&r[since.min(r.len())..], listener, speaker);
            let quiet = after
                .iter()
                .rev()
                .take(2)
                .filter(|(_, l)| *l < HEARD)
                .count();
            let stopped = listener == native && after.is_empty() && {
                // The native reports per half second of decoded audio: none for 3 s of the
                // page's own reports (6 a second from its listener) means none arrives.
                heard(&r[since.min(r.len())..], js, native).len() >= 6
            };
            if quiet == 2 || stopped {
                vec![]
            } else {
                vec![format!("{listener} still hears {speaker}: {after:?}")]
            }
        })
        .await;
    // The listener's own tone still reaches the speaker.
    let since = room.log.reports.len();
    let other_hz = if mute_js { NATIVE_HZ } else { JS_HZ };
    room.log
        .wait_for(&format!("{speaker} still hears {listener}"), |r| {
            if hears(r, speaker, listener, other_hz, since) {
                vec![]
            } else {
                vec![format!("{speaker} hears {other_hz} Hz")]
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and echo_peer built with voice: run scripts/browser-test.sh"]
async fn native_offers_js_answers_both_hear_and_a_js_mute_silences() {
    voice("voice-native-first", true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and echo_peer built with voice: run scripts/browser-test.sh"]
async fn js_offers_native_answers_both_hear_and_a_native_mute_silences() {
    voice("voice-js-first", false, false).await;
}
