//! Network namespaces: making, entering, emptying and deleting the lab's own, and finding the
//! ones a run left behind (by their name's prefix).

use crate::cmd;
use crate::error::LabError;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::fs::File;
use std::thread::JoinHandle;

/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Makes the namespace `name` (empty: see [`configure`]).
pub(crate) fn add(name: &str) -> Result<(), LabError> {
    cmd::ip(&["netns", "add", name]).map(drop)
}

/// Brings the loopback of namespace `name` up and turns IPv6 off (the lab is IPv4; no router
/// solicitations on its links).
pub(crate) fn configure(name: &str) -> Result<(), LabError> {
    cmd::ip_in(name, &["link", "set", "lo", "up"])?;
    sysctl(name, "net.ipv6.conf.all.disable_ipv6=1")?;
    sysctl(name, "net.ipv6.conf.default.disable_ipv6=1")?;
    Ok(())
}

/// `sysctl -w SETTING` inside `name`.
pub(crate) fn sysctl(name: &str, setting: &str) -> Result<(), LabError> {
    cmd::exec_in(name, "sysctl", &["-qw", setting], None).map(drop)
}

/// Kills (SIGKILL) every process in `name`, then deletes it; what cannot be done is logged.
/// Its virtual devices (veth, TUN) go with it.
pub(crate) fn delete(name: &str) {
    kill_all(name);
    if let Err(e) = cmd::ip(&["netns", "del", name]) {
        tracing::warn!(namespace = name, "cannot delete the namespace: {e}");
    }
}

/// SIGKILL to every process whose network namespace is `name` (all started in it by the lab's
/// user: members, servers).
pub(crate) fn kill_all(name: &str) {
    let Ok(pids) = cmd::ip(&["netns", "pids", name]) else {
        return;
    };
    for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        if pid != std::process::id() as i32 {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Starts `f` on a new thread that first enters the namespace `name`, and returns at once: for
/// what runs as long as the lab (a member, a server, in this process). The thread's own
/// threads are born in the namespace too.
pub(crate) fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<Result<T, LabError>>, LabError> {
    let namespace = name.to_owned();
    let file = File::open(format!("{NETNS_DIR}/{name}")).map_err(|source| LabError::Enter {
        namespace: namespace.clone(),
        source,
    })?;
    std::thread::Builder::new()
        .name(format!("netns {name}"))
        .spawn(move || {
            nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| LabError::Enter {
                namespace,
                source: e.into(),
            })?;
            Ok(f())
        })
        .map_err(LabError::Thread)
}

/// Runs `f` on a new thread that first enters the namespace `name`: sockets and devices it
/// makes belong to that namespace (and stay usable from any thread afterwards).
pub(crate) fn enter<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
    let enter_error = |source| LabError::Enter {
        namespace: name.to_owned(),
        source,
    };
    let file = File::open(format!("{NETNS_DIR}/{name}")).map_err(enter_error)?;
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(format!("netns {name}"))
            .spawn_scoped(scope, move || {
                nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| enter_error(e.into()))?;
                Ok(f())
            })
            .map_err(LabError::Thread)?;
        thread
            .join()
            .map_err(|_| LabError::Panicked(name.to_owned()))?
    })
}

/// Whether `name` is a namespace of a lab with this prefix: `PREFIX` `x` a number `-` …
/// (another prefix that merely starts the same, `nl12` against `nl123`, is not; the empty
/// prefix is no lab's).
fn made_with(name: &str, prefix: &str) -> bool {
    if prefix.is_empty() {
        return false;
    }
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('x'))
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// The namespaces (`ip netns list`) that labs with this prefix made (see
/// [`LabBuilder::prefix`](crate::lab::LabBuilder::prefix)).
pub fn list(prefix: &str) -> Result<Vec<String>, LabError> {
    Ok(cmd::ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| made_with(n, prefix))
        .map(str::to_owned)
        .collect())
}

/// Deletes every namespace that labs with this prefix made (killing what runs in them): what
/// a run that was killed left behind. Returns their names.
pub fn clean(prefix: &str) -> Result<Vec<String>, LabError> {
    let names = list(prefix)?;
    for name in &names {
        delete(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::made_with;

    #[test]
    fn only_a_labs_own_names_match_its_prefix() {
        assert!(made_with("nl123x0-server", "nl123"));
        assert!(made_with("nl123x12-a-nat", "nl123"));
        assert!(
            !made_with("nl1234x0-server", "nl123"),
            "another run's prefix"
        );
        assert!(!made_with("nl123-server", "nl123"));
        assert!(!made_with("nl123x-server", "nl123"));
        assert!(!made_with("other", "nl123"));
        assert!(!made_with("x0-a", ""), "an empty prefix is not a lab's");
    }
}
