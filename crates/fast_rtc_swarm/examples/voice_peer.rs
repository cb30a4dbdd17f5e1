//! A native voice member for the browser voice tests (`tests/web_voice.rs`, started by
//! `scripts/browser-test.sh`; feature `voice`). It declares one audio track, `voice`, plays a
//! tone on it with `--tone HZ`, and answers a page's commands on `fast` (text, one word):
//!
//! | command | what it does | reply |
//! |---|---|---|
//! | `measure` | listens to the sender's audio for 1 s (after 0.2 s of ramp-up) | `heard <peak Hz> <share of energy at the peak> <frames>`, or `heard-none <frames>` within 5 s |
//! | `quiet` | counts the sender's audio frames for 1 s | `quiet <frames>` |
//! | `mute` / `unmute` | mutes or unmutes its own track | `muted` / `unmuted` |
//! | `rejoin` | leaves the room and joins it again (so the page's pre-made offer makes the next link) | — |
//!
//! and tells the page what it saw of the page's track: `saw-added`, `saw-muted true|false`,
//! `saw-removed`. The tone's frequency is found as the FFT peak of the decoded audio
//! (`tests/support/spectrum.rs`).
//!
//! ```sh
//! cargo run -p fast_rtc_swarm --features voice --example voice_peer -- --url ws://127.0.0.1:8787/ws --token TOKEN --room ROOM --tone 660
//! ```
#![allow(clippy::disallowed_methods)] // a test helper: it reads the clock for its deadlines

#[path = "../tests/support/spectrum.rs"]
mod spectrum;

use clap::Parser;
use fast_rtc_protocol::UserId;
use fast_rtc_swarm::media::{FRAME_DURATION, FRAME_SAMPLES, tone};
use fast_rtc_swarm::{
    AudioSender, ChannelId, NativeConfig, Payload, Signaling, SwarmConfig, SwarmEvent, SwarmHandle,
    TrackError, TrackId, start,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Signaling server WebSocket URL.
    #[arg(long)]
    url: String,
    /// This member's token.
    #[arg(long)]
    token: String,
    /// Room to join.
    #[arg(long)]
    room: String,
    /// Play a tone of this frequency (Hz) on the `voice` track.
    #[arg(long)]
    tone: Option<f32>,
}

/// Frames of ramp-up skipped before a measurement (the decoder's and the jitter buffer's).
const RAMP_FRAMES: usize = 10;
/// Frames a measurement takes: 1 s.
const MEASURE_FRAMES: usize = 50;
/// How long a measurement waits for its frames.
const MEASURE_FOR: Duration = Duration::from_secs(5);

/// What the member is doing for a page.
enum Task {
    /// Collecting `peer`'s audio for a `measure`.
    Measure {
        peer: UserId,
        samples: Vec<i16>,
        frames: usize,
        until: Instant,
    },
    /// Counting `peer`'s frames for a `quiet`.
    Quiet {
        peer: UserId,
        frames: usize,
        until: Instant,
    },
}

/// One session in the room: the swarm, and the thread playing the tone (stopped on drop).
struct Session {
    swarm: SwarmHandle,
    stop: Arc<AtomicBool>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.swarm.close();
    }
}

fn join(args: &Args) -> Result<(Session, TrackId), Box<dyn std::error::Error>> {
    let mut config = SwarmConfig::new(args.room.clone());
    let voice = config.add_audio_track("voice");
    let signaling = Signaling::WebSocket {
        url: args.url.clone(),
        token: args.token.clone(),
    };
    let (swarm, driver) = start(config, NativeConfig::loopback(), signaling)?;
    std::thread::spawn(move || futures_lite::future::block_on(driver));
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(frequency) = args.tone {
        let sender = AudioSender::new(&swarm, voice)?;
        play(sender, frequency, stop.clone());
    }
    Ok((Session { swarm, stop }, voice))
}

/// Plays `frequency` Hz on `sender`'s track every 20 ms until `stop` is set.
fn play(mut sender: AudioSender, frequency: f32, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut offset = 0;
        let mut n: u32 = 0;
        while !stop.load(Ordering::Relaxed) {
            let frame = tone(frequency, 0.5, offset, FRAME_SAMPLES);
            offset += FRAME_SAMPLES;
            match sender.send(&frame) {
                Ok(_) | Err(TrackError::NotAdded(_)) => {}
                Err(e) => eprintln!("voice_peer: send: {e}"),
            }
            n += 1;
            // Paced from the start, so the tone neither drifts nor bunches.
            if let Some(wait) = (start + FRAME_DURATION * n).checked_duration_since(Instant::now())
            {
                std::thread::sleep(wait);
            }
        }
    });
}

fn say(swarm: &SwarmHandle, to: &UserId, text: String) {
    println!("voice_peer: to {to}: {text}");
    if let Err(e) = swarm.send(to, ChannelId::FAST, text) {
        eprintln!("voice_peer: could not send to {to}: {e}");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let (mut session, voice) = join(&args)?;
    let mut task: Option<Task> = None;
    loop {
        let Some(event) = session.swarm.try_recv() else {
            if session.swarm.is_closed() {
                return Ok(());
            }
            // A measurement that ran out of time answers with what it has.
            let now = Instant::now();
            match &task {
                Some(Task::Measure {
                    peer,
                    frames,
                    until,
                    ..
                }) if now >= *until => {
                    say(&session.swarm, peer, format!("heard-none {frames}"));
                    task = None;
                }
                Some(Task::Quiet {
                    peer,
                    frames,
                    until,
                }) if now >= *until => {
                    say(&session.swarm, peer, format!("quiet {frames}"));
                    task = None;
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        match event {
            SwarmEvent::Open(peer) => println!("voice_peer: open {}", peer.user_id),
            SwarmEvent::Close { peer, .. } => println!("voice_peer: closed {}", peer.user_id),
            SwarmEvent::TrackAdded { peer, track } if track == voice => {
                say(&session.swarm, &peer, "saw-added".into());
            }
            SwarmEvent::TrackMuted { peer, track, muted } if track == voice => {
                say(&session.swarm, &peer, format!("saw-muted {muted}"));
            }
            SwarmEvent::TrackRemoved { peer, track } if track == voice => {
                say(&session.swarm, &peer, "saw-removed".into());
            }
            SwarmEvent::Audio {
                from,
                track,
                samples,
            } if track == voice => match &mut task {
                Some(Task::Measure {
                    peer,
                    samples: heard,
                    frames,
                    ..
                }) if *peer == from => {
                    *frames += 1;
                    if *frames > RAMP_FRAMES {
                        heard.extend_from_slice(&samples);
                    }
                    if *frames >= RAMP_FRAMES + MEASURE_FRAMES {
                        let (hz, share) = spectrum::peak(heard);
                        let reply = format!("heard {hz} {share:.3} {frames}");
                        say(&session.swarm, &from, reply);
                        task = None;
                    }
                }
                Some(Task::Quiet { peer, frames, .. }) if *peer == from => *frames += 1,
                _ => {}
            },
            SwarmEvent::Data {
                from,
                payload: Payload::Text(command),
                ..
            } => {
                let now = Instant::now();
                match command.as_str() {
                    "measure" => {
                        task = Some(Task::Measure {
                            peer: from,
                            samples: Vec::with_capacity(MEASURE_FRAMES * FRAME_SAMPLES),
                            frames: 0,
                            until: now + MEASURE_FOR,
                        });
                    }
                    "quiet" => {
                        task = Some(Task::Quiet {
                            peer: from,
                            frames: 0,
                            until: now + Duration::from_secs(1),
                        });
                    }
                    "mute" | "unmute" => {
                        let muted = command == "mute";
                        match session.swarm.mute_track(voice, muted) {
                            Ok(()) => say(&session.swarm, &from, format!("{command}d")),
                            Err(e) => say(&session.swarm, &from, format!("error {e}")),
                        }
                    }
                    "rejoin" => {
                        println!("voice_peer: rejoining");
                        task = None;
                        drop(session);
                        // The server sees the old session leave before the new one joins.
                        std::thread::sleep(Duration::from_millis(500));
                        session = join(&args)?.0;
                    }
                    other => println!("voice_peer: {from} says {other}"),
                }
            }
            _ => {}
        }
    }
}
