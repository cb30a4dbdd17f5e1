//! The ICE servers a server hands its members: the shape of the browser's `RTCIceServer`.

use serde::{Deserialize, Deserializer, Serialize};

/// A STUN or TURN server, with credentials for TURN: the shape of the browser's
/// `RTCIceServer` (`{"urls":[…],"username":…,"credential":…}`), so a page can pass a list of
/// them straight to `new RTCPeerConnection({iceServers})`.
///
/// On the wire `urls` is always written as an array and read as an array or a single string
/// (both are valid `RTCIceServer`s); `username` and `credential` are left out when empty.
/// `Debug` prints `credential` as `<redacted>` (when set), so a logged frame or configuration
/// never shows it.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, …
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    /// TURN username (empty for STUN).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// TURN credential (empty for STUN). Never printed by `Debug`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub credential: String,
}

impl IceServer {
    /// A STUN server.
    pub fn stun(url: impl Into<String>) -> Self {
        IceServer {
            urls: vec![url.into()],
            ..Default::default()
        }
    }

    /// A TURN server with credentials.
    pub fn turn(
        url: impl Into<String>,
        username: impl Into<String>,
        credential: impl Into<String>,
    ) -> Self {
        IceServer {
            urls: vec![url.into()],
            username: username.into(),
            credential: credential.into(),
        }
    }
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let credential = if self.credential.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &credential)
            .finish()
    }
}

/// `"urls"` as an array of strings or one string.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Urls {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Urls::deserialize(d)? {
        Urls::One(url) => vec![url],
        Urls::Many(urls) => urls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_credential() {
        let s = IceServer::turn("turn:t.example:3478", "1700000000:alice", "s3cr3t+cred=");
        let text = format!("{s:?} {s:#?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("<redacted>") && text.contains("1700000000:alice"));
        assert!(!format!("{:?}", IceServer::stun("stun:s.example")).contains("redacted"));
    }

    #[test]
    fn urls_read_as_one_string_or_many() {
        let one: IceServer = serde_json::from_str(r#"{"urls":"stun:a:1"}"#).unwrap();
        assert_eq!(one, IceServer::stun("stun:a:1"));
        let many: IceServer =
            serde_json::from_str(r#"{"urls":["turn:a:1"],"username":"u","credential":"c"}"#)
                .unwrap();
        assert_eq!(many, IceServer::turn("turn:a:1", "u", "c"));
        assert_eq!(
            serde_json::to_string(&IceServer::stun("stun:a:1")).unwrap(),
            r#"{"urls":["stun:a:1"]}"#
        );
        assert!(serde_json::from_str::<IceServer>(r#"{"urls":7}"#).is_err());
        assert!(serde_json::from_str::<IceServer>(r#"{}"#).is_err());
    }
}
