//! The frames the hub keeps for a held member ([the hub's docs](super#resuming-a-session)):
//! in order, bounded in count and bytes; past a bound the hold is over.

use fast_rtc_protocol::{ServerMsg, encode};
use std::collections::VecDeque;

/// The frames kept for one held member, in order, bounded.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) frames: VecDeque<ServerMsg>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    /// A frame did not fit: the member cannot be resumed (it missed one), it leaves.
    pub(crate) overflowed: bool,
}

impl Held {
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        Held {
            frames: VecDeque::new(),
            bytes: 0,
            max_frames,
            max_bytes,
            overflowed: false,
        }
    }

    /// Keeps `msg` for the member's resume, or, past a bound, drops all it kept and marks
    /// the hold over.
    pub(crate) fn keep(&mut self, msg: ServerMsg) {
        if self.overflowed {
            return;
        }
        let len = encode(&msg).len();
        if self.frames.len() >= self.max_frames || self.bytes + len > self.max_bytes {
            self.overflowed = true;
            self.frames = VecDeque::new();
            self.bytes = 0;
            return;
        }
        self.bytes += len;
        self.frames.push_back(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_kept_in_order_until_a_bound_then_none() {
        let mut held = Held::new(2, 1024);
        held.keep(ServerMsg::OfferRequest);
        held.keep(ServerMsg::LeaveSwarm { id: "a".into() });
        assert_eq!(held.frames.len(), 2);
        assert!(!held.overflowed);
        held.keep(ServerMsg::OfferRequest);
        assert!(held.overflowed && held.frames.is_empty(), "{held:?}");
        let mut held = Held::new(100, 30);
        held.keep(ServerMsg::OfferRequest); // {"type":"offerRequest"}: 23 bytes
        held.keep(ServerMsg::OfferRequest);
        assert!(held.overflowed, "the byte bound");
    }
}
