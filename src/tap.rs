//! Channel taps: a channel's data delivered into a bounded queue that a non-Bevy consumer
//! drains (a rollback library's socket, a voice decoder) instead of as [`PeerData`]
//! messages.
//!
//! [`PeerData`]: crate::PeerData

use fast_rtc_protocol::UserId;
use fast_rtc_swarm::Payload;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// The receiving end of a tapped channel ([`Swarm::tap_channel`](crate::Swarm::tap_channel)):
/// what peers sent on it, in arrival order, filled in
/// [`FastRtcSystems::Receive`](crate::FastRtcSystems::Receive). Bounded: when it holds
/// `capacity` messages the oldest is dropped (and counted), as a datagram socket would. On a
/// reliable channel that is a loss the sender was not told of, so each one is also reported
/// as a [`SwarmError`](crate::SwarmError) with [`FastRtcError::TapOverflow`](crate::FastRtcError::TapOverflow).
/// Dropping the tap gives the channel back to [`PeerData`](crate::PeerData) messages.
#[derive(Debug)]
pub struct ChannelTap {
    queue: Arc<Mutex<Queue>>,
}

#[derive(Debug)]
struct Queue {
    items: VecDeque<(UserId, Payload)>,
    capacity: usize,
    dropped: u64,
}

/// The plugin's side of a tap.
#[derive(Debug)]
pub(crate) struct TapSender(Weak<Mutex<Queue>>);

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

impl ChannelTap {
    pub(crate) fn new(capacity: usize) -> (ChannelTap, TapSender) {
        let queue = Arc::new(Mutex::new(Queue {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
        }));
        let sender = TapSender(Arc::downgrade(&queue));
        (ChannelTap { queue }, sender)
    }

    /// Everything received since the last call, oldest first.
    pub fn drain(&self) -> Vec<(UserId, Payload)> {
        lock(&self.queue).items.drain(..).collect()
    }

    /// Messages dropped because the tap was full.
    pub fn dropped(&self) -> u64 {
        lock(&self.queue).dropped
    }
}

impl TapSender {
    /// Queues a message: `Ok` with the sender of the oldest message if it had to be dropped
    /// for room; gives the message back if the tap is gone.
    pub(crate) fn push(
        &self,
        from: UserId,
        payload: Payload,
    ) -> Result<Option<UserId>, (UserId, Payload)> {
        let Some(queue) = self.0.upgrade() else {
            return Err((from, payload));
        };
        let mut q = lock(&queue);
        let mut dropped = None;
        if q.items.len() >= q.capacity {
            dropped = q.items.pop_front().map(|(peer, _)| peer);
            q.dropped += 1;
        }
        q.items.push_back((from, payload));
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_tap_drops_the_oldest_and_counts() {
        let (tap, tx) = ChannelTap::new(2);
        for i in 0..3u8 {
            let dropped = tx
                .push(UserId::from("a"), Payload::Binary(vec![i]))
                .unwrap();
            assert_eq!(dropped, (i == 2).then(|| UserId::from("a")));
        }
        assert_eq!(tap.dropped(), 1);
        let got: Vec<_> = tap.drain().into_iter().map(|(_, p)| p).collect();
        assert_eq!(
            got,
            vec![Payload::Binary(vec![1]), Payload::Binary(vec![2])]
        );
        assert!(tap.drain().is_empty());
    }

    #[test]
    fn a_dropped_tap_gives_messages_back() {
        let (tap, tx) = ChannelTap::new(2);
        drop(tap);
        assert!(
            tx.push(UserId::from("a"), Payload::Text("x".into()))
                .is_err()
        );
    }
}
