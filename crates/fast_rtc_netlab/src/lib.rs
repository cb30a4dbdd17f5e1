//! A network lab for the workspace's tests and benchmarks (Linux, as root; never published):
//! sites in network namespaces of their own, joined by a user-space WAN with per-link one-way
//! delay, loss and jitter, each site optionally behind its own NAT made with nftables.
//!
//! This kernel has no `netem`, so the WAN is ours: one TUN device per site, made inside the
//! site's namespace, whose packets this process reads and writes to the device of the site
//! their IPv4 destination names, after the link's delay and loss draw ([`LinkSpec`]; seeded,
//! so a run's drops are reproducible). Queues are bounded ([`QUEUE_BOUND`]).
//!
//! ```text
//!   host a (192.168.1.2) ─veth─ NAT a (192.168.1.1 | wan0 10.77.0.1) ─┐
//!                                                                      ├─ WAN (this process)
//!   host b (192.168.2.2) ─veth─ NAT b (192.168.2.1 | wan0 10.77.0.2) ─┤
//!   server (wan0 10.77.0.3) ───────────────────────────────────────────┘
//! ```
//!
//! A site without a NAT ([`Nat::None`]) has its WAN address itself (a server, a host with a
//! public address); behind [`Nat::Cone`] or [`Nat::Symmetric`] its host has a private LAN
//! address and a NAT namespace masquerades it onto the WAN. Addresses only ever exist inside
//! the lab's namespaces.
//!
//! A site's address may change while the lab runs, as a player's does mid-game:
//! [`Lab::renumber`] gives it a new public address and kills every mapping of its NAT (TCP
//! too), [`Lab::rebind`] makes its NAT forget only its UDP mappings and send UDP from a new
//! address (connection tracking flushed with `conntrack`).
//!
//! The lab deletes all it made when dropped (also on a panic, or when building fails half-way):
//! it kills what still runs in its namespaces, stops the WAN and deletes the namespaces. A
//! process killed by a signal cannot; [`clean`] (or `netlab clean PREFIX`) deletes what a run
//! left, by the prefix of its namespace names ([`PREFIX_ENV`]).
//!
//! ```no_run
//! use fast_rtc_netlab::{Lab, LinkSpec, Nat};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 40 ms one way between any two sites (80 ms round trips), 3 % loss each way.
//! let wan = LinkSpec::delay(Duration::from_millis(40)).with_loss(0.03);
//! let lab = Lab::builder()
//!     .seed(7)
//!     .default_link(wan)
//!     .site("server", Nat::None)
//!     .site("alice", Nat::Cone)
//!     .site("bob", Nat::Symmetric)
//!     // The server is near Alice: 5 ms each way, no loss.
//!     .link("server", "alice", LinkSpec::delay(Duration::from_millis(5)))
//!     .build()?;
//! let server = lab.site("server")?;
//! let alice = lab.site("alice")?;
//! // A program inside a site: `ip netns exec` in front of it.
//! let status = alice
//!     .command("ping")
//!     .args(["-c", "1", &server.public_addr().to_string()])
//!     .status()?;
//! assert!(status.success());
//! // A socket of the site's own, bound from this process.
//! let socket = alice.enter(|| std::net::UdpSocket::bind((alice.addr(), 0)))??;
//! socket.send_to(b"hi", (server.public_addr(), 9))?;
//! // A thread inside Bob's site for as long as it runs (a member in this process): the
//! // threads it starts, and their sockets, are in the site too.
//! let bob = lab.site("bob")?.addr();
//! let member = lab.site("bob")?.spawn(move || std::net::UdpSocket::bind((bob, 0)).is_ok())?;
//! assert!(member.join().map_err(|_| "panicked")??);
//! println!("{:?}", lab.link_stats("alice", "server")?);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod change;
mod cmd;
mod delay;
mod error;
mod lab;
mod netns;
mod spec;
mod wan;

pub use delay::{LinkStats, QUEUE_BOUND};
pub use error::LabError;
pub use lab::{Lab, LabBuilder, PREFIX_ENV, Site};
pub use netns::{clean, list};
pub use spec::{LinkSpec, Nat};
