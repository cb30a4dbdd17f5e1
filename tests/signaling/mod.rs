//! A real signaling server for the plugin's tests, on a random loopback port and its own tokio
//! runtime, and tokens for it.
#![allow(dead_code, clippy::unwrap_used)]

use fast_rtc_server::{JwtAuthenticator, Secret, Server, ServerConfig, ServerHandle, TokenIssuer};
use std::time::{Duration, SystemTime};

/// The server (keep the runtime alive as long as it is used).
pub fn signaling_server(secret: &str) -> (tokio::runtime::Runtime, ServerHandle) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        let auth = JwtAuthenticator::new(&Secret::new(secret).unwrap());
        Server::new(ServerConfig::default(), auth)
            .spawn("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    });
    (rt, server)
}

/// A token for `user`, valid for 10 minutes from now.
pub fn token(secret: &str, user: &str) -> String {
    TokenIssuer::new(&Secret::new(secret).unwrap())
        .issue(user, "*", Duration::from_secs(600), SystemTime::now())
        .unwrap()
}
