//! A native member that echoes: every message it receives goes back to its sender on the same
//! channel, prefixed with `echo:`. On each peer's open it also says `hello from native` on
//! `fast`. The browser tests (`scripts/browser-test.sh`) run it beside a page; it is also a
//! quick partner for trying any client by hand.
//!
//! ```sh
//! cargo run -p fast_rtc_swarm --example echo_peer -- --url ws://127.0.0.1:8787/ws --token TOKEN --room ROOM
//! ```
//!
//! Its channels: `fast` and the unreliable `state` (channel 1), as the browser test's swarm.

use clap::Parser;
use fast_rtc_swarm::{
    ChannelConfig, ChannelId, NativeConfig, Payload, Signaling, SwarmConfig, SwarmEvent, start,
};

#[derive(Parser)]
struct Args {
    /// Signaling server WebSocket URL.
    #[arg(long)]
    url: String,
    /// This member's token (`fast-rtc-server token --sub NAME --room ROOM`).
    #[arg(long)]
    token: String,
    /// Room to join.
    #[arg(long)]
    room: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let mut config = SwarmConfig::new(args.room);
    config.add_channel(ChannelConfig::unreliable("state"));
    let signaling = Signaling::WebSocket {
        url: args.url,
        token: args.token,
    };
    let (swarm, driver) = start(config, NativeConfig::loopback(), signaling)?;
    std::thread::spawn(move || futures_lite::future::block_on(driver));
    println!("echo_peer: joined");
    futures_lite::future::block_on(async {
        while let Some(event) = swarm.recv().await {
            match event {
                SwarmEvent::Open(peer) => {
                    println!("echo_peer: open {}", peer.user_id);
                    let _ = swarm.send(&peer.user_id, ChannelId::FAST, "hello from native");
                }
                SwarmEvent::Data {
                    from,
                    channel,
                    payload,
                    ..
                } => {
                    let echo = match payload {
                        Payload::Text(t) => Payload::Text(format!("echo:{t}")),
                        Payload::Binary(mut b) => {
                            b.splice(0..0, b"echo:".iter().copied());
                            Payload::Binary(b)
                        }
                    };
                    if let Err(e) = swarm.send(&from, channel, echo) {
                        eprintln!("echo_peer: could not echo to {from}: {e}");
                    }
                }
                SwarmEvent::Close { peer, reason } => {
                    println!("echo_peer: closed {} ({reason:?})", peer.user_id);
                }
                _ => {}
            }
        }
    });
    Ok(())
}
