//! Benchmarks of bevy_fast_rtc, printed as tables, side by side with matchbox in the same run.
//!
//! `cargo run --release -p fast_rtc_bench -- server` measures the signaling server: joins per
//! second and join latency over real WebSockets, relayed frames per second, and resident memory
//! per idle member, for our server and for `matchbox_signaling` 0.15 (full mesh). Each server
//! runs in a child process of this binary, so its memory is measured alone.
//!
//! `server --instances 1,3` (`scripts/bench-cluster.sh`) measures cluster mode instead: the same
//! figures for 1 and 3 instances sharing one Redis, clients spread over them round-robin.
//!
//! The two servers do different work per join: ours verifies a JWT, stores the joiner's
//! pre-made offer (SDP + candidates) and hands the joiner one offer from every member; matchbox
//! assigns an id and tells the others. The table says so beside the figures.
//!
//! `cargo run --release -p fast_rtc_bench --features voice -- voice` (`scripts/bench-voice.sh`)
//! measures voice: mouth-to-ear latency on loopback, CPU per voice stream, and the join time with
//! one audio track declared vs none (ours only: matchbox has no voice).
//!
//! `cargo run --release -p fast_rtc_bench -- attack` runs our server, with its default limits,
//! under each attack of the "hardened" issue in turn (slowloris, idle sockets on one token,
//! oversized parked offers, init/close churn, a frame flood) while honest members keep joining,
//! against a quiet run: peak RSS, honest joins and their p50/p99, what each attack got.
//!
//! Each subcommand is a module (`server`, `attack`, `codec`, `plugin`, `join`, `soak`,
//! `voice`); `util` holds what they share.

// A benchmark binary: failing loudly on a broken setup is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod attack;
mod codec;
mod join;
mod plugin;
mod server;
mod soak;
mod util;
#[cfg(feature = "voice")]
mod voice;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Signaling server figures, ours vs matchbox_signaling.
    Server(server::ServerArgs),
    /// Our signaling server, default limits, under each attack in turn while honest members
    /// keep joining (loopback only; see `attack.rs`).
    Attack(attack::AttackArgs),
    /// Codec comparison for typed game messages: bitcode vs postcard.
    Codec,
    /// The Bevy plugin's per-frame cost with 8 peers, idle and broadcasting at 60 Hz.
    Plugin,
    /// Connect times, mesh formation, memory, steady state and bulk throughput, ours vs
    /// matchbox_socket 0.15, in a network namespace of its own (see `join/mod.rs`).
    Join(join::JoinArgs),
    /// Churn soak: one long-lived member, the others joining and leaving at random (close or
    /// SIGKILL); the mesh must be whole and nothing leaked at the end (see `soak/mod.rs`).
    Soak(soak::SoakArgs),
    /// Voice: mouth-to-ear latency on loopback, CPU per voice stream, join time with one audio
    /// track vs none; bevy_fast_rtc only, matchbox has no voice (see `voice/mod.rs`).
    #[cfg(feature = "voice")]
    Voice(voice::VoiceArgs),
    /// One CPU window of `voice` in a child process (used by `voice`).
    #[cfg(feature = "voice")]
    #[command(hide = true)]
    VoiceChild(voice::ChildArgs),
    /// One member of `soak` in a child process (used by `soak`).
    #[command(hide = true)]
    SoakMember(soak::member::MemberArgs),
    /// One scenario of `join` in a child process (used by `join`).
    #[command(hide = true)]
    JoinChild(join::child::ChildArgs),
    /// Runs one server in this process and prints its address (used by `server`).
    #[command(hide = true)]
    ServeChild {
        #[arg(long)]
        kind: util::Lib,
        #[arg(long)]
        room_size: usize,
        /// Run as an instance of a cluster over this Redis.
        #[arg(long)]
        redis: Option<String>,
        /// Our server with its default configuration (the attack bench).
        #[arg(long)]
        defaults: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    // Logs only when asked for (`RUST_LOG=...`): they would skew the figures. The native
    // backend's one `selected candidate pair` event per link end is always recorded (the
    // relay rows of `join` check routes with it).
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = std::env::var_os("RUST_LOG").is_some().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::EnvFilter::from_default_env())
    });
    tracing_subscriber::registry()
        .with(fast_rtc_testkit::routes::RouteLayer::filtered())
        .with(logs)
        .init();
    match cli.command {
        Cmd::Server(args) => util::runtime().block_on(server::bench(args)),
        Cmd::Attack(args) => util::runtime().block_on(attack::bench(args)),
        Cmd::ServeChild {
            kind,
            room_size,
            redis,
            defaults,
        } => {
            util::runtime().block_on(server::serve_child(kind, room_size, redis, defaults));
        }
        Cmd::Codec => codec::bench(),
        Cmd::Plugin => plugin::bench(&util::runtime()),
        Cmd::Join(args) => join::bench(args),
        Cmd::JoinChild(args) => join::child::main(args),
        Cmd::Soak(args) => soak::bench(args),
        Cmd::SoakMember(args) => soak::member::main(args),
        #[cfg(feature = "voice")]
        Cmd::Voice(args) => util::runtime().block_on(voice::bench(args)),
        #[cfg(feature = "voice")]
        Cmd::VoiceChild(args) => voice::child_main(args),
    }
}
