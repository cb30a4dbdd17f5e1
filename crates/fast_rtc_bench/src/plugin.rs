//! `plugin`: the Bevy plugin's CPU time per frame, with 8 peers connected, idle and each
//! broadcasting a state at 60 Hz.

use crate::util::{issuer, machine, spawn_server};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct BenchState {
    tick: u32,
    body: Vec<u8>,
}

/// Whether an app broadcasts a state every frame.
#[derive(bevy::prelude::Resource)]
struct Sending(bool);

fn state_app(url: &str, token: String) -> bevy::app::App {
    use bevy::prelude::*;
    use bevy_fast_rtc::prelude::*;
    let mut plugin = FastRtcPlugin::new("plugin-bench")
        .with_signaling(url, token)
        .with_native(NativeConfig::loopback());
    let state = plugin.add_channel(ChannelConfig::unreliable("state"));
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, plugin))
        .add_swarm_message::<BenchState>(state)
        .insert_resource(Sending(false))
        .add_systems(
            Update,
            |sending: Res<Sending>,
             mut tick: Local<u32>,
             mut b: SwarmBroadcast<BenchState>,
             mut r: MessageReader<FromPeer<BenchState>>| {
                r.read().for_each(drop);
                if sending.0 {
                    *tick += 1;
                    b.send(&BenchState {
                        tick: *tick,
                        body: vec![7; 92],
                    });
                }
            },
        );
    app
}

/// Runs every schedule of `app` on the calling thread, so its thread CPU time is the frame's cost.
fn single_threaded(app: &mut bevy::app::App) {
    use bevy::app::{First, Last, Main, PostUpdate, PreUpdate, Update};
    use bevy::ecs::schedule::{InternedScheduleLabel, ScheduleLabel, SingleThreadedExecutor};
    let labels: [InternedScheduleLabel; 6] = [
        Main.intern(),
        First.intern(),
        PreUpdate.intern(),
        Update.intern(),
        PostUpdate.intern(),
        Last.intern(),
    ];
    for label in labels {
        app.edit_schedule(label, |s| {
            s.set_executor(SingleThreadedExecutor::new());
        });
    }
}

/// Runs `frames` updates of `app` at 60 Hz; returns the CPU time of each update on this thread
/// (not wall time: the other apps on these 2 cores would be measured too), mean and p99 in
/// microseconds.
fn frame_times(app: &mut bevy::app::App, frames: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(frames);
    for _ in 0..frames {
        let wall = Instant::now();
        let cpu = cpu_time::ThreadTime::now();
        app.update();
        times.push(cpu.elapsed().as_secs_f64() * 1e6);
        std::thread::sleep(Duration::from_micros(16_667).saturating_sub(wall.elapsed()));
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (
        times.iter().sum::<f64>() / frames as f64,
        times[(frames * 99) / 100],
    )
}

/// The `plugin` subcommand, with its signaling server on `rt`.
pub fn bench(rt: &tokio::runtime::Runtime) {
    use bevy::prelude::*;
    let server = rt.block_on(spawn_server());
    let url = server.ws_url();
    let issuer = issuer();
    let token = |u: &str| crate::util::token(&issuer, u, "*");

    // Baseline: the same app without the plugin.
    let mut bare = App::new();
    bare.add_plugins(MinimalPlugins);
    single_threaded(&mut bare);
    for _ in 0..60 {
        bare.update();
    }
    let (bare_mean, bare_p99) = frame_times(&mut bare, 300);

    // 8 peers, each its own app on its own thread at 60 Hz, broadcasting when told.
    let sending = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..8 {
        let (url, t, sending, stop) = (
            url.clone(),
            token(&format!("peer{i}")),
            sending.clone(),
            stop.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut app = state_app(&url, t);
            while !stop.load(Ordering::Relaxed) {
                app.world_mut().resource_mut::<Sending>().0 = sending.load(Ordering::Relaxed);
                let t0 = Instant::now();
                app.update();
                std::thread::sleep(Duration::from_micros(16_667).saturating_sub(t0.elapsed()));
            }
        }));
    }
    let mut app = state_app(&url, token("measured"));
    single_threaded(&mut app);
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.world().resource::<bevy_fast_rtc::Swarm>().peer_count() < 8
        && Instant::now() < deadline
    {
        app.update();
        std::thread::sleep(Duration::from_millis(5));
    }
    let peers = app.world().resource::<bevy_fast_rtc::Swarm>().peer_count();
    for _ in 0..60 {
        app.update();
    }
    let (idle_mean, idle_p99) = frame_times(&mut app, 600);
    sending.store(true, Ordering::Relaxed);
    app.world_mut().resource_mut::<Sending>().0 = true;
    for _ in 0..60 {
        app.update();
    }
    let (busy_mean, busy_p99) = frame_times(&mut app, 600);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    println!(
        "fast_rtc_bench plugin: CPU time of one app.update() (MinimalPlugins + FastRtcPlugin, schedules single-threaded) at 60 Hz, {peers} peers over webrtc-rs on 127.0.0.1, all in this process"
    );
    println!("machine: {}", machine());
    println!();
    println!(
        "| frame                                                        | mean (us) | p99 (us) |"
    );
    println!(
        "|--------------------------------------------------------------|-----------|----------|"
    );
    println!(
        "| MinimalPlugins alone (baseline)                              | {bare_mean:>9.1} | {bare_p99:>8.1} |"
    );
    println!(
        "| + plugin, 8 peers connected, idle                            | {idle_mean:>9.1} | {idle_p99:>8.1} |"
    );
    println!(
        "| + plugin, 8 peers each sending 100 B at 60 Hz, this app too  | {busy_mean:>9.1} | {busy_p99:>8.1} |"
    );
    drop(app);
    rt.block_on(server.shutdown()).unwrap();
}
