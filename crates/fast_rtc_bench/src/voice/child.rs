//! The CPU rows' child process: N members in one process, each sending one voice track to all
//! the others (or, for the baseline, the same mesh without audio), and the process's CPU time
//! over a window of S seconds (after half a second of unmeasured sending).

use crate::join::members::{our_member, our_opens};
use crate::util::runtime;
use fast_rtc_swarm::media::{FRAME_DURATION, FRAME_SAMPLES, tone};
use fast_rtc_swarm::{AudioSender, NativeConfig, SwarmConfig, SwarmEvent, SwarmHandle};
use serde::{Deserialize, Serialize};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The hidden `voice-child` subcommand's arguments, as [`run`] passes them.
#[derive(clap::Args, Clone, Debug)]
pub struct ChildArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    members: usize,
    #[arg(long)]
    seconds: u64,
    /// Declare a track and send on it (otherwise: the baseline, no audio at all).
    #[arg(long)]
    audio: bool,
}

/// Unmeasured sending before the window (and the same wait in the baseline).
const WARM_UP: Duration = Duration::from_millis(500);

/// What the child reports.
#[derive(Serialize, Deserialize, Clone, Default, Debug)]
pub struct CpuResult {
    pub ok: bool,
    pub detail: String,
    /// Process CPU time (all threads, user + system) over the window, per wall second, in %
    /// of one core.
    pub cpu_percent: f64,
    /// Frames handed to links (sum over senders of `AudioSender::send`'s link count).
    pub frames_sent: usize,
    /// Decoded frames received by all members.
    pub frames_received: usize,
}

/// Runs one CPU window in a child process (its own CPU figures); the server stays here.
pub fn run(url: &str, members: usize, seconds: u64, audio: bool) -> CpuResult {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["voice-child", "--url", url])
        .args(["--members", &members.to_string()])
        .args(["--seconds", &seconds.to_string()]);
    if audio {
        cmd.arg("--audio");
    }
    let out = cmd.output().unwrap();
    crate::util::child_result(&out).unwrap_or_else(|detail| CpuResult {
        detail,
        ..CpuResult::default()
    })
}

/// Child process: forms the mesh, measures, prints the [`CpuResult`] as one JSON line.
pub fn main(args: ChildArgs) {
    let result = runtime().block_on(measure(&args));
    println!("{}", serde_json::to_string(&result).unwrap());
    // Members' tasks may still be closing; the figures are out.
    std::process::exit(0);
}

async fn measure(args: &ChildArgs) -> CpuResult {
    let n = args.members;
    let room = format!("v{}", std::process::id());
    let mut config = SwarmConfig::new(room.as_str());
    let track = args.audio.then(|| config.add_audio_track("voice"));
    let members: Vec<SwarmHandle> = (0..n)
        .map(|i| {
            our_member(
                &args.url,
                &format!("m{i}"),
                &room,
                config.clone(),
                NativeConfig::loopback(),
            )
        })
        .collect();
    let t0 = Instant::now();
    for (i, m) in members.iter().enumerate() {
        if our_opens(m, n - 1, t0).await.is_none() {
            return CpuResult {
                detail: format!("member {i} did not open all {} links", n - 1),
                ..CpuResult::default()
            };
        }
    }
    let mut senders = Vec::new();
    if let Some(track) = track {
        for m in &members {
            senders.push(AudioSender::new(m, track).unwrap());
        }
    }
    // One second of a tone per member, made before the window: the window measures the
    // swarm, not the synthesizer.
    let frames: Vec<Vec<Vec<i16>>> = (0..n)
        .map(|i| {
            (0..50)
                .map(|f| {
                    tone(
                        300.0 + 50.0 * i as f32,
                        0.5,
                        f * FRAME_SAMPLES,
                        FRAME_SAMPLES,
                    )
                })
                .collect()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The receivers drain from now on, and count from the window's start. The senders first
    // send WARM_UP frames unmeasured: a track's first frames can overtake its announcement on
    // `fast`, and the swarm drops audio of a track it does not know to be live yet.
    let window = Duration::from_secs(args.seconds);
    let received = Arc::new(AtomicUsize::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let end = tokio::time::Instant::now() + WARM_UP + window + Duration::from_millis(100);
    let receivers: Vec<_> = members
        .iter()
        .map(|m| {
            let (m, received, counting) = (m.clone(), received.clone(), counting.clone());
            tokio::spawn(async move {
                while let Ok(Some(ev)) = tokio::time::timeout_at(end, m.recv()).await {
                    if matches!(ev, SwarmEvent::Audio { .. }) && counting.load(Ordering::Relaxed) {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let mut tick = tokio::time::interval(FRAME_DURATION);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let warm_up = (WARM_UP.as_millis() / FRAME_DURATION.as_millis()) as usize;
    let ticks = (window.as_millis() / FRAME_DURATION.as_millis()) as usize;
    let mut cpu0 = cpu_time::ProcessTime::now();
    let mut wall0 = Instant::now();
    let mut sent = 0;
    for f in 0..warm_up + ticks {
        tick.tick().await;
        // A tick after the last warm-up frame: it has arrived, uncounted.
        if f == warm_up {
            counting.store(true, Ordering::Relaxed);
            cpu0 = cpu_time::ProcessTime::now();
            wall0 = Instant::now();
        }
        for (sender, frames) in senders.iter_mut().zip(&frames) {
            let links = sender.send(&frames[f % frames.len()]).unwrap_or(0);
            if f >= warm_up {
                sent += links;
            }
        }
    }
    let cpu = cpu0.elapsed().as_secs_f64() / wall0.elapsed().as_secs_f64();
    for r in receivers {
        let _ = r.await;
    }
    for m in &members {
        m.close();
    }
    let got = received.load(Ordering::Relaxed);
    CpuResult {
        ok: senders.is_empty() || got > 0,
        detail: format!("{got} of {sent} frames received"),
        cpu_percent: cpu * 100.0,
        frames_sent: sent,
        frames_received: got,
    }
}
