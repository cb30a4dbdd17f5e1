//! What a member says about itself in the session descriptions it signals: this project's
//! extensions, as session-level SDP attributes.
//!
//! | line | meaning |
//! |---|---|
//! | `a=x-fast-rtc-reassembly:N` | it reassembles messages split into parts up to `N` bytes ([`crate::large`]) |
//! | `a=x-fast-rtc-channels` | it takes this project's game channels ([`SwarmConfig::channels`](crate::SwarmConfig::channels)) |
//!
//! The signaled SDP also names the declared audio tracks ([`crate::media`]): the `n`-th audio
//! section's stream id (`a=msid:<stream> <track>`) is the `n`-th declared track's name
//! ([`name_audio_streams`]), which is how the remote maps a received track to its
//! [`TrackId`](crate::TrackId). webrtc-rs tracks already carry the name; the browser picks a
//! random stream id of its own (a `MediaStream`'s id cannot be chosen), so the signaled copy
//! says the name instead. Only the signaled copy: the stream id is signaling only (RTP carries
//! SSRCs), so the local description may keep the browser's.
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

/// The attribute (a flag) by which a member says it takes ICE restarts on an open link
/// (a new offer on the link's id, relayed by the server; [`crate::swarm#ice-restarts`]).
pub const RESTART_ATTRIBUTE: &str = "x-fast-rtc-restart";

/// This project's extensions, as one end of a link advertises them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// The largest message it reassembles (`None`: it does not).
    pub reassembly: Option<usize>,
    /// Whether it takes game channels.
    pub game_channels: bool,
    /// Whether it takes ICE restarts.
    pub restart: bool,
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
                RESTART_ATTRIBUTE => ext.restart = true,
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
        if self.restart {
            lines.push_str(&format!("a={RESTART_ATTRIBUTE}\r\n"));
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

/// `sdp` with the stream id of its `n`-th audio section set to `names[n]`: in that section's
/// `a=msid:<stream> <track>` line (added as `a=msid:<name> <name>` if the section has none)
/// and in its `a=ssrc:<ssrc> msid:` lines. Sections past `names`, and every other kind, are
/// left as they are; an SDP without audio sections comes back unchanged. Names are SDP tokens
/// (no whitespace), as webrtc-rs also signals them.
pub fn name_audio_streams(sdp: &str, names: &[String]) -> String {
    if names.is_empty() || !sdp.contains("m=audio") {
        return sdp.to_owned();
    }
    let mut out = String::with_capacity(sdp.len() + 64 * names.len());
    let mut audio = 0usize;
    // The name of the audio section being copied, and whether it had an msid line yet.
    let mut section: Option<(&str, bool)> = None;
    let end_section = |out: &mut String, section: Option<(&str, bool)>| {
        if let Some((name, false)) = section {
            out.push_str(&format!("a=msid:{name} {name}\r\n"));
        }
    };
    for line in sdp.split_inclusive('\n') {
        let text = line.trim_end_matches(['\r', '\n']);
        if text.starts_with("m=") {
            end_section(&mut out, section.take());
            if text.starts_with("m=audio") {
                section = names.get(audio).map(|n| (n.as_str(), false));
                audio += 1;
            }
            out.push_str(line);
            continue;
        }
        let Some((name, has_msid)) = section.as_mut() else {
            out.push_str(line);
            continue;
        };
        let eol = &line[text.len()..];
        if let Some(value) = text.strip_prefix("a=msid:") {
            *has_msid = true;
            let track = value.split_once(' ').map_or(*name, |(_, t)| t);
            out.push_str(&format!("a=msid:{name} {track}{eol}"));
        } else if let Some((ssrc, value)) = text
            .strip_prefix("a=ssrc:")
            .and_then(|rest| rest.split_once(" msid:"))
        {
            let track = value.split_once(' ').map_or(*name, |(_, t)| t);
            out.push_str(&format!("a=ssrc:{ssrc} msid:{name} {track}{eol}"));
        } else {
            out.push_str(line);
        }
    }
    if !out.ends_with('\n') && matches!(section, Some((_, false))) {
        out.push_str("\r\n");
    }
    end_section(&mut out, section);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two audio sections as Chromium signals them (random stream ids, one without a stream)
    /// and a data section.
    const CHROME: &str = "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\na=msid:5f1c-rand 7a2b-track\r\na=ssrc:42 cname:x\r\na=ssrc:42 msid:5f1c-rand 7a2b-track\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=sendrecv\r\na=msid:- 9c9c-track\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";

    #[test]
    fn audio_sections_carry_the_declared_names_as_stream_ids() {
        let names = vec!["voice".to_owned(), "music".to_owned()];
        let sdp = name_audio_streams(CHROME, &names);
        assert!(sdp.contains("a=mid:0\r\na=sendrecv\r\na=msid:voice 7a2b-track\r\n"));
        assert!(sdp.contains("a=ssrc:42 msid:voice 7a2b-track\r\n"));
        assert!(sdp.contains("a=ssrc:42 cname:x\r\n"));
        assert!(sdp.contains("a=msid:music 9c9c-track\r\nm=application"));
        assert!(!sdp.contains("rand") && !sdp.contains("a=msid:-"));
        // Idempotent: webrtc-rs's descriptions already say the names.
        assert_eq!(name_audio_streams(&sdp, &names), sdp);
        // Fewer names than sections: the rest is left alone.
        let one = name_audio_streams(CHROME, &names[..1]);
        assert!(one.contains("a=msid:voice 7a2b-track") && one.contains("a=msid:- 9c9c-track"));
    }

    #[test]
    fn a_section_without_msid_gets_one_and_other_sdp_is_unchanged() {
        let bare = "v=0\r\nm=audio 9 RTP/SAVPF 111\r\na=mid:0\r\nm=application 9 x\r\n";
        assert_eq!(
            name_audio_streams(bare, &["voice".to_owned()]),
            "v=0\r\nm=audio 9 RTP/SAVPF 111\r\na=mid:0\r\na=msid:voice voice\r\nm=application 9 x\r\n"
        );
        let last = "v=0\r\nm=audio 9 RTP/SAVPF 111\r\na=mid:0";
        assert_eq!(
            name_audio_streams(last, &["voice".to_owned()]),
            format!("{last}\r\na=msid:voice voice\r\n")
        );
        assert_eq!(name_audio_streams(OFFER, &["voice".to_owned()]), OFFER);
        assert_eq!(name_audio_streams(CHROME, &[]), CHROME);
    }

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=max-message-size:65536\r\n";

    const BOTH: Extensions = Extensions {
        reassembly: Some(16 << 20),
        game_channels: true,
        restart: true,
    };

    #[test]
    fn the_lines_go_before_the_first_media_section_and_are_read_back() {
        let sdp = BOTH.add_to(OFFER);
        assert!(sdp.contains(
            "a=group:BUNDLE 0\r\na=x-fast-rtc-reassembly:16777216\r\na=x-fast-rtc-channels\r\na=x-fast-rtc-restart\r\nm=application"
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
            ..Extensions::default()
        };
        let malformed = only_size.add_to(OFFER).replace(":5", ":lots");
        assert_eq!(Extensions::read(&malformed), Extensions::default());
    }
}
