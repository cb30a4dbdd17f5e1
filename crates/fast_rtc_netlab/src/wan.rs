//! The WAN emulator: one TUN device per site (inside the site's namespace; the fd is ours), a
//! reader thread per device and one sender thread. A packet read from site A's device goes to
//! the site whose WAN address is its IPv4 destination, through the A → B [`Link`] (loss, delay,
//! jitter) and the bounded [`DelayLine`]; a packet for no site is dropped (as the internet
//! drops a private address). Every thread stops when the [`Wan`] is dropped.

use crate::delay::{DelayLine, Due, Link, LinkStats};
use crate::error::LabError;
use crate::spec::LinkSpec;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tun_rs::{InterruptEvent, SyncDevice};

/// Largest packet read from a device (its MTU is 1,500; no offloads).
const MAX_PACKET: usize = 65_535;

/// The longest the sender sleeps without a packet due, to notice a stop it missed.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// One site's side of the WAN.
pub(crate) struct Port {
    /// Its WAN address (the packets' destination that selects it).
    pub(crate) addr: Ipv4Addr,
    /// Its TUN device.
    pub(crate) device: SyncDevice,
}

/// What the threads share.
struct Shared {
    devices: Vec<SyncDevice>,
    /// Which site each WAN address belongs to; changed by [`Wan::route`] and
    /// [`Wan::unroute`] while the WAN runs (a site renumbered).
    by_addr: RwLock<HashMap<Ipv4Addr, usize>>,
    state: Mutex<State>,
    wake: Condvar,
    stop: AtomicBool,
    interrupt: InterruptEvent,
    /// Packets for no site, or not IPv4.
    unroutable: AtomicU64,
}

/// The links (`links[from][to]`) and the packets on their way.
struct State {
    links: Vec<Vec<Link>>,
    line: DelayLine,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The running WAN; stops its threads when dropped.
pub(crate) struct Wan {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Wan {
    /// Starts forwarding between `ports`; `spec(from, to)` is each direction's link, whose draws
    /// are seeded from `seed` and the pair.
    pub(crate) fn start(
        ports: Vec<Port>,
        spec: impl Fn(usize, usize) -> LinkSpec,
        seed: u64,
    ) -> Result<Wan, LabError> {
        let n = ports.len();
        let links = (0..n)
            .map(|from| {
                (0..n)
                    .map(|to| Link::new(spec(from, to), link_seed(seed, from, to)))
                    .collect()
            })
            .collect();
        let by_addr = ports.iter().enumerate().map(|(i, p)| (p.addr, i)).collect();
        let devices: Vec<SyncDevice> = ports.into_iter().map(|p| p.device).collect();
        for device in &devices {
            device.set_nonblocking(true).map_err(LabError::Thread)?;
        }
        let shared = Arc::new(Shared {
            devices,
            by_addr: RwLock::new(by_addr),
            state: Mutex::new(State {
                links,
                line: DelayLine::new(n),
            }),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            interrupt: InterruptEvent::new().map_err(LabError::Thread)?,
            unroutable: AtomicU64::new(0),
        });
        let mut wan = Wan {
            shared,
            threads: Vec::new(),
        };
        for from in 0..n {
            let shared = wan.shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("wan read {from}"))
                .spawn(move || read_loop(&shared, from))
                .map_err(LabError::Thread)?;
            wan.threads.push(thread);
        }
        let shared = wan.shared.clone();
        let thread = std::thread::Builder::new()
            .name("wan send".into())
            .spawn(move || send_loop(&shared))
            .map_err(LabError::Thread)?;
        wan.threads.push(thread);
        Ok(wan)
    }

    /// The counters of the `from` → `to` direction.
    pub(crate) fn stats(&self, from: usize, to: usize) -> Option<LinkStats> {
        let state = self.shared.state();
        state.links.get(from)?.get(to).map(|l| l.stats)
    }

    /// Packets dropped for having no site as destination (or not being IPv4).
    pub(crate) fn unroutable(&self) -> u64 {
        self.shared.unroutable.load(Ordering::Relaxed)
    }

    /// From now on, packets for `addr` go to site `site` (a site's new WAN address).
    pub(crate) fn route(&self, addr: Ipv4Addr, site: usize) {
        self.shared
            .by_addr
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(addr, site);
    }

    /// From now on, packets for `addr` go nowhere (a site's address it gave up).
    pub(crate) fn unroute(&self, addr: Ipv4Addr) {
        self.shared
            .by_addr
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&addr);
    }
}

impl Drop for Wan {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.shared.interrupt.trigger() {
            tracing::warn!("cannot wake the WAN's readers: {e}");
        }
        self.shared.wake.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A link's seed: the lab's seed mixed with the pair, so each direction draws on its own.
fn link_seed(seed: u64, from: usize, to: usize) -> u64 {
    let pair = ((from as u64) << 32) | to as u64;
    (seed ^ pair.wrapping_mul(0x9E37_79B9_7F4A_7C15)).rotate_left(17)
}

/// The IPv4 destination of `packet`, if it is an IPv4 packet.
fn ipv4_destination(packet: &[u8]) -> Option<Ipv4Addr> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return None;
    }
    Some(Ipv4Addr::new(
        packet[16], packet[17], packet[18], packet[19],
    ))
}

/// Reads site `from`'s device until the WAN stops: each packet onto its link.
fn read_loop(shared: &Shared, from: usize) {
    let Some(device) = shared.devices.get(from) else {
        return;
    };
    let mut buf = vec![0u8; MAX_PACKET];
    while !shared.stop.load(Ordering::SeqCst) {
        let n = match device.recv_intr(&mut buf, &shared.interrupt) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if !shared.stop.load(Ordering::SeqCst) {
                    tracing::warn!(site = from, "the WAN cannot read a site's device: {e}");
                }
                return;
            }
        };
        let packet = &buf[..n];
        let to = ipv4_destination(packet).and_then(|d| {
            let by_addr = shared
                .by_addr
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            by_addr.get(&d).copied()
        });
        let Some(to) = to else {
            shared.unroutable.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let now = Instant::now();
        let mut state = shared.state();
        let State { links, line } = &mut *state;
        let Some(link) = links.get_mut(from).and_then(|l| l.get_mut(to)) else {
            continue;
        };
        let Some(at) = link.admit(now) else {
            continue;
        };
        let earliest = line.next_at().is_none_or(|next| at < next);
        if !line.push(at, from, to, packet.to_vec()) {
            link.stats.overflowed += 1;
            continue;
        }
        drop(state);
        if earliest {
            shared.wake.notify_all();
        }
    }
}

/// Writes each packet to its destination's device when its time comes, until the WAN stops.
fn send_loop(shared: &Shared) {
    let mut due: Vec<Due> = Vec::new();
    let mut state = shared.state();
    while !shared.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        state.line.pop_due(now, &mut due);
        if !due.is_empty() {
            drop(state);
            let mut delivered = Vec::with_capacity(due.len());
            for Due { from, to, packet } in due.drain(..) {
                let ok = shared
                    .devices
                    .get(to)
                    .is_some_and(|d| d.send(&packet).is_ok());
                delivered.push((from, to, ok));
            }
            state = shared.state();
            for (from, to, ok) in delivered {
                if let Some(link) = state.links.get_mut(from).and_then(|l| l.get_mut(to)) {
                    if ok {
                        link.stats.delivered += 1;
                    } else {
                        link.stats.overflowed += 1;
                    }
                }
            }
            continue;
        }
        let wait = state.line.next_at().map_or(IDLE_WAIT, |at| {
            at.saturating_duration_since(now).min(IDLE_WAIT)
        });
        state = shared
            .wake
            .wait_timeout(state, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_destination_is_read_from_ipv4_headers_only() {
        let mut packet = [0u8; 20];
        packet[0] = 0x45;
        packet[16..20].copy_from_slice(&[10, 77, 0, 2]);
        assert_eq!(ipv4_destination(&packet), Some(Ipv4Addr::new(10, 77, 0, 2)));
        packet[0] = 0x60;
        assert_eq!(ipv4_destination(&packet), None, "IPv6");
        assert_eq!(ipv4_destination(&packet[..19]), None, "short");
    }

    #[test]
    fn each_direction_has_its_own_seed() {
        assert_ne!(link_seed(1, 0, 1), link_seed(1, 1, 0));
        assert_ne!(link_seed(1, 0, 1), link_seed(2, 0, 1));
        assert_eq!(link_seed(1, 0, 1), link_seed(1, 0, 1));
    }
}
