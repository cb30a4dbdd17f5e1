//! Voice between real webrtc-rs members on 127.0.0.1: a synthetic tone is Opus-encoded, sent
//! over a real RTP track, decoded, and its frequency found again (FFT peak) at the other end;
//! mute, unmute and remove are seen; a late joiner hears a track that was live before it came.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use fast_rtc_protocol::UserId;
use fast_rtc_swarm::media::{FRAME_DURATION, FRAME_SAMPLES, tone};
use fast_rtc_swarm::{AudioSender, SwarmConfig, SwarmEvent, SwarmHandle, TrackError, TrackId};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::spectrum::peak;
use support::{collect_until, member, server, wait_open};

/// Sends `frequency` Hz on `sender`'s track every 20 ms until `stop` is set; returns how many
/// frames went to at least one link, and how many to none (muted or no link yet).
fn play(
    mut sender: AudioSender,
    frequency: f32,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FRAME_DURATION);
        let (mut sent, mut unsent, mut offset) = (0, 0, 0);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let frame = tone(frequency, 0.5, offset, FRAME_SAMPLES);
            offset += FRAME_SAMPLES;
            match sender.send(&frame) {
                Ok(0) => unsent += 1,
                Ok(_) => sent += 1,
                Err(TrackError::NotAdded(_)) => unsent += 1,
                Err(e) => panic!("send: {e}"),
            }
        }
        (sent, unsent)
    })
}

/// The samples of `from`'s audio on `track` among `events`, in order.
fn heard(events: &[SwarmEvent], from: &str, track: TrackId) -> Vec<i16> {
    events
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::Audio {
                from: f,
                track: t,
                samples,
            } if f.as_str() == from && *t == track => Some(samples.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

fn frames(events: &[SwarmEvent], from: &str, track: TrackId) -> usize {
    heard(events, from, track).len() / FRAME_SAMPLES
}

/// Asserts that `samples` are a tone of `frequency` Hz (within 3 Hz, most of the energy).
fn assert_tone(samples: &[i16], frequency: f32, what: &str) {
    assert!(
        samples.len() >= 10 * FRAME_SAMPLES,
        "{what}: only {} samples",
        samples.len()
    );
    // Skip the decoder's first frames (its ramp-up).
    let (f, share) = peak(&samples[5 * FRAME_SAMPLES..]);
    assert!(
        (f - frequency).abs() <= 3.0,
        "{what}: peak at {f} Hz, not {frequency} Hz"
    );
    assert!(
        share > 0.5,
        "{what}: only {share:.2} of the energy is at the peak"
    );
}

fn voice_config(room: &str) -> (SwarmConfig, TrackId) {
    let mut config = SwarmConfig::new(room);
    let voice = config.add_audio_track("voice");
    (config, voice)
}

async fn until_audio(h: &SwarmHandle, from: &str, track: TrackId, n: usize) -> Vec<SwarmEvent> {
    collect_until(h, Duration::from_secs(10), |evs| {
        frames(evs, from, track) >= n
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tone_goes_both_ways_and_mute_unmute_remove_are_seen() {
    let srv = server().await;
    let (config, voice) = voice_config("voice-both-ways");
    let a = member(&srv, "a", config.clone());
    let b = member(&srv, "b", config);
    wait_open(&a, &["b".into()], Duration::from_secs(10)).await;
    wait_open(&b, &["a".into()], Duration::from_secs(10)).await;

    // a offered the link (its parked offer), b answered: both directions of one transceiver.
    let stop = Arc::new(AtomicBool::new(false));
    let a_plays = play(AudioSender::new(&a, voice).unwrap(), 440.0, stop.clone());
    let b_plays = play(AudioSender::new(&b, voice).unwrap(), 660.0, stop.clone());

    let at_b = until_audio(&b, "a", voice, 25).await;
    // The link's first round-trip time (its ping, from the open) may come before.
    let first = at_b
        .iter()
        .find(|e| !matches!(e, SwarmEvent::Rtt { .. } | SwarmEvent::Connection { .. }));
    assert!(
        matches!(first, Some(SwarmEvent::TrackAdded { peer, track }) if peer.as_str() == "a" && *track == voice),
        "b first learns of a's track: {first:?}"
    );
    assert_tone(&heard(&at_b, "a", voice), 440.0, "a -> b");
    let at_a = until_audio(&a, "b", voice, 25).await;
    assert_tone(&heard(&at_a, "b", voice), 660.0, "b -> a");

    // Muted: b is told, and hears nothing of a from then on (a sends nothing: its sender
    // reports 0 links).
    a.mute_track(voice, true).unwrap();
    let muted = collect_until(&b, Duration::from_secs(5), |evs| {
        evs.iter()
            .any(|e| matches!(e, SwarmEvent::TrackMuted { muted: true, .. }))
    })
    .await;
    assert!(muted.iter().any(
        |e| matches!(e, SwarmEvent::TrackMuted { peer, muted: true, .. } if peer.as_str() == "a")
    ));
    let quiet = collect_until(&b, Duration::from_millis(600), |_| false).await;
    assert_eq!(frames(&quiet, "a", voice), 0, "a is muted, yet b hears it");
    assert!(frames(&quiet, "b", voice) == 0); // b never hears itself

    // Unmuted: the tone is back.
    a.mute_track(voice, false).unwrap();
    let back = until_audio(&b, "a", voice, 25).await;
    assert!(
        back.iter()
            .any(|e| matches!(e, SwarmEvent::TrackMuted { muted: false, .. }))
    );
    assert_tone(&heard(&back, "a", voice), 440.0, "a -> b after unmute");

    // Removed: b is told, and a's sends are refused.
    a.remove_track(voice).unwrap();
    let removed = collect_until(&b, Duration::from_secs(5), |evs| {
        evs.iter()
            .any(|e| matches!(e, SwarmEvent::TrackRemoved { .. }))
    })
    .await;
    assert!(removed.iter().any(|e| matches!(e, SwarmEvent::TrackRemoved { peer, track } if peer.as_str() == "a" && *track == voice)));
    assert_eq!(
        a.remote_track(&UserId::from("b"), voice),
        Some(fast_rtc_swarm::TrackState::Live)
    );
    assert_eq!(b.remote_track(&UserId::from("a"), voice), None);

    stop.store(true, Ordering::Relaxed);
    let (a_sent, a_unsent) = a_plays.await.unwrap();
    let (b_sent, _) = b_plays.await.unwrap();
    assert!(
        a_sent >= 50 && b_sent >= 50,
        "sent {a_sent} / {b_sent} frames"
    );
    assert!(
        a_unsent >= 25,
        "a's muted and removed frames were sent: {a_unsent} unsent"
    );

    // b's link to a closes: a sees b's track removed before the close.
    b.close();
    let gone = collect_until(&a, Duration::from_secs(10), |evs| {
        evs.iter().any(|e| matches!(e, SwarmEvent::Close { .. }))
    })
    .await;
    let removed_at = gone
        .iter()
        .position(|e| matches!(e, SwarmEvent::TrackRemoved { .. }));
    let closed_at = gone
        .iter()
        .position(|e| matches!(e, SwarmEvent::Close { .. }));
    assert!(removed_at.is_some() && removed_at < closed_at, "{gone:?}");
    a.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_hears_a_track_that_was_live_before_it_came() {
    let srv = server().await;
    let (config, voice) = voice_config("voice-late");
    let a = member(&srv, "a", config.clone());
    let stop = Arc::new(AtomicBool::new(false));
    // a is alone and already talking: its frames go nowhere yet.
    let a_plays = play(AudioSender::new(&a, voice).unwrap(), 440.0, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let c = member(&srv, "c", config);
    let at_c = until_audio(&c, "a", voice, 25).await;
    let added = at_c
        .iter()
        .position(|e| matches!(e, SwarmEvent::TrackAdded { .. }));
    let opened = at_c.iter().position(|e| matches!(e, SwarmEvent::Open(_)));
    assert!(
        opened.is_some() && opened < added,
        "c sees a open, then its track: {at_c:?}"
    );
    assert_tone(&heard(&at_c, "a", voice), 440.0, "a -> late joiner c");

    stop.store(true, Ordering::Relaxed);
    let (sent, unsent) = a_plays.await.unwrap();
    assert!(
        unsent >= 10 && sent >= 25,
        "{sent} sent, {unsent} before c came"
    );
    a.close();
    c.close();
}
