//! Messages larger than one data-channel message: how they are split, reassembled and
//! negotiated.
//!
//! A WebRTC data channel carries messages up to the SCTP message size every stack accepts
//! ([`SwarmConfig::sctp_message_size`](crate::SwarmConfig::sctp_message_size), 65,536 bytes).
//! On a reliable channel this crate sends larger messages, up to
//! [`SwarmConfig::max_message_size`](crate::SwarmConfig::max_message_size) (16 MiB by
//! default), in parts:
//!
//! 1. a header, the text `@fast/{"type":"large","size":N,"text":B}` ([`Control::Large`]): the
//!    next messages on this channel are the parts of one `N`-byte message, text if `B`;
//! 2. the message's bytes as binary messages of at most `sctp_message_size` bytes each, in
//!    order, until `N` bytes have come. Nothing else is sent on that channel in between: the
//!    swarm hands a message's header and parts to the link in one go, and the channel is
//!    reliable and ordered.
//!
//! Messages that fit in one data-channel message are sent as they are, byte for byte; so are
//! all messages to peers that do not reassemble. A text message that starts with `@fast/` is
//! refused on every channel ([`SendError::ReservedPrefix`](crate::SendError::ReservedPrefix)),
//! so a header is never mistaken for data.
//!
//! **Negotiation.** A member advertises how large a message it reassembles in the session
//! descriptions it signals: the session-level line `a=x-fast-rtc-reassembly:N`
//! ([`crate::sdp`]). Large messages are only
//! sent to a peer whose description carries the line, up to the smaller of its `N` and this
//! member's own limit; past that, a send is refused with
//! [`SendError::TooLarge`](crate::SendError::TooLarge). Since both descriptions are exchanged
//! before a link opens, a large message can be sent at the first moment the link is open.
//!
//! **JavaScript peers.** The reference client `@mattkrick/fast-rtc-swarm` does not advertise
//! reassembly, so a Rust member never sends it a header or parts: it receives every message as
//! it was sent, and a Rust member's send of more than 65,536 bytes to it is refused. A JS
//! application that wants to read large messages from Rust peers would have to advertise the
//! line in its signaled SDP and implement step 2 above; nothing in the reference client does.

use crate::control::Control;
use crate::swarm::io::Payload;

/// How many data-channel messages a message of `len` bytes takes with parts of at most
/// `part_size` bytes: 1 if it fits in one, else its header and its parts.
pub fn wire_messages(len: usize, part_size: usize) -> usize {
    if len <= part_size {
        1
    } else {
        1 + len.div_ceil(part_size.max(1))
    }
}

/// The data-channel messages that carry `payload`: the payload itself if it fits in
/// `part_size` bytes, else a [`Control::Large`] header and the parts.
pub fn split(payload: Payload, part_size: usize) -> Vec<Payload> {
    if payload.len() <= part_size {
        return vec![payload];
    }
    let text = matches!(payload, Payload::Text(_));
    let bytes = match payload {
        Payload::Text(s) => s.into_bytes(),
        Payload::Binary(b) => b,
    };
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    std::iter::once(Payload::Text(Control::Large { size, text }.encode()))
        .chain(
            bytes
                .chunks(part_size.max(1))
                .map(|part| Payload::Binary(part.to_vec())),
        )
        .collect()
}

/// One large message being received on one channel.
#[derive(Debug)]
pub struct Reassembly {
    size: usize,
    text: bool,
    /// Bytes so far; stays empty while discarding.
    buf: Vec<u8>,
    received: usize,
    /// The message is over this member's limit: its parts are counted and dropped.
    discard: bool,
}

/// What a part did to a [`Reassembly`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// More parts are due.
    Pending,
    /// The message is whole.
    Done(Payload),
    /// The message is lost; the reassembly is over. The reason, for a fault report.
    Dropped(String),
}

impl Reassembly {
    /// Starts receiving a message of `size` bytes announced by a header. A message over `max`
    /// is received and dropped part by part (the channel stays in step), then reported.
    pub fn new(size: u64, text: bool, max: usize) -> Self {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        Reassembly {
            size,
            text,
            buf: Vec::new(),
            received: 0,
            discard: size > max,
        }
    }

    /// Takes the next message on the channel as a part.
    pub fn push(&mut self, part: Payload) -> Step {
        let Payload::Binary(part) = part else {
            return Step::Dropped(format!(
                "a text message arrived as a part of a {}-byte message",
                self.size
            ));
        };
        let received = self.received.saturating_add(part.len());
        if received > self.size {
            return Step::Dropped(format!(
                "the parts of a {}-byte message came to {received} bytes",
                self.size
            ));
        }
        self.received = received;
        if !self.discard {
            self.buf.extend_from_slice(&part);
        }
        if received < self.size {
            return Step::Pending;
        }
        if self.discard {
            return Step::Dropped(format!(
                "a {}-byte message is over this member's limit",
                self.size
            ));
        }
        let bytes = std::mem::take(&mut self.buf);
        if !self.text {
            return Step::Done(Payload::Binary(bytes));
        }
        match String::from_utf8(bytes) {
            Ok(text) => Step::Done(Payload::Text(text)),
            Err(_) => Step::Dropped(format!("a {}-byte text message is not UTF-8", self.size)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn small_messages_are_sent_as_they_are() {
        let p = Payload::Binary(vec![1; 100]);
        assert_eq!(split(p.clone(), 100), vec![p]);
        assert_eq!(wire_messages(100, 100), 1);
    }

    #[test]
    fn a_large_message_is_a_header_and_parts_that_reassemble() {
        for payload in [
            Payload::Binary((0..250u32).map(|i| i as u8).collect()),
            Payload::Text("é".repeat(125)), // 2-byte characters split across parts
        ] {
            let wire = split(payload.clone(), 64);
            assert_eq!(wire.len(), wire_messages(250, 64));
            let Payload::Text(header) = &wire[0] else {
                panic!("no header")
            };
            let Some(Ok(Control::Large { size, text })) = Control::parse(header) else {
                panic!("{header}")
            };
            let mut r = Reassembly::new(size, text, 1000);
            let (last, middle) = wire[1..].split_last().unwrap();
            for part in middle {
                assert!(part.len() <= 64);
                assert_eq!(r.push(part.clone()), Step::Pending);
            }
            assert_eq!(r.push(last.clone()), Step::Done(payload));
        }
    }

    #[test]
    fn a_message_over_the_limit_is_counted_through_and_dropped() {
        let mut r = Reassembly::new(300, false, 200);
        for _ in 0..2 {
            assert_eq!(r.push(Payload::Binary(vec![0; 100])), Step::Pending);
        }
        assert!(r.buf.is_empty(), "nothing kept");
        assert!(matches!(
            r.push(Payload::Binary(vec![0; 100])),
            Step::Dropped(_)
        ));
    }

    #[test]
    fn parts_that_do_not_add_up_are_dropped() {
        let mut r = Reassembly::new(100, false, 1000);
        assert!(matches!(
            r.push(Payload::Binary(vec![0; 101])),
            Step::Dropped(_)
        ));
        let mut r = Reassembly::new(100, false, 1000);
        assert!(matches!(
            r.push(Payload::Text("x".into())),
            Step::Dropped(_)
        ));
        let mut r = Reassembly::new(2, true, 1000);
        assert!(matches!(
            r.push(Payload::Binary(vec![0xff, 0xfe])),
            Step::Dropped(_)
        ));
    }
}
