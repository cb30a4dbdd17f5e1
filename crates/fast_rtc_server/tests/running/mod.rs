//! The wire tests' server: this crate's [`Server`] on a random loopback port, accepting tokens
//! made with [`SECRET`].
#![allow(dead_code, clippy::unwrap_used)]

use fast_rtc_server::{JwtAuthenticator, Secret, Server, ServerConfig, ServerHandle, TokenIssuer};
use std::time::{Duration, SystemTime};

/// The secret the tests' tokens are signed with.
pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

/// An issuer of tokens with [`SECRET`].
pub fn issuer() -> TokenIssuer {
    TokenIssuer::new(&Secret::new(SECRET).unwrap())
}

/// A token for `sub` in any room, valid for 10 minutes.
pub fn token(sub: &str) -> String {
    token_for(sub, "*")
}

/// A token for `sub` in `room`, valid for 10 minutes.
pub fn token_for(sub: &str, room: &str) -> String {
    issuer()
        .issue(sub, room, Duration::from_secs(600), SystemTime::now())
        .unwrap()
}

/// A server with `config` on a random port of 127.0.0.1.
pub async fn start(config: ServerConfig) -> ServerHandle {
    Server::new(config, JwtAuthenticator::new(&Secret::new(SECRET).unwrap()))
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}
