//! The per-connection task, written once for every platform.
//!
//! A backend runs one such task per RTCPeerConnection. It carries out the connection's
//! [`PeerCommand`]s in order: creates `fast` and the offer, creates the game channels when told
//! (after an answer that asks for them), adds the declared audio tracks, sets remote
//! descriptions and answers, adds candidates, routes the channels the remote announces by
//! label, sends data and audio, flushes and closes. What differs between webrtc-rs and the
//! browser is behind [`RtcPeer`] and [`RtcChannel`], which only do what they are told; the flow
//! is here.

use crate::backend::{EventSender, NewConnection, SendQueue};
use crate::platform::time::{now, sleep};
use fast_rtc_protocol::{ConnectionId, IceCandidate, IceServer};
use fast_rtc_swarm_core::config::{ChannelId, Delivery, SwarmConfig};
use fast_rtc_swarm_core::media::TrackId;
use fast_rtc_swarm_core::swarm::{Payload, PeerCommand, PeerEvent, PeerFailure, Role, SdpKind};
use futures_lite::future;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::time::Duration;
use tracing::debug;

/// How long [`PeerCommand::Close`] waits for the channels to hand what was sent to the remote
/// (the `@fast/` close notice most of all) before the connection is closed under them.
const FLUSH_FOR: Duration = Duration::from_millis(250);

/// What a platform reports that the connection task must act on.
#[allow(dead_code)] // `Event` is built by the browser platform; native channels report directly
pub(crate) enum Report<R> {
    /// Hand this to the swarm, in order.
    Event(PeerEvent),
    /// The remote announced a data channel.
    Channel {
        /// Its label.
        label: String,
        /// The platform's channel, not watched yet.
        raw: R,
    },
}

/// One platform's RTCPeerConnection, as the connection task drives it. Errors are the
/// platform's own words; the task turns them into [`PeerFailure::Platform`].
///
/// Each method does one step and nothing else. A platform may do extra work inside (the
/// native backend's wake-ups of webrtc-rs), but never decides what the connection does next.
pub(crate) trait RtcPeer {
    /// A remote-announced channel before it is watched.
    type RawChannel;
    /// A watched data channel: its opens, messages and close are reported as
    /// [`PeerEvent`]s under its [`ChannelId`].
    type Channel: RtcChannel;

    /// Creates and watches a local data channel.
    async fn create_channel(
        &mut self,
        id: ChannelId,
        label: &str,
        delivery: Delivery,
    ) -> Result<Self::Channel, String>;
    /// Watches a channel the remote announced, under `id`.
    fn adopt(&mut self, id: ChannelId, raw: Self::RawChannel) -> Self::Channel;
    /// Closes a channel the remote announced that this swarm does not know.
    async fn refuse(&mut self, raw: Self::RawChannel);
    /// Creates an offer, sets it as local description and returns its SDP.
    async fn offer(&mut self) -> Result<String, String>;
    /// Creates an answer, sets it as local description and returns its SDP.
    async fn answer(&mut self) -> Result<String, String>;
    /// Restarts ICE (fresh credentials and candidates, gathered with `ice_servers`), creates
    /// the offer that carries the restart, sets it as local description and returns its SDP.
    async fn restart_offer(&mut self, ice_servers: &[IceServer]) -> Result<String, String>;
    /// Sets the remote description.
    async fn set_remote(&mut self, kind: SdpKind, sdp: String) -> Result<(), String>;
    /// Adds a remote candidate.
    async fn add_candidate(&mut self, candidate: IceCandidate) -> Result<(), String>;
    /// Adds one send-and-receive audio track per name ([`fast_rtc_swarm_core::media`]), before the offer
    /// (an offerer) or before the remote offer (an answerer, whose tracks take the offer's
    /// audio sections in order). Remote audio is reported as [`PeerEvent::Audio`].
    async fn add_audio_tracks(&mut self, names: &[String]) -> Result<(), String>;
    /// Sends one encoded audio packet on track `track`.
    async fn send_audio(&mut self, track: TrackId, packet: Vec<u8>) -> Result<(), String>;
    /// The mids of the declared tracks' transceivers that a description has set so far
    /// (reported as [`PeerEvent::TrackMids`]).
    async fn track_mids(&mut self) -> Vec<(TrackId, String)>;
    /// The next report. Platform-internal wake-ups are handled inside; `None` once the
    /// platform reports nothing more. Must be cancel-safe: the connection task drops this
    /// future whenever a command is ready first, so a wake-up taken and not yet handled is
    /// kept for the next call, never lost.
    async fn next_report(&mut self) -> Option<Report<Self::RawChannel>>;
    /// Closes the connection and releases everything it holds.
    async fn close(self);
}

/// One platform's data channel.
pub(crate) trait RtcChannel {
    /// Sends one message, waiting while the channel's own buffer is full.
    async fn send(&self, payload: Payload) -> Result<(), String>;
    /// Bytes handed to the channel and not yet sent (0 once it is not open).
    async fn unsent(&self) -> usize;
}

/// Runs one connection: builds its peer with `build`, then carries out its commands until it
/// is closed. A failure is reported as [`PeerEvent::Failed`].
///
/// `build` is a function, not a future, so that its (large: webrtc-rs's builder is ~30 KiB)
/// future is made inside this one and shares its space with the handshake's state instead of
/// sitting beside it for the connection's whole life.
pub(crate) async fn run<P: RtcPeer, F: Future<Output = Result<P, String>>>(
    new: NewConnection,
    build: impl FnOnce() -> F,
    config: &SwarmConfig,
    events: &EventSender,
) {
    let NewConnection {
        id,
        role,
        commands,
        queue,
        .. // the ICE servers went to `build`
    } = new;
    let result = match build().await {
        Ok(peer) => {
            let mut task = Connection {
                id: &id,
                config,
                events,
                queue: &queue,
                channels: HashMap::new(),
                mids: Vec::new(),
            };
            let result = task.drive(peer, role, commands).await;
            debug!(%id, "connection closed");
            result
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        debug!(%id, error = %e, "connection failed");
        let _ = events
            .send((id, PeerEvent::Failed(PeerFailure::Platform(e))))
            .await;
    }
}

/// The state of one connection task.
struct Connection<'a, C> {
    id: &'a ConnectionId,
    config: &'a SwarmConfig,
    events: &'a EventSender,
    queue: &'a SendQueue,
    channels: HashMap<ChannelId, C>,
    /// The track mids last reported.
    mids: Vec<(TrackId, String)>,
}

/// What woke the connection task.
enum ConnectionWake<R> {
    Command(Option<PeerCommand>),
    Report(Option<Report<R>>),
}

/// Whether the task goes on after a command.
enum Next {
    Continue,
    Stop,
}

impl<C: RtcChannel> Connection<'_, C> {
    async fn emit(&self, event: PeerEvent) -> bool {
        self.events.send((self.id.clone(), event)).await.is_ok()
    }

    /// Reports the declared tracks' mids when a description changed them.
    async fn report_mids<P: RtcPeer<Channel = C>>(&mut self, peer: &mut P) {
        if self.config.audio_tracks.is_empty() {
            return;
        }
        let mids = peer.track_mids().await;
        if !mids.is_empty() && mids != self.mids {
            self.mids.clone_from(&mids);
            self.emit(PeerEvent::TrackMids(mids)).await;
        }
    }

    async fn drive<P: RtcPeer<Channel = C>>(
        &mut self,
        mut peer: P,
        role: Role,
        commands: async_channel::Receiver<PeerCommand>,
    ) -> Result<(), String> {
        let result = self.handshake_and_loop(&mut peer, role, commands).await;
        // Always close explicitly: a dropped webrtc-rs connection keeps running.
        self.channels.clear();
        peer.close().await;
        result
    }

    async fn handshake_and_loop<P: RtcPeer<Channel = C>>(
        &mut self,
        peer: &mut P,
        role: Role,
        commands: async_channel::Receiver<PeerCommand>,
    ) -> Result<(), String> {
        if !self.config.audio_tracks.is_empty() {
            peer.add_audio_tracks(&self.config.audio_tracks).await?;
        }
        if role == Role::Offerer {
            // Only `fast` before the offer; game channels follow the answer if the remote takes
            // them (PeerCommand::OpenChannels).
            self.open_channels(peer, 1).await?;
            let sdp = peer.offer().await?;
            self.emit(PeerEvent::LocalDescription {
                kind: SdpKind::Offer,
                sdp,
            })
            .await;
            self.report_mids(peer).await;
        }
        loop {
            let command = async { ConnectionWake::Command(commands.recv().await.ok()) };
            let report = async { ConnectionWake::Report(peer.next_report().await) };
            match future::or(command, report).await {
                ConnectionWake::Command(Some(command)) => {
                    if let Next::Stop = self.command(peer, command).await? {
                        return Ok(());
                    }
                }
                // Every sender gone: the backend was dropped.
                ConnectionWake::Command(None) => {
                    self.flush().await;
                    return Ok(());
                }
                ConnectionWake::Report(Some(Report::Event(event))) => {
                    let failed = matches!(event, PeerEvent::Failed(_));
                    if !self.emit(event).await || failed {
                        return Ok(());
                    }
                }
                ConnectionWake::Report(Some(Report::Channel { label, raw })) => {
                    match self.config.channel_by_label(&label) {
                        Some(cid) if !self.channels.contains_key(&cid) => {
                            let channel = peer.adopt(cid, raw);
                            self.channels.insert(cid, channel);
                        }
                        _ => {
                            debug!(id = %self.id, %label, "closing a channel this swarm does not know");
                            peer.refuse(raw).await;
                        }
                    }
                }
                ConnectionWake::Report(None) => {
                    return Err("the platform stopped reporting on this connection".into());
                }
            }
        }
    }

    async fn command<P: RtcPeer<Channel = C>>(
        &mut self,
        peer: &mut P,
        command: PeerCommand,
    ) -> Result<Next, String> {
        match command {
            PeerCommand::SetRemote { kind, sdp, .. } => {
                peer.set_remote(kind, sdp).await?;
                if kind == SdpKind::Offer {
                    let sdp = peer.answer().await?;
                    self.emit(PeerEvent::LocalDescription {
                        kind: SdpKind::Answer,
                        sdp,
                    })
                    .await;
                }
                self.report_mids(peer).await;
            }
            PeerCommand::RestartIce { ice_servers, .. } => {
                let sdp = peer.restart_offer(&ice_servers).await?;
                self.emit(PeerEvent::LocalDescription {
                    kind: SdpKind::Offer,
                    sdp,
                })
                .await;
            }
            PeerCommand::AddCandidate {
                candidate: Some(candidate),
                ..
            } => {
                // One bad candidate does not doom the link: others may work.
                if let Err(e) = peer.add_candidate(candidate).await {
                    debug!(id = %self.id, error = %e, "remote candidate refused");
                }
            }
            PeerCommand::AddCandidate {
                candidate: None, ..
            } => {}
            PeerCommand::OpenChannels { .. } => self.open_channels(peer, usize::MAX).await?,
            PeerCommand::Send {
                channel, payload, ..
            } => {
                let len = payload.len();
                let sent = match self.channels.get(&channel) {
                    Some(ch) => ch.send(payload).await,
                    None => Err(format!("no channel {channel:?} on this link")),
                };
                self.queue.done(len);
                // The application was told `Ok`: a loss is reported, never only logged.
                if let Err(error) = sent {
                    debug!(id = %self.id, ?channel, %error, "send failed");
                    self.emit(PeerEvent::SendFailed { channel, error }).await;
                }
            }
            PeerCommand::SendAudio { track, packet, .. } => {
                if let Err(e) = peer.send_audio(track, packet).await {
                    debug!(id = %self.id, ?track, error = %e, "audio packet not sent");
                }
            }
            PeerCommand::Close { .. } => {
                self.flush().await;
                return Ok(Next::Stop);
            }
            PeerCommand::Create { .. } => {}
        }
        Ok(Next::Continue)
    }

    /// Creates the first `count` of the swarm's channels ([`SwarmConfig::all_channels`]: `fast`
    /// first) that this connection does not have yet.
    async fn open_channels<P: RtcPeer<Channel = C>>(
        &mut self,
        peer: &mut P,
        count: usize,
    ) -> Result<(), String> {
        for (cid, label, delivery) in self.config.all_channels().take(count) {
            if let Entry::Vacant(slot) = self.channels.entry(cid) {
                slot.insert(peer.create_channel(cid, label, delivery).await?);
            }
        }
        Ok(())
    }

    /// Gives the channels up to [`FLUSH_FOR`] to hand on what was sent.
    async fn flush(&self) {
        let deadline = now() + FLUSH_FOR;
        for channel in self.channels.values() {
            while channel.unsent().await > 0 && now() < deadline {
                sleep(Duration::from_millis(2)).await;
            }
        }
    }
}
