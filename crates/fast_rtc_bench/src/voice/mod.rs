//! `voice` (feature `voice`): the voice rows of issue 13, bevy_fast_rtc only — matchbox 0.15
//! has no audio tracks, so there is nothing of it to run beside them.
//!
//! Everything runs on 127.0.0.1 (`NativeConfig::loopback()`, no network namespace, no root),
//! with our server in this process.
//!
//! # What is measured
//! - *mouth-to-ear*: one member sends [`FRAMES`] frames at 20 ms pacing on one track to another
//!   (after [`WARM_UP`] unmeasured ones). A frame's time runs from the moment it is handed to
//!   `AudioSender::send` (before the Opus encode) until the receiver's application gets it
//!   decoded as `SwarmEvent::Audio` from `SwarmHandle::recv` (awaited, not polled): encode,
//!   the swarm's queue, the native backend's RTP packetizing, SRTP, UDP on 127.0.0.1, SRTP,
//!   Opus decode and the event queue. Both ends are in this process, one clock. Each decoded
//!   frame is matched to the frame it came from by the marker it carries ([`marker`]: a
//!   two-tone code per frame index, checked through a local Opus codec first), not by
//!   counting, so a lost or dropped frame cannot shift the others. NOT included: audio capture
//!   and playback buffers (a sound card's period, typically 5–20 ms each way), and any jitter
//!   buffer: the native receiver has none (it decodes each packet as it arrives), while a real
//!   player adds a playout buffer of a few frames on a real network.
//! - *CPU per stream*: N members in a child process, each sending one track to all others for
//!   S seconds, N·(N−1) streams (one sender's track as heard by one receiver), against the
//!   same mesh without audio (no track declared, same receiving tasks). Process CPU time (all
//!   threads, user + system: `CLOCK_PROCESS_CPUTIME_ID`) per second of wall time. The
//!   difference divided by the streams is the CPU per stream; it includes each sender's one
//!   encode per frame (shared by its N−1 streams), the SRTP and UDP work per link and one
//!   decode per stream.
//! - *join*: the `join` bench's join (a joiner's time from opening its signaling socket until
//!   every member is open, members joined one by one beforehand) with every member declaring
//!   one audio track, beside the same join with none, runs alternating. The parked offers
//!   carry the `m=audio` section, so the join stays one round trip; the rows show what the
//!   extra transceiver costs.

mod child;
mod marker;

pub use child::{ChildArgs, main as child_main};

use crate::join::{Servers, join_ours};
use crate::util::{machine, median};
use fast_rtc_swarm::media::FRAME_DURATION;
use fast_rtc_swarm::{AudioSender, NativeConfig, SwarmConfig, SwarmEvent, SwarmHandle};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Frames measured per mouth-to-ear run.
const FRAMES: usize = 1000;
/// Frames sent before the measured ones (the decoder's ramp-up, the first packets' setup).
const WARM_UP: usize = 50;

/// The `voice` subcommand's arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct VoiceArgs {
    /// Mouth-to-ear runs (each 50 + 1000 frames, 21 s); medians of their p50 and p99 are printed.
    #[arg(long, default_value_t = 3)]
    latency_runs: usize,
    /// Member counts of the CPU rows (each member sends one track to all others).
    #[arg(long, value_delimiter = ',', default_value = "2,4")]
    cpu_members: Vec<usize>,
    /// Seconds of each CPU window.
    #[arg(long, default_value_t = 10)]
    cpu_seconds: u64,
    /// CPU windows per row and kind (with voice, baseline), alternating; medians are printed.
    #[arg(long, default_value_t = 3)]
    cpu_runs: usize,
    /// Members present before the joiner, for the join rows.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    join_members: Vec<usize>,
    /// Runs per join row and kind (one track, none), alternating; medians are printed.
    #[arg(long, default_value_t = 15)]
    join_runs: usize,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/fast_rtc_bench_voice.json")]
    json: PathBuf,
}

/// One mouth-to-ear run.
#[derive(Serialize, Clone, Debug)]
struct LatencyRun {
    /// Measured frames sent (sends that reached the receiver's link).
    sent: usize,
    /// Decoded frames received whose marker named a measured frame.
    matched: usize,
    /// Decoded frames whose marker was not clear (counted, never guessed).
    unidentified: usize,
    /// Matched frames whose index was not above the previous one's (would mean a mis-match).
    out_of_order: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Time spent inside `AudioSender::send` (the encode and the hand-off), p50.
    send_call_p50_ms: f64,
}

#[derive(Serialize, Clone, Debug)]
struct CpuRow {
    members: usize,
    streams: usize,
    seconds: u64,
    baseline_percent: Option<f64>,
    voice_percent: Option<f64>,
    per_stream_percent: Option<f64>,
    delivered: Option<f64>,
    failed: usize,
}

#[derive(Serialize, Clone, Debug)]
struct JoinRow {
    members: usize,
    none_p50_ms: Option<f64>,
    track_p50_ms: Option<f64>,
    none_failed: usize,
    track_failed: usize,
}

#[derive(Serialize)]
struct Report {
    machine: String,
    marker_check: String,
    latency: Vec<LatencyRun>,
    latency_p50_ms: Option<f64>,
    latency_p99_ms: Option<f64>,
    cpu: Vec<CpuRow>,
    /// Extra CPU (% of one core) per sending track and per stream, fitted over the CPU rows.
    cpu_fit_per_track_and_stream: Option<(f64, f64)>,
    join: Vec<JoinRow>,
}

/// The `voice` subcommand.
pub async fn bench(args: VoiceArgs) {
    let machine = machine();
    println!(
        "fast_rtc_bench voice: bevy_fast_rtc only (matchbox 0.15 has no voice: no row to compare); \
         on 127.0.0.1; {machine}; release build"
    );
    let check = marker::check(4 * marker::CODES).unwrap();
    let marker_check = format!(
        "{}/{} markers right through a local Opus encoder/decoder (lookahead {} samples), smallest margin {:.0}x",
        check.right, check.frames, check.lookahead, check.min_margin
    );
    println!("frame markers: {marker_check}");
    assert_eq!(
        check.right, check.frames,
        "the frame markers do not survive Opus: the latency rows would be wrong"
    );
    let servers = Servers::ours_only().await;

    println!();
    println!(
        "| mouth-to-ear on 127.0.0.1, {FRAMES} frames at 20 ms | p50 (ms) | p99 (ms) | max (ms) | matched / sent | unidentified | send() p50 (ms) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut latency = Vec::new();
    for run in 0..args.latency_runs {
        let r = mouth_to_ear(&servers, &format!("lat{run}")).await;
        println!(
            "| run {} | {:.2} | {:.2} | {:.2} | {} / {} | {} | {:.3} |{}",
            run + 1,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.matched,
            r.sent,
            r.unidentified,
            r.send_call_p50_ms,
            if r.out_of_order > 0 {
                format!(" WARNING: {} matched out of order", r.out_of_order)
            } else {
                String::new()
            }
        );
        latency.push(r);
    }
    let ok: Vec<&LatencyRun> = latency.iter().filter(|r| r.matched > 0).collect();
    let latency_p50 = (!ok.is_empty()).then(|| median(ok.iter().map(|r| r.p50_ms).collect()));
    let latency_p99 = (!ok.is_empty()).then(|| median(ok.iter().map(|r| r.p99_ms).collect()));
    println!(
        "| median of {} runs | {} | {} | | | | |",
        ok.len(),
        fmt(latency_p50, 2),
        fmt(latency_p99, 2)
    );
    println!(
        "(handed to AudioSender::send -> SwarmEvent::Audio at the receiver: encode, RTP over \
         WebRTC, decode; no capture or playback buffer, no jitter buffer)"
    );

    println!();
    println!(
        "| each member sends one track to all, {} s | streams | CPU, no audio (% of one core) | CPU, voice | extra per stream (% of one core) | delivered |",
        args.cpu_seconds
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut cpu = Vec::new();
    for &n in &args.cpu_members {
        let row = cpu_row(&servers, n, args.cpu_seconds, args.cpu_runs);
        println!(
            "| N={n} | {} | {} | {} | {} | {} |{}",
            row.streams,
            fmt(row.baseline_percent, 1),
            fmt(row.voice_percent, 1),
            fmt(row.per_stream_percent, 2),
            row.delivered
                .map_or("-".into(), |d| format!("{:.1} %", d * 100.0)),
            if row.failed > 0 {
                format!(" ({} windows failed)", row.failed)
            } else {
                String::new()
            }
        );
        cpu.push(row);
    }
    let fit = fit_cpu(&cpu);
    if let Some((track, stream)) = fit {
        println!(
            "fitted over these rows, extra CPU = {track:.2} % per sending track (its encode, once \
             for all its links) + {stream:.3} % per stream (send, SRTP, UDP, decode), of one core"
        );
    }

    println!();
    println!(
        "| joiner -> open with all, 127.0.0.1 | no track p50 (ms) | one audio track p50 (ms) | track/none |"
    );
    println!("|---|---:|---:|---:|");
    let mut join = Vec::new();
    let mut room = 0usize;
    for &n in &args.join_members {
        let (mut none, mut track) = (Vec::new(), Vec::new());
        let (mut none_failed, mut track_failed) = (0, 0);
        for _ in 0..args.join_runs {
            for with_track in [false, true] {
                room += 1;
                let config: fn(&str) -> SwarmConfig = if with_track {
                    with_voice
                } else {
                    |room| SwarmConfig::new(room)
                };
                let room = format!("vj{room}");
                let t = join_ours(&servers, n, Duration::ZERO, &room, false, config).await;
                match (t, with_track) {
                    (Some(t), false) => none.push(t.as_secs_f64() * 1e3),
                    (Some(t), true) => track.push(t.as_secs_f64() * 1e3),
                    (None, false) => none_failed += 1,
                    (None, true) => track_failed += 1,
                }
            }
        }
        let row = JoinRow {
            members: n,
            none_p50_ms: (!none.is_empty()).then(|| median(none)),
            track_p50_ms: (!track.is_empty()).then(|| median(track)),
            none_failed,
            track_failed,
        };
        println!(
            "| N={n}, medians of {} | {}{} | {}{} | {} |",
            args.join_runs,
            fmt(row.none_p50_ms, 1),
            failed(row.none_failed),
            fmt(row.track_p50_ms, 1),
            failed(row.track_failed),
            match (row.track_p50_ms, row.none_p50_ms) {
                (Some(t), Some(n)) if n > 0.0 => format!("{:.2}x", t / n),
                _ => "-".into(),
            }
        );
        join.push(row);
    }

    let report = Report {
        machine,
        marker_check,
        latency,
        latency_p50_ms: latency_p50,
        latency_p99_ms: latency_p99,
        cpu,
        cpu_fit_per_track_and_stream: fit,
        join,
    };
    crate::util::write_report(&args.json, &report);
    servers.ours.shutdown().await.unwrap();
}

/// A room's configuration with one declared audio track.
fn with_voice(room: &str) -> SwarmConfig {
    let mut config = SwarmConfig::new(room);
    config.add_audio_track("voice");
    config
}

fn fmt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

fn failed(n: usize) -> String {
    if n > 0 {
        format!(" ({n} failed)")
    } else {
        String::new()
    }
}

/// The `p` quantile of sorted `v` (nearest rank).
fn quantile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

/// One mouth-to-ear run between two fresh members of `room`.
async fn mouth_to_ear(servers: &Servers, room: &str) -> LatencyRun {
    let member = |user: &str| {
        crate::join::members::our_member(
            &servers.ours_url,
            user,
            room,
            with_voice(room),
            NativeConfig::loopback(),
        )
    };
    let (a, b) = (member("talker"), member("listener"));
    let t0 = Instant::now();
    for h in [&a, &b] {
        crate::join::members::our_opens(h, 1, t0)
            .await
            .expect("the two members did not connect");
    }
    let track = fast_rtc_swarm::TrackId(0);
    let mut sender = AudioSender::new(&a, track).unwrap();

    // The listener awaits its events and stamps each decoded frame as it gets it.
    let total = WARM_UP + FRAMES;
    let listen_until =
        tokio::time::Instant::now() + FRAME_DURATION * total as u32 + Duration::from_secs(2);
    let listener = {
        let b: SwarmHandle = b.clone();
        tokio::spawn(async move {
            let mut heard: Vec<(Instant, Vec<i16>)> = Vec::with_capacity(total);
            while heard.len() < total {
                match tokio::time::timeout_at(listen_until, b.recv()).await {
                    Ok(Some(SwarmEvent::Audio { samples, .. })) => {
                        heard.push((Instant::now(), samples));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            heard
        })
    };

    // Frame k's stamp is taken right before it is handed over (and encoded).
    let mut sent_at: Vec<Option<Instant>> = Vec::with_capacity(total);
    let mut send_call = Vec::with_capacity(total);
    let mut tick = tokio::time::interval(FRAME_DURATION);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for k in 0..total {
        let frame = marker::frame(k);
        tick.tick().await;
        let t = Instant::now();
        let links = sender.send(&frame).unwrap();
        send_call.push(t.elapsed().as_secs_f64() * 1e3);
        sent_at.push((links > 0).then_some(t));
    }
    let heard = listener.await.unwrap();
    a.close();
    b.close();

    // Each decoded frame: its code, then the latest frame with that code sent before it
    // arrived.
    let mut latencies = Vec::new();
    let (mut unidentified, mut out_of_order) = (0, 0);
    let mut last: Option<usize> = None;
    for (at, samples) in &heard {
        let Some((code, _)) = marker::identify(samples) else {
            unidentified += 1;
            continue;
        };
        let k = (0..total)
            .rev()
            .find(|&k| k % marker::CODES == code && sent_at[k].is_some_and(|s| s <= *at));
        let Some(k) = k else {
            unidentified += 1;
            continue;
        };
        if last.is_some_and(|l| k <= l) {
            out_of_order += 1;
            continue;
        }
        last = Some(k);
        if k >= WARM_UP
            && let Some(s) = sent_at[k]
        {
            latencies.push(at.duration_since(s).as_secs_f64() * 1e3);
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    send_call.sort_by(|a, b| a.total_cmp(b));
    LatencyRun {
        sent: sent_at[WARM_UP..].iter().filter(|s| s.is_some()).count(),
        matched: latencies.len(),
        unidentified,
        out_of_order,
        p50_ms: quantile(&latencies, 0.5),
        p99_ms: quantile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        send_call_p50_ms: quantile(&send_call[WARM_UP..], 0.5),
    }
}

/// Least squares of `extra = N·track + N·(N−1)·stream` over the rows (N senders, each
/// encoding once; N·(N−1) streams); `None` with fewer than two member counts.
fn fit_cpu(rows: &[CpuRow]) -> Option<(f64, f64)> {
    let points: Vec<(f64, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            let n = r.members as f64;
            Some((n, n * (n - 1.0), r.voice_percent? - r.baseline_percent?))
        })
        .collect();
    let sum = |f: &dyn Fn(&(f64, f64, f64)) -> f64| points.iter().map(f).sum::<f64>();
    let (aa, ab, bb) = (
        sum(&|p| p.0 * p.0),
        sum(&|p| p.0 * p.1),
        sum(&|p| p.1 * p.1),
    );
    let (ay, by) = (sum(&|p| p.0 * p.2), sum(&|p| p.1 * p.2));
    let det = aa * bb - ab * ab;
    (points.len() >= 2 && det.abs() > 1e-9)
        .then(|| ((ay * bb - by * ab) / det, (aa * by - ab * ay) / det))
}

/// One CPU row: `runs` windows with voice and `runs` without, alternating, in child processes.
fn cpu_row(servers: &Servers, n: usize, seconds: u64, runs: usize) -> CpuRow {
    let (mut base, mut voice, mut delivered) = (Vec::new(), Vec::new(), Vec::new());
    let mut failed = 0;
    for _ in 0..runs {
        for audio in [false, true] {
            let r = child::run(&servers.ours_url, n, seconds, audio);
            if !r.ok {
                eprintln!("CPU window (N={n}, audio {audio}) failed: {}", r.detail);
                failed += 1;
                continue;
            }
            if audio {
                voice.push(r.cpu_percent);
                delivered.push(r.frames_received as f64 / r.frames_sent.max(1) as f64);
            } else {
                base.push(r.cpu_percent);
            }
        }
    }
    let streams = n * (n - 1);
    let baseline = (!base.is_empty()).then(|| median(base));
    let with_voice = (!voice.is_empty()).then(|| median(voice));
    CpuRow {
        members: n,
        streams,
        seconds,
        baseline_percent: baseline,
        voice_percent: with_voice,
        per_stream_percent: baseline
            .zip(with_voice)
            .map(|(b, v)| (v - b) / streams as f64),
        delivered: (!delivered.is_empty()).then(|| median(delivered)),
        failed,
    }
}
