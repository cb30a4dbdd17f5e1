//! The `@fast/` control messages the core sends and acts on over the `fast` channel ([`crate::control`]):
//! close, ping and pong, track announcements.

use super::SwarmCore;
use super::io::*;
use crate::config::ChannelId;
use crate::control::Control;
use fast_rtc_protocol::ConnectionId;
use tracing::debug;
use web_time::Instant;

impl SwarmCore {
    /// Sends control message `control` on link `id`'s `fast` channel.
    pub(super) fn send_control(&mut self, id: &ConnectionId, control: &Control) {
        self.command(PeerCommand::Send {
            id: id.clone(),
            channel: ChannelId::FAST,
            payload: Payload::Text(control.encode()),
        });
    }

    pub(super) fn control(&mut self, now: Instant, id: &ConnectionId, control: Control) {
        match control {
            Control::Close => self.close_link(id, CloseReason::Remote, false),
            Control::Ping(n) => self.send_control(id, &Control::Pong(n)),
            Control::Pong(n) => {
                let Some(l) = self.links.get_mut(id) else {
                    return;
                };
                match l.ping_sent {
                    Some((sent_n, sent)) if sent_n == n => {
                        let rtt = now.saturating_duration_since(sent);
                        l.ping_sent = None;
                        l.rtt = Some(rtt);
                        if let Some(user_id) = l.remote.clone() {
                            self.event(SwarmEvent::Rtt {
                                user_id,
                                id: id.clone(),
                                rtt,
                            });
                        }
                    }
                    _ => debug!(%id, "pong for no ping in flight"),
                }
            }
            // Started by `start_large` before controls are acted on.
            Control::Large { .. } => {}
            Control::Track { name, state } => self.track_announced(id, &name, state),
            // The JS client names the transceivers it sends on (as offerer: `midOffer`) or
            // asks for one (as answerer: `transceiverRequest`): either way it has a track of
            // that name. It never announces `track` states, so this is all it tells.
            Control::MidOffer { name, .. } | Control::TransceiverRequest { name, .. } => {
                self.media_offered(id, &name);
            }
            Control::Stream { name, tracks } => {
                debug!(%id, %name, ?tracks, "the peer's stream");
            }
            Control::Other(ty) => debug!(%id, %ty, "ignoring control message"),
        }
    }
}
