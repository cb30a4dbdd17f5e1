//! The resume token of a signaling session (this project's extension; see `docs/protocol.md`,
//! "Resuming a session").

use serde::{Deserialize, Serialize};
use std::fmt;

/// An opaque secret that lets a member whose signaling socket died take its place in the room
/// back from a new socket (`init`'s `resume`, `joined`'s `resumeToken`). The server makes it
/// (random, at least 128 bits); a client only stores it and sends it back. It is a credential:
/// `Debug` redacts it, it has no `Display`, and it is never logged.
///
/// The empty token is a request: a client sends it in its first `init` to ask for a resumable
/// session; it never matches a session.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResumeToken(String);

impl ResumeToken {
    /// Wraps a token (the server's freshly made one, or one a client received).
    pub fn new(token: impl Into<String>) -> Self {
        ResumeToken(token.into())
    }

    /// The empty token: "no session to resume yet, make mine resumable".
    pub fn request() -> Self {
        ResumeToken(String::new())
    }

    /// Whether this is the empty token ([`ResumeToken::request`]).
    pub fn is_request(&self) -> bool {
        self.0.is_empty()
    }

    /// The token's text, to put on the wire or compare.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `other` is this token, in time that depends only on the lengths (a guess tells
    /// nothing by how fast it is refused). The empty token matches nothing.
    pub fn matches(&self, other: &ResumeToken) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        if a.is_empty() || a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("ResumeToken(request)")
        } else {
            f.write_str("ResumeToken(<redacted>)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves_and_never_show() {
        let t = ResumeToken::new("0123456789abcdef0123456789abcdef");
        assert!(t.matches(&t.clone()));
        assert!(!t.matches(&ResumeToken::new("0123456789abcdef0123456789abcdee")));
        assert!(!t.matches(&ResumeToken::new("0123")));
        assert!(!ResumeToken::request().matches(&ResumeToken::request()));
        assert!(!format!("{t:?}").contains("0123"));
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"0123456789abcdef0123456789abcdef\""
        );
    }
}
