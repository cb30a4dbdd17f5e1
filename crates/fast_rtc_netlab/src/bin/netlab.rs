//! `netlab`: a lab by hand, and the cleanup of a run that was killed.
//!
//! ```sh
//! # A server, a site behind a cone NAT and one behind a symmetric NAT, 40 ms each way, 1 %
//! # loss: prints each site's
//! # namespace and addresses, then keeps the WAN running until Enter, end of input or Ctrl-C.
//! sudo netlab up --site server=none --site a=cone --site b=symmetric --delay-ms 40 --loss 0.01
//! sudo ip netns exec <a's namespace> ping 10.77.0.1
//! # Delete the namespaces that labs with PREFIX made (what a killed run left).
//! sudo netlab clean PREFIX
//! ```

use clap::{Parser, Subcommand};
use fast_rtc_netlab::{Lab, LinkSpec, Nat};
use nix::sys::signal::{SigSet, Signal};
use std::time::Duration;

#[derive(Parser)]
#[command(about = "A network lab: sites in namespaces, a user-space WAN, NATs from nftables")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Builds a lab and keeps it up until Enter, end of input, SIGINT or SIGTERM.
    Up {
        /// A site, `NAME=none|cone|symmetric`; repeatable.
        #[arg(long = "site", required = true)]
        sites: Vec<String>,
        /// One-way delay of every link, in milliseconds.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Jitter of every link (± milliseconds).
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
        /// Loss probability of every link, each way (0.03 for 3 %).
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Seed of the loss and jitter draws.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Prefix of the namespaces' names (default: `nl` and this process's id).
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Deletes the namespaces that labs with PREFIX made (`PREFIX` `x` a number `-` …), and
    /// what runs in them.
    Clean {
        /// The labs' prefix.
        prefix: String,
    },
}

fn nat_of(kind: &str) -> Option<Nat> {
    match kind {
        "none" => Some(Nat::None),
        "cone" => Some(Nat::Cone),
        "symmetric" => Some(Nat::Symmetric),
        _ => None,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber_init();
    match Args::parse().command {
        Cmd::Clean { prefix } => {
            for name in fast_rtc_netlab::clean(&prefix)? {
                println!("deleted {name}");
            }
        }
        Cmd::Up {
            sites,
            delay_ms,
            jitter_ms,
            loss,
            seed,
            prefix,
        } => {
            let spec = LinkSpec::delay(Duration::from_millis(delay_ms))
                .with_jitter(Duration::from_millis(jitter_ms))
                .with_loss(loss);
            let mut builder = Lab::builder().seed(seed).default_link(spec);
            if let Some(prefix) = prefix {
                builder = builder.prefix(prefix);
            }
            for site in &sites {
                let (name, kind) = site.split_once('=').unwrap_or((site, "none"));
                let nat = nat_of(kind).ok_or_else(|| {
                    format!("--site {site}: NAT kind {kind:?} is none, cone or symmetric")
                })?;
                builder = builder.site(name, nat);
            }
            let signals = hold_signals()?;
            let lab = builder.build()?;
            for s in lab.sites() {
                println!(
                    "{} ({:?}): namespace {}, address {}, on the WAN {}",
                    s.name(),
                    s.nat(),
                    s.namespace(),
                    s.addr(),
                    s.public_addr()
                );
            }
            println!("up: Enter or Ctrl-C takes it down");
            wait_for_the_end(signals);
            drop(lab);
            println!("down");
        }
    }
    Ok(())
}

/// Logs go to stderr (`RUST_LOG`, default `info`).
fn tracing_subscriber_init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Blocks SIGINT and SIGTERM in this thread (and the threads it starts after, the WAN's), so
/// they wait for [`wait_for_the_end`] instead of killing the process before its teardown.
fn hold_signals() -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()?;
    Ok(set)
}

/// Returns at a line or the end of stdin, or at SIGINT or SIGTERM (held by `signals`).
fn wait_for_the_end(signals: SigSet) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(2);
    let on_signal = tx.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = tx.try_send(());
    });
    std::thread::spawn(move || {
        let _ = signals.wait();
        let _ = on_signal.try_send(());
    });
    let _ = rx.recv();
}
