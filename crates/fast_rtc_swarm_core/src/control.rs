//! The `@fast/` control sub-protocol: text messages on the `fast` channel that start with
//! [`CONTROL_PREFIX`] and carry a JSON object with a `type`. One type, [`Control`], reads and
//! writes them all.
//!
//! | message | sent by | meaning |
//! |---|---|---|
//! | `@fast/{"type":"close"}` | this crate, the JS client | the sender closes the link |
//! | `@fast/{"type":"ping","n":N}` | this crate, every ping interval | answer with a pong |
//! | `@fast/{"type":"pong","n":N}` | this crate | the answer to ping `N` (RTT) |
//! | `@fast/{"type":"large","size":N,"text":B}` | this crate, on any reliable channel | the next messages on this channel are the parts of one `N`-byte message (see [`crate::large`]) |
//! | `@fast/{"type":"track","name":T,"state":S}` | this crate, when a declared audio track is added, muted, unmuted or removed, and to every link that opens | track `T` is now `live`, `muted` or `removed` ([`crate::media`]) |
//! | `@fast/{"type":"stream","streamName":S,"transceiverNames":[T]}` | the JS client's `addStreams`; this crate, for each added track (`S` = `T` = the track's name) | stream `S` is made of transceivers `T` |
//! | `@fast/{"type":"midOffer","mid":M,"transceiverName":T}` | the JS client; this crate, for each added track once its transceiver's mid is known | the media section `M` carries transceiver `T` |
//! | `@fast/{"type":"transceiverRequest","transceiverName":T,"kind":K}` | the JS client as answerer | asks the offerer for a transceiver; every declared track has one here from the first offer, so it is only logged |
//!
//! The JS reference client answers no ping, so a JS peer simply has no RTT, and it is never
//! sent a `large` header: it does not advertise reassembly (see [`crate::large`]).

use crate::media::TrackAnnounce;
use fast_rtc_protocol::CONTROL_PREFIX;

/// One `@fast/` control message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// The sender closes the link.
    Close,
    /// A round-trip probe; answer with [`Control::Pong`] of the same number.
    Ping(u64),
    /// The answer to [`Control::Ping`] of the same number.
    Pong(u64),
    /// The next messages on this channel are the binary parts of one message of `size` bytes,
    /// text (UTF-8) if `text`.
    Large {
        /// The whole message's size in bytes.
        size: u64,
        /// Whether the whole message is text.
        text: bool,
    },
    /// The sender's audio track `name` is now as announced ([`crate::media`]).
    Track {
        /// The track's name.
        name: String,
        /// Its new state.
        state: TrackAnnounce,
    },
    /// The JS client's media naming: stream `name` is made of the transceivers `tracks`.
    Stream {
        /// The stream's name.
        name: String,
        /// Its transceivers' names.
        tracks: Vec<String>,
    },
    /// The JS client's media naming: the media section `mid` carries transceiver `name`.
    MidOffer {
        /// The media section's id.
        mid: String,
        /// The transceiver's name.
        name: String,
    },
    /// The JS client, as answerer, asks for a transceiver `name` of `kind`.
    TransceiverRequest {
        /// The transceiver's name.
        name: String,
        /// `audio` or `video`.
        kind: String,
    },
    /// A well-formed message of a type this crate does not know: its `type`.
    Other(String),
}

/// Transceiver names a `stream` message may list.
pub const MAX_STREAM_TRACKS: usize = 64;

/// A text on `fast` that starts with [`CONTROL_PREFIX`] but is not a control message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed @fast/ control message: {0}")]
pub struct MalformedControl(pub String);

impl Control {
    /// Reads a text received on `fast`: `None` if it is application data (no [`CONTROL_PREFIX`]).
    pub fn parse(text: &str) -> Option<Result<Control, MalformedControl>> {
        let body = text.strip_prefix(CONTROL_PREFIX)?;
        #[derive(serde::Deserialize)]
        struct Wire<'a> {
            #[serde(rename = "type", borrow)]
            ty: std::borrow::Cow<'a, str>,
            #[serde(default)]
            n: Option<u64>,
            #[serde(default)]
            size: Option<u64>,
            #[serde(default)]
            text: Option<bool>,
            #[serde(default)]
            name: Option<String>,
            #[serde(default)]
            state: Option<std::borrow::Cow<'a, str>>,
            #[serde(default)]
            mid: Option<String>,
            #[serde(default, rename = "transceiverName")]
            transceiver_name: Option<String>,
            #[serde(default, rename = "streamName")]
            stream_name: Option<String>,
            #[serde(default, rename = "transceiverNames")]
            transceiver_names: Option<Vec<String>>,
            #[serde(default)]
            kind: Option<String>,
        }
        Some(match serde_json::from_str::<Wire<'_>>(body) {
            Ok(w) => Ok(match &*w.ty {
                "close" => Control::Close,
                "ping" => Control::Ping(w.n.unwrap_or(0)),
                "pong" => Control::Pong(w.n.unwrap_or(0)),
                "large" => match w.size {
                    Some(size) if size > 0 => Control::Large {
                        size,
                        text: w.text.unwrap_or(false),
                    },
                    _ => {
                        return Some(Err(MalformedControl(
                            "a large header without a positive size".into(),
                        )));
                    }
                },
                "track" => match (w.name, w.state.as_deref().and_then(TrackAnnounce::parse)) {
                    (Some(name), Some(state)) => Control::Track { name, state },
                    _ => {
                        return Some(Err(MalformedControl(
                            "a track message without a name and a known state".into(),
                        )));
                    }
                },
                "stream" => match (w.stream_name, w.transceiver_names) {
                    (Some(name), Some(tracks)) if tracks.len() <= MAX_STREAM_TRACKS => {
                        Control::Stream { name, tracks }
                    }
                    _ => {
                        return Some(Err(MalformedControl(format!(
                            "a stream message without a name and at most {MAX_STREAM_TRACKS} transceiver names"
                        ))));
                    }
                },
                "midOffer" => match (w.mid, w.transceiver_name) {
                    (Some(mid), Some(name)) => Control::MidOffer { mid, name },
                    _ => {
                        return Some(Err(MalformedControl(
                            "a midOffer without a mid and a transceiver name".into(),
                        )));
                    }
                },
                "transceiverRequest" => match w.transceiver_name {
                    Some(name) => Control::TransceiverRequest {
                        name,
                        kind: w.kind.unwrap_or_default(),
                    },
                    None => {
                        return Some(Err(MalformedControl(
                            "a transceiverRequest without a transceiver name".into(),
                        )));
                    }
                },
                _ => Control::Other(w.ty.into_owned()),
            }),
            Err(e) => Err(MalformedControl(e.to_string())),
        })
    }

    /// The text to send on `fast`.
    pub fn encode(&self) -> String {
        match self {
            Control::Close => format!("{CONTROL_PREFIX}{{\"type\":\"close\"}}"),
            Control::Ping(n) => format!("{CONTROL_PREFIX}{{\"type\":\"ping\",\"n\":{n}}}"),
            Control::Pong(n) => format!("{CONTROL_PREFIX}{{\"type\":\"pong\",\"n\":{n}}}"),
            Control::Large { size, text } => {
                format!("{CONTROL_PREFIX}{{\"type\":\"large\",\"size\":{size},\"text\":{text}}}")
            }
            Control::Track { name, state } => format!(
                "{CONTROL_PREFIX}{{\"type\":\"track\",\"name\":{},\"state\":\"{}\"}}",
                serde_json::Value::String(name.clone()),
                state.as_str()
            ),
            Control::Stream { name, tracks } => format!(
                "{CONTROL_PREFIX}{}",
                serde_json::json!({"type": "stream", "streamName": name, "transceiverNames": tracks})
            ),
            Control::MidOffer { mid, name } => format!(
                "{CONTROL_PREFIX}{}",
                serde_json::json!({"type": "midOffer", "mid": mid, "transceiverName": name})
            ),
            Control::TransceiverRequest { name, kind } => format!(
                "{CONTROL_PREFIX}{}",
                serde_json::json!({"type": "transceiverRequest", "transceiverName": name, "kind": kind})
            ),
            Control::Other(ty) => format!(
                "{CONTROL_PREFIX}{{\"type\":{}}}",
                serde_json::Value::String(ty.clone())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        for c in [
            Control::Close,
            Control::Ping(7),
            Control::Pong(u64::MAX),
            Control::Large {
                size: 16 << 20,
                text: true,
            },
            Control::Large {
                size: 65_537,
                text: false,
            },
            Control::Track {
                name: "voice \"1\"".into(),
                state: TrackAnnounce::Muted,
            },
            Control::Stream {
                name: "voice".into(),
                tracks: vec!["voice".into(), "cam".into()],
            },
            Control::MidOffer {
                mid: "1".into(),
                name: "voice".into(),
            },
            Control::TransceiverRequest {
                name: "voice".into(),
                kind: "audio".into(),
            },
            Control::Other("renegotiate".into()),
        ] {
            assert_eq!(Control::parse(&c.encode()), Some(Ok(c.clone())), "{c:?}");
        }
    }

    #[test]
    fn the_js_clients_close_is_read() {
        let js = "@fast/{\"type\":\"close\"}";
        assert_eq!(Control::parse(js), Some(Ok(Control::Close)));
        assert_eq!(Control::Close.encode(), js);
    }

    /// The JS client 0.4.1's own texts (`FastRTCPeer.js`, `sendInternal` of these payloads).
    #[test]
    fn the_js_clients_media_messages_are_read() {
        assert_eq!(
            Control::parse(r#"@fast/{"type":"midOffer","mid":"0","transceiverName":"mic"}"#),
            Some(Ok(Control::MidOffer {
                mid: "0".into(),
                name: "mic".into()
            }))
        );
        assert_eq!(
            Control::parse(
                r#"@fast/{"type":"stream","streamName":"voice","transceiverNames":["mic"]}"#
            ),
            Some(Ok(Control::Stream {
                name: "voice".into(),
                tracks: vec!["mic".into()]
            }))
        );
        assert_eq!(
            Control::parse(
                r#"@fast/{"type":"transceiverRequest","transceiverName":"mic","kind":"audio"}"#
            ),
            Some(Ok(Control::TransceiverRequest {
                name: "mic".into(),
                kind: "audio".into()
            }))
        );
        let many: Vec<String> = (0..=MAX_STREAM_TRACKS).map(|i| i.to_string()).collect();
        let text = format!(
            "@fast/{}",
            serde_json::json!({"type": "stream", "streamName": "s", "transceiverNames": many})
        );
        assert!(matches!(Control::parse(&text), Some(Err(_))));
    }

    #[test]
    fn data_and_garbage_are_told_apart() {
        assert_eq!(Control::parse("hello"), None);
        assert!(matches!(Control::parse("@fast/{nope"), Some(Err(_))));
        assert!(matches!(Control::parse("@fast/{\"n\":1}"), Some(Err(_))));
        assert!(matches!(
            Control::parse("@fast/{\"type\":\"large\"}"),
            Some(Err(_))
        ));
        assert!(matches!(
            Control::parse("@fast/{\"type\":\"large\",\"size\":0}"),
            Some(Err(_))
        ));
        assert!(matches!(
            Control::parse("@fast/{\"type\":\"track\",\"name\":\"v\",\"state\":\"loud\"}"),
            Some(Err(_))
        ));
        assert!(matches!(
            Control::parse("@fast/{\"type\":\"track\",\"state\":\"live\"}"),
            Some(Err(_))
        ));
    }
}
