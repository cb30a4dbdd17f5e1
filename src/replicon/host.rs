//! Who is the host: a pure decision every member makes the same way from what its swarm
//! already knows (its own identity and its open peers), with no message of its own.

use fast_rtc_protocol::UserId;

/// How the members agree on the host (replicon's server).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum HostRule {
    /// The smallest identity (by byte order) among this member and its open peers. In a full
    /// mesh every member sees the same set, so every member picks the same host. A member
    /// that joins later with a smaller identity becomes the host (see the module docs).
    #[default]
    LowestId,
    /// This member (a lobby's creator, a dedicated player): the others are its clients. A
    /// member that is not linked to it has no host.
    Fixed(UserId),
}

impl HostRule {
    /// The host as seen by `me` with `peers` open, or `None` if there is none (a `Fixed` host
    /// that is neither this member nor linked to it).
    pub fn choose<'a>(
        &self,
        me: &'a UserId,
        peers: impl IntoIterator<Item = &'a UserId>,
    ) -> Option<UserId> {
        match self {
            HostRule::LowestId => {
                let lowest =
                    peers.into_iter().fold(
                        me,
                        |best, p| if p.as_str() < best.as_str() { p } else { best },
                    );
                Some(lowest.clone())
            }
            HostRule::Fixed(host) => {
                (host == me || peers.into_iter().any(|p| p == host)).then(|| host.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<UserId> {
        v.iter().map(|s| UserId::from(*s)).collect()
    }

    #[test]
    fn lowest_id_is_the_same_on_every_member_of_a_full_mesh() {
        let all = ids(&["carol", "alice", "bob"]);
        for me in &all {
            let peers: Vec<&UserId> = all.iter().filter(|p| *p != me).collect();
            assert_eq!(
                HostRule::LowestId.choose(me, peers),
                Some(UserId::from("alice"))
            );
        }
    }

    #[test]
    fn a_member_alone_hosts_itself() {
        let me = UserId::from("bob");
        assert_eq!(HostRule::LowestId.choose(&me, []), Some(me.clone()));
    }

    #[test]
    fn a_fixed_host_needs_a_link_to_it() {
        let rule = HostRule::Fixed(UserId::from("zed"));
        let me = UserId::from("amy");
        assert_eq!(rule.choose(&me, []), None);
        let zed = UserId::from("zed");
        assert_eq!(rule.choose(&me, [&zed]), Some(zed.clone()));
        assert_eq!(rule.choose(&zed, []), Some(zed.clone()));
    }
}
