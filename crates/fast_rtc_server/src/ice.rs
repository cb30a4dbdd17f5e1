//! The STUN and TURN servers the server hands each member: in its `joined` frame
//! (`iceServers`), and again in an `iceServers` frame before the TURN credentials it minted
//! expire.
//!
//! TURN credentials follow coturn's `use-auth-secret` scheme (the "TURN REST API" draft): the
//! username is `<unix expiry>:<subject>` and the credential is
//! `base64(HMAC-SHA1(secret, username))`, where `secret` is coturn's `static-auth-secret`. The
//! subject is the member's authenticated identity (its token's `sub`), percent-encoded where
//! coturn would refuse a character. The server never stores or logs a credential, and the
//! `Debug` of every type here hides the secret.
//!
//! The server's own STUN server ([`crate::stun`]) is advertised as `stun:HOST:PORT`, `PORT`
//! being the port it listens on, and `HOST` [`StunAdvertise::Explicit`] or, by default, the
//! host the member used to reach the signaling server (its WebSocket request's `Host`
//! header): whatever name or address brought a member here also reaches the STUN port of the
//! same machine.

use fast_rtc_protocol::{IceServer, UserId};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The shortest TURN credential lifetime accepted (shorter ones are raised to it).
pub const MIN_TURN_TTL: Duration = Duration::from_secs(2);

/// Why an [`IceConfig`] is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IceConfigError {
    /// The TURN secret is empty.
    #[error("the TURN secret is empty")]
    EmptySecret,
    /// The TURN secret file could not be read.
    #[error("cannot read the TURN secret file {path}: {source}")]
    SecretFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A URL does not have the scheme its list needs.
    #[error("{url:?} is not a {scheme}: URL")]
    Scheme {
        /// The URL.
        url: String,
        /// `stun` or `turn`.
        scheme: &'static str,
    },
    /// `--stun-advertise` is not `HOST:PORT`.
    #[error("{0:?} is not HOST:PORT")]
    Advertise(String),
}

/// coturn's `static-auth-secret`, from which TURN credentials are minted. `Debug` hides it.
#[derive(Clone)]
pub struct TurnSecret(Vec<u8>);

impl TurnSecret {
    /// A secret; surrounding whitespace (a file's trailing newline) is trimmed.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, IceConfigError> {
        let bytes = secret.as_ref().trim_ascii();
        if bytes.is_empty() {
            return Err(IceConfigError::EmptySecret);
        }
        Ok(TurnSecret(bytes.to_vec()))
    }

    /// The secret read from `path` (whitespace trimmed).
    pub fn from_file(path: &std::path::Path) -> Result<Self, IceConfigError> {
        let raw = std::fs::read(path).map_err(|source| IceConfigError::SecretFile {
            path: path.to_owned(),
            source,
        })?;
        Self::new(raw)
    }
}

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(<redacted>)")
    }
}

/// TURN servers sharing one `static-auth-secret`, and how long minted credentials live.
#[derive(Clone, Debug)]
pub struct TurnConfig {
    /// `turn:` / `turns:` URLs, e.g. `turn:turn.example.com:3478?transport=udp`.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub secret: TurnSecret,
    /// How long a minted credential is valid (default 1 h; at least [`MIN_TURN_TTL`]). The
    /// server sends fresh ones after half of it.
    pub ttl: Duration,
}

/// How the server's own STUN server is named in `iceServers`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StunAdvertise {
    /// The host the member used to reach the signaling server (its WebSocket request's `Host`
    /// header), with the STUN server's port. The default.
    #[default]
    RequestHost,
    /// This `HOST:PORT` (e.g. a public name when the server is behind a proxy).
    Explicit(String),
}

/// The built-in STUN server ([`crate::stun`]): where it listens, how it is advertised, and
/// its per-source rate.
#[derive(Clone, Debug)]
pub struct StunListen {
    /// The UDP address to answer on (port 0: any free port).
    pub addr: SocketAddr,
    /// How it is named in `iceServers`.
    pub advertise: StunAdvertise,
    /// Binding requests per second a source may send, sustained (default 20).
    pub rate_per_second: u32,
    /// Binding requests a source may send at once before the rate applies (default 60: a
    /// member joining a full room gathers once per connection).
    pub burst: u32,
}

impl StunListen {
    /// Listening on `addr`, advertised as the host each member used, at the default rate.
    pub fn new(addr: SocketAddr) -> Self {
        StunListen {
            addr,
            advertise: StunAdvertise::RequestHost,
            rate_per_second: 20,
            burst: 60,
        }
    }
}

/// The ICE servers the server hands out ([`crate::ServerConfig::ice`]). The default hands out
/// none: `joined` then carries no `iceServers` at all, exactly as before this existed.
#[derive(Clone, Debug, Default)]
pub struct IceConfig {
    /// `stun:` URLs handed to every member as they are.
    pub stun: Vec<String>,
    /// TURN servers with credentials minted per member.
    pub turn: Option<TurnConfig>,
    /// Run a STUN server of the server's own and hand it out too.
    pub stun_listen: Option<StunListen>,
}

impl IceConfig {
    /// Checks the URL schemes (and an explicit STUN host).
    pub fn validate(&self) -> Result<(), IceConfigError> {
        let has_scheme = |url: &str, schemes: &[&str]| {
            let scheme = url.split(':').next().unwrap_or_default();
            schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s))
        };
        for url in &self.stun {
            if !has_scheme(url, &["stun", "stuns"]) {
                return Err(IceConfigError::Scheme {
                    url: url.clone(),
                    scheme: "stun",
                });
            }
        }
        for url in self.turn.iter().flat_map(|t| &t.urls) {
            if !has_scheme(url, &["turn", "turns"]) {
                return Err(IceConfigError::Scheme {
                    url: url.clone(),
                    scheme: "turn",
                });
            }
        }
        if let Some(StunListen {
            advertise: StunAdvertise::Explicit(host),
            ..
        }) = &self.stun_listen
            && split_host(host).is_none_or(|(_, port)| port.is_none())
        {
            return Err(IceConfigError::Advertise(host.clone()));
        }
        Ok(())
    }

    /// Whether any server is handed out.
    pub fn is_empty(&self) -> bool {
        self.stun.is_empty() && self.turn.is_none() && self.stun_listen.is_none()
    }
}

/// Mints the `iceServers` of each member; made by the server from its [`IceConfig`] once the
/// STUN port is bound.
#[derive(Clone, Debug, Default)]
pub struct IceIssuer {
    stun: Vec<String>,
    turn: Option<TurnConfig>,
    /// The built-in STUN server's port and explicit advertised name.
    own_stun: Option<(u16, StunAdvertise)>,
}

impl IceIssuer {
    /// The issuer for `config`, the built-in STUN server (if any) bound on `stun_port`.
    pub fn new(config: &IceConfig, stun_port: Option<u16>) -> Self {
        let own_stun = stun_port.zip(config.stun_listen.as_ref().map(|s| s.advertise.clone()));
        IceIssuer {
            stun: config.stun.clone(),
            turn: config.turn.clone().map(|t| TurnConfig {
                ttl: t.ttl.max(MIN_TURN_TTL),
                ..t
            }),
            own_stun,
        }
    }

    /// Whether it hands out anything.
    pub fn is_empty(&self) -> bool {
        self.stun.is_empty() && self.turn.is_none() && self.own_stun.is_none()
    }

    /// How often a member gets fresh credentials: half the TURN lifetime; `None` without TURN
    /// (STUN servers need no refresh).
    pub fn refresh_every(&self) -> Option<Duration> {
        self.turn.as_ref().map(|t| t.ttl / 2)
    }

    /// The servers for `user` at wall-clock time `now`, `request_host` being the `Host`
    /// header of its WebSocket request; `None` when nothing is handed out. Order: the
    /// server's own STUN server, the `stun` URLs, then the TURN servers (one entry with every
    /// TURN URL and the minted credentials).
    pub fn servers_for(
        &self,
        user: &UserId,
        request_host: Option<&str>,
        now: SystemTime,
    ) -> Option<Vec<IceServer>> {
        if self.is_empty() {
            return None;
        }
        let mut servers = Vec::new();
        if let Some((port, advertise)) = &self.own_stun {
            let url = match advertise {
                StunAdvertise::Explicit(host) => Some(format!("stun:{host}")),
                StunAdvertise::RequestHost => request_host
                    .and_then(split_host)
                    .map(|(host, _)| format!("stun:{host}:{port}")),
            };
            servers.extend(url.map(IceServer::stun));
        }
        servers.extend(self.stun.iter().cloned().map(IceServer::stun));
        if let Some(turn) = &self.turn {
            let expiry = now
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .saturating_add(turn.ttl)
                .as_secs();
            let username = turn_username(expiry, user);
            let credential = turn_credential(&turn.secret, &username);
            servers.push(IceServer {
                urls: turn.urls.clone(),
                username,
                credential,
            });
        }
        Some(servers)
    }
}

/// The TURN REST API username for `user`, valid until `expiry` (Unix seconds):
/// `<expiry>:<subject>`, the subject being `user` with every byte outside
/// `A-Z a-z 0-9 - . _ ~ @ +` percent-encoded (coturn refuses usernames with quotes, spaces or
/// backslashes).
pub fn turn_username(expiry: u64, user: &UserId) -> String {
    let mut name = format!("{expiry}:");
    for b in user.as_str().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@+".contains(&b) {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name
}

/// The TURN REST API credential for `username`: `base64(HMAC-SHA1(secret, username))`.
pub fn turn_credential(secret: &TurnSecret, username: &str) -> String {
    use base64::Engine;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret.0);
    let tag = ring::hmac::sign(&key, username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// `HOST[:PORT]` (a name, an IPv4 address or a bracketed IPv6 address) split in two; `None`
/// if it is not one (so a hostile `Host` header never ends up in a URL).
fn split_host(s: &str) -> Option<(&str, Option<u16>)> {
    if s.is_empty() || s.len() > 255 {
        return None;
    }
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let (host, rest) = s.split_at(end + 1);
        let inner = &host[1..host.len() - 1];
        if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return None;
        }
        (host, rest)
    } else {
        let end = s.find(':').unwrap_or(s.len());
        let (host, rest) = s.split_at(end);
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return None;
        }
        (host, rest)
    };
    let port = match port {
        "" => None,
        p => Some(p.strip_prefix(':')?.parse::<u16>().ok()?),
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "fast-rtc-turn-test-secret";

    #[test]
    fn the_credential_is_coturns_hmac() {
        // Computed independently, once:
        //   printf '%s' '1700000000:alice' \
        //     | openssl dgst -sha1 -hmac 'fast-rtc-turn-test-secret' -binary | base64
        //   YIlk6+59OdfBGvpgpZH8x1Cecro=
        let secret = TurnSecret::new(SECRET).unwrap();
        let username = turn_username(1_700_000_000, &UserId::from("alice"));
        assert_eq!(username, "1700000000:alice");
        assert_eq!(
            turn_credential(&secret, &username),
            "YIlk6+59OdfBGvpgpZH8x1Cecro="
        );
        // The secret file's trailing newline is not part of the secret.
        let from_file = TurnSecret::new(format!("{SECRET}\n")).unwrap();
        assert_eq!(
            turn_credential(&from_file, &username),
            "YIlk6+59OdfBGvpgpZH8x1Cecro="
        );
        assert!(TurnSecret::new(" \n").is_err());
    }

    #[test]
    fn subjects_coturn_would_refuse_are_encoded() {
        let user = UserId::from("o'brien \"x\"\\y:z");
        assert_eq!(turn_username(5, &user), "5:o%27brien%20%22x%22%5Cy%3Az");
        assert_eq!(
            turn_username(5, &UserId::from("a.b-c_d~e@f+g")),
            "5:a.b-c_d~e@f+g"
        );
    }

    #[test]
    fn debug_hides_the_secret_and_the_credentials() {
        let config = IceConfig {
            stun: vec![],
            turn: Some(TurnConfig {
                urls: vec!["turn:t.example:3478".into()],
                secret: TurnSecret::new(SECRET).unwrap(),
                ttl: Duration::from_secs(3600),
            }),
            stun_listen: None,
        };
        let issuer = IceIssuer::new(&config, None);
        let servers = issuer
            .servers_for(&UserId::from("alice"), None, UNIX_EPOCH)
            .unwrap();
        let text = format!("{config:?} {issuer:?} {servers:?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains(&servers[0].credential), "{text}");
    }

    #[test]
    fn a_member_gets_every_server_with_credentials_minted_for_it() {
        let config = IceConfig {
            stun: vec!["stun:stun.example:3478".into()],
            turn: Some(TurnConfig {
                urls: vec![
                    "turn:t.example:3478?transport=udp".into(),
                    "turns:t.example:5349".into(),
                ],
                secret: TurnSecret::new(SECRET).unwrap(),
                ttl: Duration::from_secs(600),
            }),
            stun_listen: Some(StunListen::new("0.0.0.0:3478".parse().unwrap())),
        };
        config.validate().unwrap();
        let issuer = IceIssuer::new(&config, Some(3478));
        assert_eq!(issuer.refresh_every(), Some(Duration::from_secs(300)));
        let now = UNIX_EPOCH + Duration::from_secs(1_699_999_400);
        let servers = issuer
            .servers_for(&UserId::from("alice"), Some("game.example:8787"), now)
            .unwrap();
        assert_eq!(
            servers,
            [
                IceServer::stun("stun:game.example:3478"),
                IceServer::stun("stun:stun.example:3478"),
                IceServer {
                    urls: config.turn.as_ref().unwrap().urls.clone(),
                    username: "1700000000:alice".into(),
                    credential: "YIlk6+59OdfBGvpgpZH8x1Cecro=".into(),
                },
            ]
        );
    }

    #[test]
    fn the_own_stun_server_is_named_by_the_request_host_or_explicitly() {
        let mut config = IceConfig {
            stun_listen: Some(StunListen::new("0.0.0.0:0".parse().unwrap())),
            ..IceConfig::default()
        };
        let issuer = IceIssuer::new(&config, Some(40000));
        let user = UserId::from("u");
        let for_host = |host| issuer.servers_for(&user, host, UNIX_EPOCH).unwrap();
        assert_eq!(
            for_host(Some("127.0.0.1:8787")),
            [IceServer::stun("stun:127.0.0.1:40000")]
        );
        assert_eq!(
            for_host(Some("[::1]:8787")),
            [IceServer::stun("stun:[::1]:40000")]
        );
        assert_eq!(
            for_host(Some("game.example")),
            [IceServer::stun("stun:game.example:40000")]
        );
        // No Host, or one that is not a host: nothing to advertise.
        for bad in [
            None,
            Some(""),
            Some("a b"),
            Some("x/y:1"),
            Some("[zz]:1"),
            Some("h:99999"),
        ] {
            assert_eq!(for_host(bad), [], "{bad:?}");
        }
        config.stun_listen = Some(StunListen {
            advertise: StunAdvertise::Explicit("stun.example:3478".into()),
            ..StunListen::new("0.0.0.0:0".parse().unwrap())
        });
        config.validate().unwrap();
        let issuer = IceIssuer::new(&config, Some(40000));
        assert_eq!(
            issuer.servers_for(&user, Some("127.0.0.1:8787"), UNIX_EPOCH),
            Some(vec![IceServer::stun("stun:stun.example:3478")])
        );
        assert_eq!(issuer.refresh_every(), None);
    }

    #[test]
    fn nothing_configured_hands_out_nothing() {
        let issuer = IceIssuer::new(&IceConfig::default(), None);
        assert!(issuer.is_empty());
        assert_eq!(
            issuer.servers_for(&UserId::from("u"), Some("h:1"), UNIX_EPOCH),
            None
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        let config = IceConfig {
            stun: vec!["turn:x".into()],
            ..IceConfig::default()
        };
        assert!(config.validate().is_err());
        let config = IceConfig {
            stun_listen: Some(StunListen {
                advertise: StunAdvertise::Explicit("no-port".into()),
                ..StunListen::new("0.0.0.0:0".parse().unwrap())
            }),
            ..IceConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
