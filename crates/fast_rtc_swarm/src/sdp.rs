//! What a member says about itself in the session descriptions it signals: this project's
//! extensions, as session-level SDP attributes.
//!
//! | line | meaning |
//! |---|---|
//! | `a=x-fast-rtc-reassembly:N` | it reassembles messages split into parts up to `N` bytes ([`crate::large`]) |
//! | `a=x-fast-rtc-channels` | it takes this project's game channels ([`SwarmConfig::channels`](crate::SwarmConfig::channels)) |
//!
//! The lines are added to the SDP *as signaled* only, before its first media section; the local
//! description is not changed, and WebRTC stacks ignore session attributes they do not know. A
//! peer without them (the JavaScript reference client) is served as the reference client
//! expects: no large messages, and no channel but `fast`.
//!
//! Both descriptions are exchanged before a link opens, so each end knows what the other takes
//! before the first message. A Rust offerer opens its game channels only once the answer says
//! the remote takes them: the JS client takes the *first* channel announced to it as its `fast`
//! channel, and webrtc-rs announces an offerer's channels in no fixed order.

/// The attribute by which a member advertises the largest message it reassembles.
pub const REASSEMBLY_ATTRIBUTE: &str = "x-fast-rtc-reassembly";
/// The attribute (a flag) by which a member says it takes game channels.
pub const CHANNELS_ATTRIBUTE: &str = "x-fast-rtc-channels";

/// This project's extensions, as one end of a link advertises them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// The largest message it reassembles (`None`: it does not).
    pub reassembly: Option<usize>,
    /// Whether it takes game channels.
    pub game_channels: bool,
}

impl Extensions {
    /// What the author of `sdp` advertises at session level. A malformed value counts as no
    /// advertisement.
    pub fn read(sdp: &str) -> Self {
        let mut ext = Extensions::default();
        for line in sdp.lines().take_while(|line| !line.starts_with("m=")) {
            let Some(attribute) = line.strip_prefix("a=") else {
                continue;
            };
            let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
            match name {
                REASSEMBLY_ATTRIBUTE => ext.reassembly = value.trim().parse().ok(),
                CHANNELS_ATTRIBUTE => ext.game_channels = true,
                _ => {}
            }
        }
        ext
    }

    /// `sdp` with these extensions' lines added at session level (before the first media
    /// section; appended to an SDP without one).
    pub fn add_to(&self, sdp: &str) -> String {
        let mut lines = String::new();
        if let Some(max) = self.reassembly {
            lines.push_str(&format!("a={REASSEMBLY_ATTRIBUTE}:{max}\r\n"));
        }
        if self.game_channels {
            lines.push_str(&format!("a={CHANNELS_ATTRIBUTE}\r\n"));
        }
        if lines.is_empty() {
            return sdp.to_owned();
        }
        let media = if sdp.starts_with("m=") {
            Some(0)
        } else {
            sdp.find("\nm=").map(|i| i + 1)
        };
        match media {
            Some(at) => format!("{}{lines}{}", &sdp[..at], &sdp[at..]),
            None if sdp.is_empty() || sdp.ends_with('\n') => format!("{sdp}{lines}"),
            None => format!("{sdp}\r\n{lines}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=max-message-size:65536\r\n";

    const BOTH: Extensions = Extensions {
        reassembly: Some(16 << 20),
        game_channels: true,
    };

    #[test]
    fn the_lines_go_before_the_first_media_section_and_are_read_back() {
        let sdp = BOTH.add_to(OFFER);
        assert!(sdp.contains(
            "a=group:BUNDLE 0\r\na=x-fast-rtc-reassembly:16777216\r\na=x-fast-rtc-channels\r\nm=application"
        ));
        assert_eq!(Extensions::read(&sdp), BOTH);
        assert_eq!(Extensions::read(OFFER), Extensions::default());
        // Without media sections (the in-memory backend's descriptions) they are appended.
        assert_eq!(Extensions::read(&BOTH.add_to("memory-offer a-1")), BOTH);
        // Nothing to say: the SDP is unchanged.
        assert_eq!(Extensions::default().add_to(OFFER), OFFER);
    }

    #[test]
    fn lines_in_a_media_section_or_malformed_are_no_advertisement() {
        let in_media =
            format!("{OFFER}a={REASSEMBLY_ATTRIBUTE}:1000000\r\na={CHANNELS_ATTRIBUTE}\r\n");
        assert_eq!(Extensions::read(&in_media), Extensions::default());
        let only_size = Extensions {
            reassembly: Some(5),
            game_channels: false,
        };
        let malformed = only_size.add_to(OFFER).replace(":5", ":lots");
        assert_eq!(Extensions::read(&malformed), Extensions::default());
    }
}
