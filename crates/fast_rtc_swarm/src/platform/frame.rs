//! What both platforms' signaling WebSockets share: the frames they yield and the token URL.
//! The sockets are `native::ws::Socket` and `web::ws::Socket`, with the same small API.

use std::fmt;

/// What arrived on the socket.
pub(crate) enum Frame {
    /// A text frame.
    Text(String),
    /// The server closed the socket (with its reason, if any).
    Closed(String),
    /// Anything else (binary, ping, pong): ignored.
    Other,
}

/// `URL?token=TOKEN` (or `&token=` if the URL has a query already).
pub(crate) fn with_token(url: &str, token: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}token={token}")
}

/// A close reason, or that none was given.
pub(crate) struct Reason(pub(crate) Option<String>);

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_deref().unwrap_or("no reason given"))
    }
}

/// Why a signaling connection attempt failed.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The server refused the token (HTTP 401). Never in a browser, which hides the status.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    Unauthorized,
    /// Anything else: unreachable, TLS, another HTTP status, a malformed URL.
    Failed(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Unauthorized => f.write_str("the server refused the token (HTTP 401)"),
            ConnectError::Failed(e) => f.write_str(e),
        }
    }
}
