//! Why a lab could not be built, entered or cleaned.

use std::io;

/// Why a lab could not be built, entered or cleaned.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The description is not one the lab can build (its message says what is wrong).
    #[error("invalid lab: {0}")]
    Invalid(String),
    /// No site has this name.
    #[error("no site named {0:?} in this lab")]
    NoSuchSite(String),
    /// A command (`ip`, `nft`, `sysctl`) could not be run.
    #[error("cannot run `{command}`: {source} (the lab needs root and iproute2, nftables)")]
    Spawn {
        /// The command line.
        command: String,
        /// The spawn error.
        source: io::Error,
    },
    /// A command failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it wrote on stderr.
        stderr: String,
    },
    /// A namespace could not be entered (`setns`), or its file opened.
    #[error("cannot enter network namespace {namespace}: {source}")]
    Enter {
        /// The namespace.
        namespace: String,
        /// The error.
        source: io::Error,
    },
    /// A thread running inside a namespace panicked.
    #[error("the thread inside network namespace {0} panicked")]
    Panicked(String),
    /// A site's TUN device could not be made or set up.
    #[error("cannot make the TUN device of site {site}: {source} (the lab needs /dev/net/tun)")]
    Tun {
        /// The site.
        site: String,
        /// The error.
        source: io::Error,
    },
    /// A WAN thread could not be started.
    #[error("cannot start the WAN's threads: {0}")]
    Thread(io::Error),
}
