//! The data path: sending and broadcasting on channels, queues while a channel opens, large
//! messages split and reassembled ([`crate::large`]).

use super::SwarmCore;
use super::io::*;
use super::link::LinkState;
use crate::config::{ChannelId, Delivery};
use crate::large::{self, Reassembly, Step};
use fast_rtc_protocol::{CONTROL_PREFIX, ConnectionId, UserId};

impl SwarmCore {
    /// Takes a message through reassembly: while a large message is being received on
    /// `channel`, the message is its next part (`None` until the whole message comes out);
    /// otherwise it passes as it is. Faults are reported here.
    pub(super) fn reassemble(
        &mut self,
        id: &ConnectionId,
        channel: ChannelId,
        payload: Payload,
    ) -> Option<Payload> {
        let l = self.links.get_mut(id)?;
        if let Some(assembly) = l.assembly.get_mut(&channel) {
            let step = assembly.push(payload);
            if step != Step::Pending {
                l.assembly.remove(&channel);
            }
            return match step {
                Step::Pending => None,
                Step::Done(payload) => Some(payload),
                Step::Dropped(why) => {
                    let what = format!("a large message on {channel:?} of link {id}: {why}");
                    self.event(SwarmEvent::Fault(SwarmFault::Dropped(what)));
                    None
                }
            };
        }
        Some(payload)
    }

    /// A large message's header arrived on `channel`: the next messages there are its parts.
    pub(super) fn start_large(
        &mut self,
        id: &ConnectionId,
        channel: ChannelId,
        size: u64,
        text: bool,
    ) {
        let max = self.config.max_message_size;
        if !self
            .config
            .delivery(channel)
            .is_some_and(Delivery::is_reliable)
        {
            let what = format!(
                "a large message's header on unreliable channel {channel:?} of link {id} (large messages go on reliable channels only)"
            );
            self.event(SwarmEvent::Fault(SwarmFault::Dropped(what)));
            return;
        }
        if let Some(l) = self.links.get_mut(id) {
            l.assembly.insert(channel, Reassembly::new(size, text, max));
        }
    }

    /// Sends `payload` to `peer` on `channel`. A reliable channel that is not open yet keeps the
    /// message (up to [`SwarmConfig::max_queued_messages`](crate::SwarmConfig::max_queued_messages)) and sends it when it opens; an
    /// unreliable one refuses it.
    pub fn send(
        &mut self,
        peer: &UserId,
        channel: ChannelId,
        payload: Payload,
    ) -> Result<(), SendError> {
        let delivery = self.check_send(channel, &payload)?;
        let id = self
            .link_to(peer)
            .ok_or_else(|| SendError::NoSuchPeer(peer.clone()))?;
        self.send_on(&id, channel, delivery, payload)
    }

    /// What refuses `payload` on `channel` whoever it is for; else the channel's delivery.
    pub(super) fn check_send(
        &self,
        channel: ChannelId,
        payload: &Payload,
    ) -> Result<Delivery, SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        let delivery = self
            .config
            .delivery(channel)
            .ok_or(SendError::NoSuchChannel(channel))?;
        if let Payload::Text(t) = payload
            && t.starts_with(CONTROL_PREFIX)
        {
            return Err(SendError::ReservedPrefix);
        }
        let max = if delivery.is_reliable() {
            self.config.max_message_size
        } else {
            self.config.sctp_message_size
        };
        if payload.len() > max {
            return Err(SendError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        Ok(delivery)
    }

    /// How many data-channel messages a message of `len` bytes takes on the wire: 1, or a
    /// large message's header and parts ([`crate::large`]). The shell checks a link's send
    /// queue has room for that many.
    pub fn wire_messages(&self, len: usize) -> usize {
        large::wire_messages(len, self.config.sctp_message_size)
    }

    /// Hands `payload` to link `id`'s `channel`: as it is, or as a large message's header and
    /// parts, back to back.
    pub(super) fn transmit(&mut self, id: &ConnectionId, channel: ChannelId, payload: Payload) {
        if payload.len() <= self.config.sctp_message_size {
            // The common case, without a list of one.
            self.command(PeerCommand::Send {
                id: id.clone(),
                channel,
                payload,
            });
            return;
        }
        for payload in large::split(payload, self.config.sctp_message_size) {
            self.command(PeerCommand::Send {
                id: id.clone(),
                channel,
                payload,
            });
        }
    }

    pub(super) fn send_on(
        &mut self,
        id: &ConnectionId,
        channel: ChannelId,
        delivery: Delivery,
        payload: Payload,
    ) -> Result<(), SendError> {
        let max = self.config.max_queued_messages;
        let sctp = self.config.sctp_message_size;
        let Some(l) = self.links.get_mut(id) else {
            return Err(SendError::Closed);
        };
        if channel != ChannelId::FAST && !l.game_channels {
            return Err(SendError::NotTaken(channel));
        }
        // Past one data-channel message, only as large as the peer reassembles.
        let len = payload.len();
        if len > sctp && len > l.reassembles {
            let max = l.reassembles.min(self.config.max_message_size).max(sctp);
            return Err(SendError::TooLarge { len, max });
        }
        if l.open_channels.get(usize::from(channel.0)) == Some(&true) {
            self.transmit(id, channel, payload);
            return Ok(());
        }
        if l.closed_channels.get(usize::from(channel.0)) == Some(&true) {
            return Err(SendError::ChannelClosed(channel));
        }
        let queue = l.queued.entry(channel).or_default();
        let waiting: usize = queue
            .iter()
            .map(|p| large::wire_messages(p.len(), sctp))
            .sum();
        if delivery.is_reliable() && waiting + large::wire_messages(len, sctp) <= max {
            queue.push_back(payload);
            Ok(())
        } else {
            Err(SendError::NotOpen(channel))
        }
    }

    /// Sends `payload` to every peer with an open link on `channel` (see
    /// [`SwarmCore::broadcast_where`]).
    pub fn broadcast(&mut self, channel: ChannelId, payload: Payload) -> Result<Fanout, SendError> {
        self.broadcast_where(channel, payload, |_| true)
    }

    /// The one broadcast fan-out: sends `payload` to every peer with an open link on
    /// `channel`, except those whose link `has_room` refuses (the shell's check of the
    /// backend's send queue), which are listed as refused with [`SendError::Full`]. A peer
    /// whose unreliable channel is not open yet is skipped (game state is sent again next
    /// tick), and so is a peer that takes no game channels (a JS peer) on a game channel. Errors that concern the message itself (closed swarm, unknown channel, reserved
    /// prefix) are returned before anything is sent.
    pub fn broadcast_where(
        &mut self,
        channel: ChannelId,
        payload: Payload,
        mut has_room: impl FnMut(&ConnectionId) -> bool,
    ) -> Result<Fanout, SendError> {
        let delivery = self.check_send(channel, &payload)?;
        let mut fanout = Fanout::default();
        for peer in self.peers() {
            if !has_room(&peer.id) {
                fanout.refused.push((peer.user_id, SendError::Full));
                continue;
            }
            match self.send_on(&peer.id, channel, delivery, payload.clone()) {
                Ok(()) => fanout.sent.push(peer.user_id),
                Err(SendError::NotOpen(_) | SendError::NotTaken(_)) => {}
                Err(e) => fanout.refused.push((peer.user_id, e)),
            }
        }
        Ok(fanout)
    }

    /// The ids of the open links (each is claimed: it has a remote).
    pub(super) fn open_links(&self) -> Vec<ConnectionId> {
        self.links
            .iter()
            .filter(|(_, l)| l.state == LinkState::Open)
            .map(|(id, _)| id.clone())
            .collect()
    }
}
