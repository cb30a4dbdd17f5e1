//! A coturn (Debian's `turnserver`) of the test's own: UDP only, on one address, with
//! long-term credentials for one user or a TURN REST API secret ([`CoturnAuth`]), optionally
//! inside a network namespace ([`CoturnOptions::wrapper`]); killed (and its directory removed)
//! on drop.
//!
//! Used by the swarm's `tests/e2e_turn.rs` (on 127.0.0.1) and the bench's relay rows (on the
//! address its members bind). `./scripts/need.sh turnserver coturn` installs it.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The realm coturn is started with.
pub const REALM: &str = "fast-rtc.test";

/// Why [`Coturn::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CoturnError {
    /// No free UDP port could be picked on the address.
    #[error("no free UDP port on {ip}: {source}")]
    Port {
        /// The address coturn was to listen on.
        ip: IpAddr,
        /// The bind error.
        source: io::Error,
    },
    /// Its working directory (config, log, database) could not be made.
    #[error("cannot prepare coturn's directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The file-system error.
        source: io::Error,
    },
    /// `turnserver` could not be run.
    #[error(
        "cannot start `turnserver` ({source}): install Debian's coturn (`./scripts/need.sh turnserver coturn`)"
    )]
    Spawn {
        /// The spawn error.
        source: io::Error,
    },
    /// `turnserver` exited before it answered.
    #[error("turnserver exited at start ({status}):\n{log}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// Its log.
        log: String,
    },
    /// `turnserver` did not answer a STUN binding request in time (about 10 s).
    #[error("turnserver did not answer at {addr}:\n{log}")]
    NoAnswer {
        /// Where it was asked.
        addr: SocketAddr,
        /// Its log.
        log: String,
    },
    /// The STUN probe could not be sent, or the child could not be polled.
    #[error("cannot probe turnserver at {addr}: {source}")]
    Probe {
        /// Where it was asked.
        addr: SocketAddr,
        /// The I/O error.
        source: io::Error,
    },
}

/// How clients authenticate to a [`Coturn`].
#[derive(Clone, Debug)]
pub enum CoturnAuth {
    /// One long-term-credential user (`--lt-cred-mech --user USER:PASSWORD`).
    User {
        /// The username.
        user: String,
        /// Its password.
        password: String,
    },
    /// The TURN REST API scheme (`--use-auth-secret --static-auth-secret SECRET`): a username
    /// `EXPIRY:NAME` (unix seconds) with the credential base64(HMAC-SHA1(SECRET, username)),
    /// refused once EXPIRY has passed.
    Secret(String),
}

impl CoturnAuth {
    /// One long-term-credential user.
    pub fn user(user: &str, password: &str) -> Self {
        CoturnAuth::User {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }
}

/// Where and how to start a [`Coturn`] ([`Coturn::start_with`]).
#[derive(Debug)]
pub struct CoturnOptions {
    /// Its listening and relay address.
    pub ip: IpAddr,
    /// Its UDP port; `None` picks a free one on `ip` (which must then be an address of this
    /// process's network namespace).
    pub port: Option<u16>,
    /// How clients authenticate.
    pub auth: CoturnAuth,
    /// Words put before `turnserver` (`ip netns exec NAMESPACE` to run it inside a network
    /// namespace); empty to run it directly.
    pub wrapper: Vec<String>,
    /// The socket the readiness probe is sent from; `None` binds one on `ip`. Give one bound
    /// inside the namespace when coturn runs in another.
    pub probe: Option<UdpSocket>,
    /// Peer addresses it may relay to (`--allowed-peer-ip`, `A-B` ranges), besides loopback
    /// ones when `ip` is a loopback address.
    pub allowed_peers: Vec<String>,
}

impl CoturnOptions {
    /// Options for a coturn on `ip` with `auth`: a free port, run directly (not in a
    /// namespace), probed from `ip`, no peers allowed beyond loopback ones.
    pub fn new(ip: IpAddr, auth: CoturnAuth) -> Self {
        CoturnOptions {
            ip,
            port: None,
            auth,
            wrapper: Vec::new(),
            probe: None,
            allowed_peers: Vec::new(),
        }
    }
}

/// A running coturn; killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct Coturn {
    child: Child,
    dir: PathBuf,
    url: String,
    addr: SocketAddr,
}

impl Coturn {
    /// Starts `turnserver` on a free UDP port of `ip` (listening and relay address), with the
    /// long-term credentials `user:password`, and waits until it answers a STUN binding request.
    /// Loopback peers are allowed when `ip` is a loopback address.
    pub fn start(ip: IpAddr, user: &str, password: &str) -> Result<Coturn, CoturnError> {
        Coturn::start_with(CoturnOptions::new(ip, CoturnAuth::user(user, password)))
    }

    /// [`Coturn::start`] on the given address: e.g. the address of one that was dropped, to
    /// restart a TURN server under its clients (their allocations are gone).
    pub fn start_at(addr: SocketAddr, user: &str, password: &str) -> Result<Coturn, CoturnError> {
        Coturn::start_with(CoturnOptions {
            port: Some(addr.port()),
            ..CoturnOptions::new(addr.ip(), CoturnAuth::user(user, password))
        })
    }

    /// Starts `turnserver` like [`Coturn::start`], but taking the TURN REST API's
    /// time-limited credentials (`use-auth-secret`): username `<unix expiry>:<name>`,
    /// password `base64(HMAC-SHA1(secret, username))`, refused once the expiry has passed.
    pub fn start_with_secret(ip: IpAddr, secret: &str) -> Result<Coturn, CoturnError> {
        Coturn::start_with(CoturnOptions::new(
            ip,
            CoturnAuth::Secret(secret.to_owned()),
        ))
    }

    /// Starts `turnserver` as `options` say, and waits until it answers a STUN binding request
    /// sent from the probe socket.
    pub fn start_with(options: CoturnOptions) -> Result<Coturn, CoturnError> {
        let ip = options.ip;
        let port = match options.port {
            Some(port) => port,
            None => UdpSocket::bind((ip, 0))
                .and_then(|s| s.local_addr())
                .map_err(|source| CoturnError::Port { ip, source })?
                .port(),
        };
        let dir = std::env::temp_dir().join(format!(
            "fast-rtc-coturn-{}-{ip}-{port}",
            std::process::id()
        ));
        let dir_error = |source| CoturnError::Dir {
            dir: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(dir_error)?;
        // The secret goes in the config file (mode 0600), not on the command line, where any
        // user of the machine could read it.
        let conf = dir.join("turnserver.conf");
        let conf_text = match &options.auth {
            CoturnAuth::User { .. } => String::new(),
            CoturnAuth::Secret(secret) => {
                format!("use-auth-secret\nstatic-auth-secret={secret}\n")
            }
        };
        write_private(&conf, &conf_text).map_err(dir_error)?;
        let log = std::fs::File::create(dir.join("turn.log")).map_err(dir_error)?;
        let ip_s = ip.to_string();
        let mut cmd = match options.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg("turnserver");
                cmd
            }
            None => Command::new("turnserver"),
        };
        cmd.args([
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--no-tcp",
            "--no-tcp-relay",
            "--fingerprint",
            "--realm",
            REALM,
            "--listening-ip",
            &ip_s,
            "--relay-ip",
            &ip_s,
        ]);
        match &options.auth {
            CoturnAuth::User { user, password } => {
                cmd.arg("--lt-cred-mech")
                    .args(["--user", &format!("{user}:{password}")]);
            }
            CoturnAuth::Secret(_) => {} // in the config file
        }
        for range in &options.allowed_peers {
            cmd.args(["--allowed-peer-ip", range]);
        }
        cmd.args(["--listening-port", &port.to_string()])
            // Not Debian's /etc/turnserver.conf (it says `syslog`): our own file; log to stdout.
            .arg("-c")
            .arg(&conf)
            .args(["--log-file", "stdout"])
            .arg("--pidfile")
            .arg(dir.join("turn.pid"))
            .arg("--userdb")
            .arg(dir.join("turndb"))
            .stdout(log)
            .stderr(Stdio::null());
        if ip.is_loopback() {
            cmd.arg("--allow-loopback-peers");
        }
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(source) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(CoturnError::Spawn { source });
            }
        };
        let addr = SocketAddr::new(ip, port);
        // Killed (and its directory removed) on drop, also when it does not come up.
        let mut coturn = Coturn {
            child,
            dir,
            url: format!("turn:{ip}:{port}?transport=udp"),
            addr,
        };
        let probe = match options.probe {
            Some(probe) => probe,
            None => {
                UdpSocket::bind((ip, 0)).map_err(|source| CoturnError::Probe { addr, source })?
            }
        };
        coturn.wait_ready(&probe)?;
        Ok(coturn)
    }

    /// Its UDP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL as a STUN server: `stun:IP:PORT`.
    pub fn stun_url(&self) -> String {
        format!("stun:{}", self.addr)
    }

    /// Its URL: `turn:IP:PORT?transport=udp`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What it logged so far (empty if the log cannot be read).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("turn.log")).unwrap_or_default()
    }

    /// Waits until coturn answers a STUN binding request sent from `probe` (100 tries, 100 ms
    /// apart).
    fn wait_ready(&mut self, probe: &UdpSocket) -> Result<(), CoturnError> {
        let addr = self.addr;
        let probe_error = |source| CoturnError::Probe { addr, source };
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(probe_error)?;
        // Binding request: type 0x0001, length 0, magic cookie, 12-byte transaction id.
        let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        request.extend_from_slice(b"fastrtcprobe");
        let mut buf = [0u8; 512];
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().map_err(probe_error)? {
                return Err(CoturnError::Exited {
                    status,
                    log: self.log(),
                });
            }
            let _ = probe.send_to(&request, addr);
            if let Ok(n) = probe.recv(&mut buf)
                && n >= 2
                && buf[..2] == [0x01, 0x01]
            {
                return Ok(());
            }
        }
        Err(CoturnError::NoAnswer {
            addr,
            log: self.log(),
        })
    }
}

/// Writes `text` to `path`, readable by its owner only.
fn write_private(path: &std::path::Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

impl Drop for Coturn {
    fn drop(&mut self) {
        crate::stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
