//! Voice between a page in a real headless Chromium and a native webrtc-rs member
//! (`examples/voice_peer.rs`, feature `voice`), through our real server, with frequencies
//! checked at both ends:
//!
//! - page → native: a 440 Hz `OscillatorNode` is the page's track; the native member decodes
//!   it (Opus) and reports the FFT peak of 1 s of it; after the page mutes, it sees the mute and
//!   hears nothing; after the unmute, 440 Hz again; and again over a second link the page's
//!   pre-made offer makes (the native member rejoins), so both the answering and the offering
//!   page carry the source;
//! - native → page: the native member plays 660 Hz; the page's remote stream goes into an
//!   `AnalyserNode` whose strongest bin must be 660 Hz; the native member's mute must drop
//!   the level, its unmute bring the tone back.
//!
//! `scripts/browser-test.sh` starts the native members (rooms `voice-b2n`, and `voice-n2b`
//! with `--tone 660`) and runs this.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;

use browser::*;
use fast_rtc_protocol::UserId;
use fast_rtc_swarm::{
    BrowserAudio, ChannelId, Payload, SwarmConfig, SwarmEvent, SwarmHandle, TrackError, TrackId,
};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{AnalyserNode, AudioContext, MediaStream, MediaStreamTrack};

wasm_bindgen_test_configure!(run_in_browser);

fn voice_member(token: Option<&'static str>, room: &str) -> (SwarmHandle, TrackId) {
    let token = setting(token, "FAST_RTC_WEB_TEST_TOKEN_VOICE_*");
    let mut config = SwarmConfig::new(room);
    let voice = config.add_audio_track("voice");
    (member(token, config, room), voice)
}

/// The next text from `peer` that starts with `prefix`, within 10 s.
async fn reply(h: &SwarmHandle, peer: &UserId, prefix: &str) -> String {
    next(h, 10, |ev| match ev {
        SwarmEvent::Data {
            from,
            channel: ChannelId::FAST,
            payload: Payload::Text(text),
            ..
        } if from == *peer && text.starts_with(prefix) => Some(text),
        _ => None,
    })
    .await
}

/// Asks the native member to measure what it hears of this page: `(peak Hz, share)`.
async fn measured(h: &SwarmHandle, native: &UserId) -> (f32, f32) {
    h.send(native, ChannelId::FAST, "measure").unwrap();
    let text = reply(h, native, "heard").await;
    let words: Vec<&str> = text.split(' ').collect();
    assert_eq!(words[0], "heard", "the native member heard nothing: {text}");
    (words[1].parse().unwrap(), words[2].parse().unwrap())
}

fn assert_440(seen: (f32, f32), what: &str) {
    let (hz, share) = seen;
    web_sys::console::log_1(&format!("{what}: peak {hz} Hz, {share:.3} of the energy").into());
    assert!(
        (hz - 440.0).abs() <= 3.0,
        "{what}: peak at {hz} Hz, not 440 Hz"
    );
    assert!(
        share > 0.5,
        "{what}: only {share} of the energy at the peak"
    );
}

/// A page-made 440 Hz tone as a `MediaStreamTrack`.
fn oscillator(ctx: &AudioContext, frequency: f32) -> MediaStreamTrack {
    let osc = ctx.create_oscillator().unwrap();
    osc.frequency().set_value(frequency);
    let gain = ctx.create_gain().unwrap();
    gain.gain().set_value(0.5);
    let dest = ctx.create_media_stream_destination().unwrap();
    osc.connect_with_audio_node(&gain).unwrap();
    gain.connect_with_audio_node(&dest).unwrap();
    osc.start().unwrap();
    dest.stream().get_audio_tracks().get(0).dyn_into().unwrap()
}

#[wasm_bindgen_test]
async fn a_page_tone_is_heard_natively_and_its_mute_silences_it() {
    allow_loopback_candidates().await;
    let ctx = AudioContext::new().unwrap();
    let _ = wasm_bindgen_futures::JsFuture::from(ctx.resume().unwrap()).await;
    let (page, voice) = voice_member(
        option_env!("FAST_RTC_WEB_TEST_TOKEN_VOICE_B2N"),
        "voice-b2n",
    );
    // Encoded audio from Rust is refused in the browser, by a typed error.
    assert_eq!(
        page.send_audio(voice, vec![0; 10]),
        Err(TrackError::BrowserSource)
    );
    page.set_audio_source(voice, Some(oscillator(&ctx, 440.0)))
        .unwrap();
    page.add_track(voice).unwrap();
    let native = opened(&page).await.user_id;
    assert_eq!(native.as_str(), "voice-native-b2n");
    reply(&page, &native, "saw-added").await;
    // This page answered the native member's parked offer.
    assert_440(measured(&page, &native).await, "page (answerer) -> native");

    page.mute_track(voice, true).unwrap();
    assert_eq!(reply(&page, &native, "saw-muted").await, "saw-muted true");
    page.send(&native, ChannelId::FAST, "quiet").unwrap();
    assert_eq!(
        reply(&page, &native, "quiet").await,
        "quiet 0",
        "muted, yet heard"
    );

    page.mute_track(voice, false).unwrap();
    assert_eq!(reply(&page, &native, "saw-muted").await, "saw-muted false");
    assert_440(
        measured(&page, &native).await,
        "page -> native after unmute",
    );

    // A second link, made from this page's pre-made offer: the source goes on it too.
    page.send(&native, ChannelId::FAST, "rejoin").unwrap();
    closed(&page).await;
    let again = opened(&page).await;
    assert_eq!(again.user_id, native);
    reply(&page, &native, "saw-added").await;
    assert_440(measured(&page, &native).await, "page (offerer) -> native");
    page.close();
    let _ = ctx.close();
}

/// The strongest bin of `analyser` (Hz) and its level (dBFS).
fn spectrum_peak(analyser: &AnalyserNode, sample_rate: f32) -> (f32, f32) {
    let mut bins = vec![0f32; analyser.frequency_bin_count() as usize];
    analyser.get_float_frequency_data(&mut bins);
    let (bin, db) = bins
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    (bin as f32 * sample_rate / analyser.fft_size() as f32, db)
}

/// The loudest of `n` looks at `analyser`, 100 ms apart.
async fn loudest(analyser: &AnalyserNode, sample_rate: f32, n: usize) -> (f32, f32) {
    let mut best = (0.0, f32::NEG_INFINITY);
    for _ in 0..n {
        sleep_ms(100).await;
        let seen = spectrum_peak(analyser, sample_rate);
        if seen.1 > best.1 {
            best = seen;
        }
    }
    best
}

#[wasm_bindgen_test]
async fn a_native_tone_plays_in_the_page_and_its_mute_silences_it() {
    allow_loopback_candidates().await;
    let (page, voice) = voice_member(
        option_env!("FAST_RTC_WEB_TEST_TOKEN_VOICE_N2B"),
        "voice-n2b",
    );
    let native = opened(&page).await.user_id;
    next(&page, 10, |ev| match ev {
        SwarmEvent::TrackAdded { peer, track } if peer == native && track == voice => Some(()),
        _ => None,
    })
    .await;
    let mut stream: Option<MediaStream> = None;
    for _ in 0..100 {
        stream = page.remote_audio_stream(&native, voice);
        if stream.is_some() {
            break;
        }
        sleep_ms(50).await;
    }
    let stream = stream.expect("the native member's track reached the page");
    page.set_peer_volume(&native, 0.5).unwrap();

    let ctx = AudioContext::new().unwrap();
    let _ = wasm_bindgen_futures::JsFuture::from(ctx.resume().unwrap()).await;
    let rate = ctx.sample_rate();
    let source = ctx.create_media_stream_source(&stream).unwrap();
    let analyser = ctx.create_analyser().unwrap();
    analyser.set_fft_size(8192);
    analyser.set_smoothing_time_constant(0.0);
    source.connect_with_audio_node(&analyser).unwrap();
    let bin = rate / 8192.0;

    sleep_ms(500).await; // the jitter buffer fills
    let (hz, db) = loudest(&analyser, rate, 10).await;
    web_sys::console::log_1(
        &format!("native -> page: peak {hz} Hz at {db:.1} dBFS (bins of {bin:.2} Hz)").into(),
    );
    assert!(
        (hz - 660.0).abs() <= 1.5 * bin,
        "peak at {hz} Hz, not 660 Hz"
    );
    assert!(db > -60.0, "the tone is too quiet: {db} dBFS");
    let live_db = db;

    // The announcement goes on `fast` before the reply to the command.
    page.send(&native, ChannelId::FAST, "mute").unwrap();
    next(&page, 10, |ev| match ev {
        SwarmEvent::TrackMuted {
            peer, muted: true, ..
        } if peer == native => Some(()),
        _ => None,
    })
    .await;
    reply(&page, &native, "muted").await;
    sleep_ms(500).await; // concealment of the last packets fades out
    let (_, muted_db) = loudest(&analyser, rate, 5).await;
    web_sys::console::log_1(
        &format!("native -> page muted: loudest bin {muted_db:.1} dBFS").into(),
    );
    assert!(
        muted_db < live_db - 30.0,
        "muted, yet the level is {muted_db} dBFS (live: {live_db})"
    );

    page.send(&native, ChannelId::FAST, "unmute").unwrap();
    reply(&page, &native, "unmuted").await;
    sleep_ms(500).await;
    let (hz, db) = loudest(&analyser, rate, 10).await;
    web_sys::console::log_1(
        &format!("native -> page unmuted: peak {hz} Hz at {db:.1} dBFS").into(),
    );
    assert!(
        (hz - 660.0).abs() <= 1.5 * bin && db > -60.0,
        "after unmute: {hz} Hz at {db} dBFS"
    );
    page.close();
    let _ = ctx.close();
}
