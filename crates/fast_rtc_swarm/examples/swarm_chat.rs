//! Terminal chat over a fast-rtc swarm: every line you type goes to every member of the room,
//! peer to peer.
//!
//! ```sh
//! export FAST_RTC_SECRET=$(head -c 32 /dev/urandom | base64)
//! cargo run --release -p fast_rtc_server -- serve &
//! cargo run -p fast_rtc_swarm --example swarm_chat -- --name alice   # in one terminal
//! cargo run -p fast_rtc_swarm --example swarm_chat -- --name bob     # in another
//! ```
//!
//! With `FAST_RTC_SECRET` set, the example mints its own token for `--name` (a local demo
//! convenience); otherwise pass `--token` (from `fast-rtc-server token --sub NAME --room ROOM`).

use clap::Parser;
use fast_rtc_server::{Secret, TokenIssuer};
use fast_rtc_swarm::{ChannelId, NativeConfig, Payload, Signaling, SwarmConfig, SwarmEvent, start};
use std::io::BufRead;
use std::time::{Duration, SystemTime};

#[derive(Parser)]
struct Args {
    /// Signaling server WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8787/ws")]
    url: String,
    /// Room to join.
    #[arg(long, default_value = "chat")]
    room: String,
    /// Your name (the token's subject when the example mints the token).
    #[arg(long)]
    name: Option<String>,
    /// A token from `fast-rtc-server token` (else minted from FAST_RTC_SECRET and --name).
    #[arg(long)]
    token: Option<String>,
    /// Bind only 127.0.0.1 (all members on this machine).
    #[arg(long)]
    loopback: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let token = match (args.token, args.name) {
        (Some(token), _) => token,
        (None, Some(name)) => {
            let secret = Secret::new(
                std::env::var("FAST_RTC_SECRET")
                    .map_err(|_| "set FAST_RTC_SECRET or pass --token")?,
            )?;
            #[allow(clippy::disallowed_methods)]
            let now = SystemTime::now();
            TokenIssuer::new(&secret).issue(&name, &args.room, Duration::from_secs(3600), now)?
        }
        (None, None) => return Err("pass --name (with FAST_RTC_SECRET set) or --token".into()),
    };
    let native = if args.loopback {
        NativeConfig::loopback()
    } else {
        NativeConfig::default()
    };
    let signaling = Signaling::WebSocket {
        url: args.url,
        token,
    };
    let (swarm, driver) = start(SwarmConfig::new(args.room.as_str()), native, signaling)?;
    std::thread::spawn(move || futures_lite::future::block_on(driver));

    let input = swarm.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line == "/quit" {
                break;
            }
            match input.broadcast(ChannelId::FAST, line) {
                Ok(fanout) if fanout.sent.is_empty() => println!("(nobody here yet)"),
                Ok(_) => {}
                Err(e) => println!("(not sent: {e})"),
            }
        }
        input.close();
    });

    println!("joining room {:?}; type to chat, /quit to leave", args.room);
    while let Some(event) = futures_lite::future::block_on(swarm.recv()) {
        match event {
            SwarmEvent::Open(peer) => println!("* {} joined", peer.user_id),
            SwarmEvent::Close { peer, reason } => println!("* {} left ({reason:?})", peer.user_id),
            SwarmEvent::Data {
                from,
                payload: Payload::Text(text),
                ..
            } => println!("<{from}> {text}"),
            SwarmEvent::Data {
                from,
                payload: Payload::Binary(b),
                ..
            } => println!("<{from}> ({} bytes)", b.len()),
            SwarmEvent::Fault(e) => println!("! {e}"),
            _ => {}
        }
    }
    Ok(())
}
