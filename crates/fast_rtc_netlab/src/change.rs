//! A site's address changing while the lab runs: [`Lab::renumber`] (its public address is
//! another one, every mapping of its NAT dies: a provider renumbering a home, Wi-Fi to
//! cable) and [`Lab::rebind`] (only its NAT's UDP mappings die and come back on another
//! address: a carrier-grade NAT moving a flow in its pool; TCP flows live on).

use crate::cmd;
use crate::error::LabError;
use crate::lab::{Lab, WAN_NET, nat_rules};
use crate::spec::Nat;
use std::net::Ipv4Addr;

impl Lab {
    /// Renumbers site `name` and returns its new public address (`10.77.K.N`, K counting
    /// its changes; at most 255): the new address goes on the site's WAN side (its NAT, or
    /// the host itself without one), the old one is deleted and no longer routed by the WAN,
    /// and the connection tracking of that namespace is flushed. Every mapping of the NAT
    /// dies, TCP and UDP alike: a TCP flow's next segment leaves from the new address and is
    /// refused by its server, packets to the old address are dropped. Without a NAT, the
    /// host's own address changes too ([`Site::addr`](crate::Site::addr)): sockets bound to
    /// the old one can no longer send.
    pub fn renumber(&mut self, name: &str) -> Result<Ipv4Addr, LabError> {
        let index = self.index(name)?;
        let site = &self.sites[index];
        let new = next_addr(site.name(), site.renumbered, index)?;
        let wan_side = site.nat_namespace().unwrap_or(site.namespace()).to_owned();
        let old: Vec<Ipv4Addr> = [Some(site.public_addr), site.udp_public_addr]
            .into_iter()
            .flatten()
            .collect();
        let nat = site.nat();
        // The new address stays when the old primary one goes (the kernel deletes an
        // interface's secondary addresses with its primary one otherwise).
        crate::netns::sysctl(&wan_side, "net.ipv4.conf.wan0.promote_secondaries=1")?;
        cmd::ip_in(
            &wan_side,
            &["addr", "add", &format!("{new}/16"), "dev", "wan0"],
        )?;
        if let Some(wan) = &self.wan {
            wan.route(new, index);
        }
        for addr in &old {
            cmd::ip_in(
                &wan_side,
                &["addr", "del", &format!("{addr}/16"), "dev", "wan0"],
            )?;
            if let Some(wan) = &self.wan {
                wan.unroute(*addr);
            }
        }
        cmd::ip_in(&wan_side, &["route", "replace", "default", "dev", "wan0"])?;
        if nat != Nat::None {
            cmd::exec_in(&wan_side, "nft", &["-f", "-"], Some(&nat_rules(nat, None)))?;
        }
        cmd::exec_in(&wan_side, "conntrack", &["-F"], None)?;
        let site = &mut self.sites[index];
        site.renumbered += 1;
        site.public_addr = new;
        site.udp_public_addr = None;
        if nat == Nat::None {
            site.addr = new;
        }
        tracing::info!(site = name, %new, old = ?old, "site renumbered");
        Ok(new)
    }

    /// Rebinds the NAT of site `name` and returns the address its UDP now leaves from
    /// (`10.77.K.N`, as [`renumber`](Self::renumber)): the NAT takes that address besides its
    /// own, sends UDP from it (mapped as before: a cone keeps the host's port), and forgets
    /// every UDP mapping (conntrack entries of UDP deleted), so the host's next UDP packet
    /// gets a new mapping and what peers send to the old one is dropped. TCP flows keep their
    /// mapping and address. A site without a NAT has nothing to rebind
    /// ([`LabError::Invalid`]).
    pub fn rebind(&mut self, name: &str) -> Result<Ipv4Addr, LabError> {
        let index = self.index(name)?;
        let site = &self.sites[index];
        let Some(nat_namespace) = site.nat_namespace().map(str::to_owned) else {
            return Err(LabError::Invalid(format!(
                "site {name} has no NAT to rebind"
            )));
        };
        let new = next_addr(site.name(), site.renumbered, index)?;
        let previous = site.udp_public_addr;
        let nat = site.nat();
        cmd::ip_in(
            &nat_namespace,
            &["addr", "add", &format!("{new}/16"), "dev", "wan0"],
        )?;
        if let Some(wan) = &self.wan {
            wan.route(new, index);
        }
        cmd::exec_in(
            &nat_namespace,
            "nft",
            &["-f", "-"],
            Some(&nat_rules(nat, Some(new))),
        )?;
        forget_udp(&nat_namespace)?;
        if let Some(addr) = previous {
            cmd::ip_in(
                &nat_namespace,
                &["addr", "del", &format!("{addr}/16"), "dev", "wan0"],
            )?;
            if let Some(wan) = &self.wan {
                wan.unroute(addr);
            }
        }
        let site = &mut self.sites[index];
        site.renumbered += 1;
        site.udp_public_addr = Some(new);
        tracing::info!(site = name, %new, "site's NAT rebound its UDP");
        Ok(new)
    }

    /// The index of site `name`.
    fn index(&self, name: &str) -> Result<usize, LabError> {
        self.sites
            .iter()
            .position(|s| s.name() == name)
            .ok_or_else(|| LabError::NoSuchSite(name.to_owned()))
    }
}

/// The address after `renumbered` changes of site number `index`.
fn next_addr(name: &str, renumbered: u8, index: usize) -> Result<Ipv4Addr, LabError> {
    let k = renumbered
        .checked_add(1)
        .ok_or_else(|| LabError::Invalid(format!("site {name}: at most 255 address changes")))?;
    // `build` allows at most 250 sites: N fits.
    let n = u8::try_from(index + 1).map_err(|_| LabError::Invalid("too many sites".into()))?;
    Ok(Ipv4Addr::new(WAN_NET[0], WAN_NET[1], k, n))
}

/// Deletes every UDP entry of the namespace's connection tracking (`conntrack -D -p udp`,
/// which fails when there was none to delete: that is no error here).
fn forget_udp(namespace: &str) -> Result<(), LabError> {
    match cmd::exec_in(namespace, "conntrack", &["-D", "-p", "udp"], None) {
        Ok(_) => Ok(()),
        Err(LabError::Command { stderr, .. }) if stderr.contains(" 0 flow entries") => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_addresses_count_the_changes_and_stop_at_255() {
        assert_eq!(next_addr("a", 0, 2).unwrap(), Ipv4Addr::new(10, 77, 1, 3));
        assert_eq!(
            next_addr("a", 254, 0).unwrap(),
            Ipv4Addr::new(10, 77, 255, 1)
        );
        assert!(next_addr("a", 255, 0).is_err());
    }
}
