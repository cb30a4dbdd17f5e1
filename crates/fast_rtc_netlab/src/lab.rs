//! The lab: sites in network namespaces joined by the WAN (`wan.rs`), built from a
//! [`LabBuilder`] and torn down (processes killed, namespaces deleted) when the [`Lab`] is
//! dropped, also when building fails half-way or a test panics.

use crate::delay::LinkStats;
use crate::error::LabError;
use crate::spec::{LinkSpec, Nat};
use crate::wan::{Port, Wan};
use crate::{cmd, netns};
use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable that sets the namespaces' name prefix ([`LabBuilder::prefix`]):
/// `scripts/netlab-test.sh` sets a unique one per run and deletes whatever carries it on exit.
pub const PREFIX_ENV: &str = "FAST_RTC_NETLAB_PREFIX";

/// Every site's WAN address is `10.77.0.N` (N = its index + 1), on this /16; a site's
/// later addresses ([`Lab::renumber`], [`Lab::rebind`]) are `10.77.K.N`, K counting them.
pub(crate) const WAN_NET: [u8; 2] = [10, 77];
/// A NATed site's LAN is `192.168.N.0/24`: the NAT is `.1`, the host `.2`.
const LAN_NET: u8 = 192;

/// Labs made by this process, to keep their namespace names apart.
static LABS: AtomicU32 = AtomicU32::new(0);

/// One site of a lab: a host in its own network namespace, on the WAN directly or behind its
/// NAT (then the NAT is a namespace of its own between the host's LAN and the WAN).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) nat: Nat,
    pub(crate) nat_namespace: Option<String>,
    pub(crate) addr: Ipv4Addr,
    pub(crate) public_addr: Ipv4Addr,
    /// The NAT's address for UDP since a [`Lab::rebind`], if other than `public_addr`.
    pub(crate) udp_public_addr: Option<Ipv4Addr>,
    /// Addresses it had so far: the `K` of its next one.
    pub(crate) renumbered: u8,
}

impl Site {
    /// Its name in the lab.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's network namespace (where its programs run).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The NAT in front of it.
    pub fn nat(&self) -> Nat {
        self.nat
    }

    /// The NAT's namespace, if it has one.
    pub fn nat_namespace(&self) -> Option<&str> {
        self.nat_namespace.as_deref()
    }

    /// The host's own address: what its programs bind (a private LAN address behind a NAT).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Its address on the WAN: the NAT's outside address, or [`addr`](Self::addr) without one.
    /// Other sites reach a server here. [`Lab::renumber`] changes it.
    pub fn public_addr(&self) -> Ipv4Addr {
        self.public_addr
    }

    /// The address its UDP flows leave the NAT from: [`public_addr`](Self::public_addr),
    /// unless [`Lab::rebind`] moved them to another one.
    pub fn udp_public_addr(&self) -> Ipv4Addr {
        self.udp_public_addr.unwrap_or(self.public_addr)
    }

    /// A [`Command`] that runs `program` inside the host's namespace (`ip netns exec`); add
    /// arguments and spawn it. The lab kills it, if still running, when dropped.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace])
            .arg(program);
        command
    }

    /// Runs `f` on a thread inside the host's namespace and returns its result: sockets it
    /// binds belong to the site (and stay usable from any thread).
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        netns::enter(&self.namespace, f)
    }

    /// Starts `f` on a thread inside the host's namespace and returns its handle at once: a
    /// member or a server run in this process (the threads it starts are in the namespace
    /// too). Join it before the lab is dropped; its sockets go with the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<std::thread::JoinHandle<Result<T, LabError>>, LabError> {
        netns::spawn(&self.namespace, f)
    }
}

/// A lab's description: sites, links, the seed. [`build`](Self::build) makes it.
#[derive(Clone, Debug)]
pub struct LabBuilder {
    prefix: Option<String>,
    seed: u64,
    default_link: LinkSpec,
    sites: Vec<(String, Nat)>,
    links: Vec<(String, String, LinkSpec)>,
}

impl LabBuilder {
    /// The prefix of every namespace name of this lab (1 to 12 ASCII letters or digits): its
    /// namespaces are `PREFIX` `x` a number `-` the site's name (`-nat` for its NAT), the
    /// number counting the labs of this process. Default: the [`PREFIX_ENV`] variable, else
    /// `nl` and this process's id. [`clean`](crate::netns::clean) finds them by it.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The seed of every link's loss and jitter draws (default 1): the same seed drops the
    /// same packets of a link's sequence.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The link between any two sites, each way, unless [`link`](Self::link) says otherwise
    /// (default: [`LinkSpec::IDEAL`]).
    pub fn default_link(mut self, spec: LinkSpec) -> Self {
        self.default_link = spec;
        self
    }

    /// Adds a site (a name of at most 12 ASCII letters, digits or `_`) behind `nat`.
    pub fn site(mut self, name: impl Into<String>, nat: Nat) -> Self {
        self.sites.push((name.into(), nat));
        self
    }

    /// The link between `a` and `b`, both ways.
    pub fn link(self, a: &str, b: &str, spec: LinkSpec) -> Self {
        self.link_one_way(a, b, spec).link_one_way(b, a, spec)
    }

    /// The link from `from` to `to` only.
    pub fn link_one_way(mut self, from: &str, to: &str, spec: LinkSpec) -> Self {
        self.links.push((from.to_owned(), to.to_owned(), spec));
        self
    }

    /// Checks the description, then makes the namespaces, devices, addresses, routes and NATs
    /// and starts the WAN. Needs root. On any error, what was made is deleted.
    pub fn build(self) -> Result<Lab, LabError> {
        let prefix = match self.prefix.clone() {
            Some(p) => p,
            None => {
                std::env::var(PREFIX_ENV).unwrap_or_else(|_| format!("nl{}", std::process::id()))
            }
        };
        self.check(&prefix)?;
        let base = format!("{prefix}x{}", LABS.fetch_add(1, Ordering::Relaxed));
        // From here on, a failure drops `lab`, which deletes what was made.
        let mut lab = Lab {
            prefix,
            seed: self.seed,
            sites: Vec::new(),
            namespaces: Vec::new(),
            wan: None,
        };
        let mut ports = Vec::new();
        for (i, (name, nat)) in self.sites.iter().enumerate() {
            let n = u8::try_from(i + 1).map_err(|_| LabError::Invalid("too many sites".into()))?;
            let (site, port) = lab.make_site(&base, name, *nat, n)?;
            lab.sites.push(site);
            ports.push(port);
        }
        let index = |name: &str| self.sites.iter().position(|(n, _)| n == name);
        let mut specs = vec![vec![self.default_link; self.sites.len()]; self.sites.len()];
        for (from, to, spec) in &self.links {
            if let (Some(f), Some(t)) = (index(from), index(to)) {
                specs[f][t] = *spec;
            }
        }
        lab.wan = Some(Wan::start(ports, |f, t| specs[f][t], self.seed)?);
        tracing::info!(namespaces = %format!("{base}-*"), sites = lab.sites.len(), "lab up");
        Ok(lab)
    }

    /// What [`build`](Self::build) refuses before it makes anything.
    fn check(&self, prefix: &str) -> Result<(), LabError> {
        let invalid = |m: String| Err(LabError::Invalid(m));
        if prefix.is_empty()
            || prefix.len() > 12
            || !prefix.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return invalid(format!(
                "prefix {prefix:?}: 1 to 12 ASCII letters or digits"
            ));
        }
        if self.sites.is_empty() || self.sites.len() > 250 {
            return invalid(format!("{} sites: 1 to 250", self.sites.len()));
        }
        for (i, (name, _)) in self.sites.iter().enumerate() {
            let ok = !name.is_empty()
                && name.len() <= 12
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return invalid(format!(
                    "site name {name:?}: 1 to 12 ASCII letters, digits or _"
                ));
            }
            if self.sites[..i].iter().any(|(n, _)| n == name) {
                return invalid(format!("two sites named {name:?}"));
            }
        }
        for (from, to, spec) in &self.links {
            for end in [from, to] {
                if !self.sites.iter().any(|(n, _)| n == end) {
                    return Err(LabError::NoSuchSite(end.clone()));
                }
            }
            if !spec.is_valid() {
                return invalid(format!(
                    "link {from} → {to}: loss {} is not in [0, 1]",
                    spec.loss
                ));
            }
        }
        if !self.default_link.is_valid() {
            return invalid(format!(
                "default link: loss {} is not in [0, 1]",
                self.default_link.loss
            ));
        }
        Ok(())
    }
}

/// A running lab: its sites and the WAN between them. Dropping it kills every process left in
/// its namespaces, stops the WAN and deletes the namespaces (their devices go with them).
///
/// If the process is killed instead (a signal), nothing runs: delete what it left with
/// [`clean`](crate::netns::clean) on the prefix (`netlab clean PREFIX`; `scripts/netlab-test.sh` does
/// it in its exit trap).
pub struct Lab {
    prefix: String,
    seed: u64,
    pub(crate) sites: Vec<Site>,
    namespaces: Vec<String>,
    pub(crate) wan: Option<Wan>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("prefix", &self.prefix)
            .field("seed", &self.seed)
            .field("sites", &self.sites)
            .finish_non_exhaustive()
    }
}

impl Lab {
    /// A lab with no site yet: add them, then [`LabBuilder::build`].
    pub fn builder() -> LabBuilder {
        LabBuilder {
            prefix: None,
            seed: 1,
            default_link: LinkSpec::IDEAL,
            sites: Vec::new(),
            links: Vec::new(),
        }
    }

    /// The prefix of its namespace names ([`LabBuilder::prefix`]).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The seed of its links' draws.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Its sites, in the order they were added.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// The site named `name`.
    pub fn site(&self, name: &str) -> Result<&Site, LabError> {
        self.sites
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| LabError::NoSuchSite(name.to_owned()))
    }

    /// What the WAN did so far with the packets from `from` to `to`.
    pub fn link_stats(&self, from: &str, to: &str) -> Result<LinkStats, LabError> {
        let index = |name: &str| {
            self.sites
                .iter()
                .position(|s| s.name == name)
                .ok_or_else(|| LabError::NoSuchSite(name.to_owned()))
        };
        let (f, t) = (index(from)?, index(to)?);
        Ok(self
            .wan
            .as_ref()
            .and_then(|w| w.stats(f, t))
            .unwrap_or_default())
    }

    /// Packets the WAN dropped for having no site as destination (a private address, say).
    pub fn unroutable(&self) -> u64 {
        self.wan.as_ref().map_or(0, Wan::unroutable)
    }

    /// Makes a namespace and remembers it (for the teardown).
    fn add_namespace(&mut self, name: String) -> Result<String, LabError> {
        netns::add(&name)?;
        // Deleted on drop from here on, even if configuring it fails.
        self.namespaces.push(name.clone());
        netns::configure(&name)?;
        Ok(name)
    }

    /// Site number `n`: its namespace(s), the NAT, and its TUN device on the WAN.
    fn make_site(
        &mut self,
        base: &str,
        name: &str,
        nat: Nat,
        n: u8,
    ) -> Result<(Site, Port), LabError> {
        let public_addr = Ipv4Addr::new(WAN_NET[0], WAN_NET[1], 0, n);
        let host = self.add_namespace(format!("{base}-{name}"))?;
        let (wan_side, addr, nat_namespace) = match nat.masquerade() {
            None => (host.clone(), public_addr, None),
            Some(_) => {
                let outside = self.add_namespace(format!("{base}-{name}-nat"))?;
                let lan = |last| format!("{LAN_NET}.168.{n}.{last}");
                cmd::ip(&[
                    "link", "add", "lan0", "netns", &host, "type", "veth", "peer", "name", "lan0",
                    "netns", &outside,
                ])?;
                cmd::ip_in(
                    &outside,
                    &["addr", "add", &format!("{}/24", lan(1)), "dev", "lan0"],
                )?;
                cmd::ip_in(&outside, &["link", "set", "lan0", "up"])?;
                cmd::ip_in(
                    &host,
                    &["addr", "add", &format!("{}/24", lan(2)), "dev", "lan0"],
                )?;
                cmd::ip_in(&host, &["link", "set", "lan0", "up"])?;
                cmd::ip_in(&host, &["route", "add", "default", "via", &lan(1)])?;
                netns::sysctl(&outside, "net.ipv4.ip_forward=1")?;
                let rules = nat_rules(nat, None);
                cmd::exec_in(&outside, "nft", &["-f", "-"], Some(&rules))?;
                let addr = Ipv4Addr::new(LAN_NET, 168, n, 2);
                (outside.clone(), addr, Some(outside))
            }
        };
        let tun_error = |source| LabError::Tun {
            site: name.to_owned(),
            source,
        };
        let device = netns::enter(&wan_side, || {
            tun_rs::DeviceBuilder::new()
                .name("wan0")
                .mtu(1500)
                .build_sync()
        })?
        .map_err(tun_error)?;
        let cidr = format!("{public_addr}/16");
        cmd::ip_in(&wan_side, &["addr", "add", &cidr, "dev", "wan0"])?;
        cmd::ip_in(&wan_side, &["link", "set", "wan0", "up"])?;
        cmd::ip_in(&wan_side, &["route", "add", "default", "dev", "wan0"])?;
        let site = Site {
            name: name.to_owned(),
            namespace: host,
            nat,
            nat_namespace,
            addr,
            public_addr,
            udp_public_addr: None,
            renumbered: 0,
        };
        Ok((
            site,
            Port {
                addr: public_addr,
                device,
            },
        ))
    }
}

/// The NAT namespace's nftables rules: `masquerade` (with its flags) out of `wan0`, and
/// unsolicited packets from the WAN dropped before conntrack keeps an entry for them, as a home
/// router's firewall does. Without that drop, a peer's check that arrives before the host has
/// sent to that peer leaves an entry holding the host's mapped port for that pair, and the
/// host's own packets to the peer then get another port: no cone any more.
///
/// With `udp_addr` (after [`Lab::rebind`]), UDP leaves from that address instead (`snat`,
/// with the same flags: a cone keeps the host's port there too), TCP still masqueraded.
/// The rules replace the table's earlier ones in one transaction.
pub(crate) fn nat_rules(nat: Nat, udp_addr: Option<Ipv4Addr>) -> String {
    let masquerade = nat.masquerade().unwrap_or("masquerade");
    let udp = match udp_addr {
        Some(addr) => format!(
            "    oifname \"wan0\" meta l4proto udp snat ip to {addr} {}\n",
            nat.snat_flags()
        ),
        None => String::new(),
    };
    format!(
        "table ip netlab
flush table ip netlab
table ip netlab {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
{udp}    oifname \"wan0\" {masquerade}
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname \"wan0\" ct state new drop
  }}
}}
"
    )
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            netns::kill_all(ns);
        }
        // The WAN's threads stop before its devices' namespaces go.
        self.wan = None;
        for ns in self.namespaces.drain(..).rev() {
            netns::delete(&ns);
        }
        tracing::info!(prefix = %self.prefix, "lab down: its namespaces are deleted");
    }
}
