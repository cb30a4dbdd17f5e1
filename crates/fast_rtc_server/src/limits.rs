//! Bounds on everything a client can make the server hold or do.

use std::time::Duration;

/// Every size, count and rate the server bounds. Exceeding one is a `signal_error` (see
/// [`fast_rtc_protocol::ErrorCode`]), never a crash.
///
/// The defaults suit a game room of up to 32 players on one server; all can be changed with the
/// CLI flags of the same names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest text frame read, in bytes (`frame_too_large` above it). An SDP offer is a few KiB.
    /// The WebSocket layer itself drops a socket that sends a frame larger than
    /// [`Limits::transport_max_bytes`].
    pub max_frame_bytes: usize,
    /// Longest connection id, room id or user id, in bytes (`invalid_field` above it).
    pub max_id_bytes: usize,
    /// Members in one room (`room_full` above it).
    pub max_members_per_room: usize,
    /// Unclaimed pre-made offers kept per member (`too_many_offers` above it). A client's
    /// `peerBuffer` must not exceed it.
    pub max_chunks_per_member: usize,
    /// Signals (the offer and its candidates) kept in one pending offer (`queue_full`).
    pub max_signals_per_chunk: usize,
    /// Candidates kept per member for connection ids whose offer has not arrived (`queue_full`).
    pub max_pending_candidates: usize,
    /// Frames kept per socket before its `init` (`queue_full`).
    pub max_frames_before_init: usize,
    /// Bytes of frames kept per socket before its `init` (`queue_full`), as encoded.
    pub max_bytes_before_init: usize,
    /// Sustained frames per second per socket (`rate_limited` above it).
    pub frames_per_second: u32,
    /// Frames a socket may send at once before the rate applies. A joiner answers every member at
    /// once (an answer and a few candidates each), so keep it well above
    /// `max_members_per_room × 8`.
    pub frame_burst: u32,
    /// Sustained bytes per second per socket (`rate_limited` above it). Frames are small; this
    /// keeps one member from flooding another with relayed data faster than it can read, which
    /// would get the reader dropped as a slow consumer.
    pub bytes_per_second: u32,
    /// Bytes a socket may send at once before the byte rate applies. A join into a full room is
    /// about 100 KB.
    pub byte_burst: u32,
    /// How long a joiner waits for a member's offer when the member had none ready (it takes a
    /// client tens of milliseconds to make one). Past it the member gets `offer_overdue` and
    /// the pair is linked the other way, with the joiner's offer, so a member that never
    /// refills strands nobody. Keep it below the clients' handshake timeout (10 s).
    pub max_offer_wait: Duration,
    /// Bytes one pending offer may hold: its SDP and its candidates, measured as they are
    /// encoded in the `accept` frame that hands it to a joiner (`queue_full` past it, to the
    /// member that parks it; the offer already parked stays usable). It keeps every `accept`
    /// far below the socket's write buffer ([`Limits::write_buffer_bytes`]), so no joiner is
    /// ever dropped for an `accept` too large to write.
    pub max_chunk_bytes: usize,
    /// Bytes one member may keep parked at once: its pending offers and the candidates it sent
    /// before their offer (`too_many_offers` or `queue_full` past it).
    pub max_parked_bytes_per_member: usize,
    /// `init`s one identity may send at once before [`Limits::joins_per_minute`] applies
    /// (`rate_limited` past it). Every join asks each member of the room for a new offer, so
    /// this also bounds the `offerRequest`s that one identity's join churn costs the others.
    pub join_burst: u32,
    /// Sustained `init`s per minute per identity, over all its sockets.
    pub joins_per_minute: u32,
    /// How long the server keeps the place of a resumable member whose socket died without
    /// `close` ([resuming a session](crate::hub#resuming-a-session)): its links, pending offers and identity stay
    /// and frames for it are kept, until a new socket resumes it or this runs out (then it
    /// leaves as if it had just gone). Default 25 s: a little above the swarm's restore
    /// window (`SwarmConfig::restore_timeout`, 20 s), past which its peers close their links
    /// to it anyway. Zero turns resumption off (no `resumeToken` is handed out).
    pub resume_grace: Duration,
    /// Members held for resumption at once in one room; a member whose socket dies past it
    /// leaves at once, as without resumption.
    pub max_held_per_room: usize,
    /// Members held for resumption at once on the server.
    pub max_held_members: usize,
    /// Frames kept for one held member (relays, `accept`, `leaveSwarm`…); one more ends its
    /// hold: it leaves when the server next looks (its resume then joins afresh).
    pub max_held_frames: usize,
    /// Bytes (JSON text) kept for one held member, bounded as `max_held_frames`.
    pub max_held_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_id_bytes: 128,
            max_members_per_room: 32,
            max_chunks_per_member: 8,
            max_signals_per_chunk: 64,
            max_pending_candidates: 64,
            max_frames_before_init: 64,
            max_bytes_before_init: 256 * 1024,
            frames_per_second: 100,
            frame_burst: 600,
            bytes_per_second: 256 * 1024,
            byte_burst: 1024 * 1024,
            max_offer_wait: Duration::from_secs(5),
            max_chunk_bytes: 64 * 1024,
            max_parked_bytes_per_member: 256 * 1024,
            join_burst: 20,
            joins_per_minute: 60,
            resume_grace: Duration::from_secs(25),
            max_held_per_room: 8,
            max_held_members: 1024,
            max_held_frames: 256,
            max_held_bytes: 256 * 1024,
        }
    }
}

impl Limits {
    /// The frame size above which the WebSocket layer drops the socket instead of answering
    /// `frame_too_large`: four times [`Limits::max_frame_bytes`], at least 1 MiB.
    pub fn transport_max_bytes(&self) -> usize {
        self.max_frame_bytes.saturating_mul(4).max(1 << 20)
    }

    /// The most one socket's WebSocket layer buffers for writing: twice the largest frame the
    /// server ever sends (an `accept` of [`Limits::max_chunk_bytes`], or a relayed frame of up
    /// to [`Limits::max_frame_bytes`]) plus room for its JSON envelope. Every single frame
    /// fits, so a write fails only when the reader stalls.
    pub fn write_buffer_bytes(&self) -> usize {
        self.max_frame_bytes
            .max(self.max_chunk_bytes)
            .saturating_add(FRAME_ENVELOPE_BYTES)
            .saturating_mul(2)
    }
}

/// What a server frame adds around the signals it carries (type, ids, field names), at most:
/// ids are bounded by [`Limits::max_id_bytes`].
const FRAME_ENVELOPE_BYTES: usize = 4 * 1024;

/// Bounds on connections and sockets, enforced by the shell ([`crate::server`]) before and
/// around the [`Hub`](crate::Hub): how long and how many connections may wait to be
/// authenticated, how many sockets one identity or one source address may hold, and how much
/// one socket may have queued. A per-source cap of 0 turns that cap off (e.g. behind a proxy,
/// where every connection comes from the proxy's address).
///
/// A source is an IPv4 address, or an IPv6 /64 prefix (what one host usually holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers, from the moment the server
    /// waits for them (after accepting, or after the previous response on a kept-alive
    /// connection). A connection past it is dropped.
    pub header_read_timeout: Duration,
    /// Connections not yet upgraded to a signaling socket (TLS handshake, headers, the
    /// response to `/healthz` or a refused upgrade) at most. At the cap, a new connection
    /// evicts the oldest pending one of the source that holds the most, so a flood of stalled
    /// connections from a few sources never keeps an honest client out.
    pub max_preauth: usize,
    /// Pending connections (as [`ConnectionLimits::max_preauth`]) one source may hold; its
    /// next one evicts its own oldest. 0: no per-source cap.
    pub max_preauth_per_source: usize,
    /// Open signaling sockets per identity (a token's `sub`), over all rooms: HTTP 429 past
    /// it, so one token cannot fill the server.
    pub max_sockets_per_identity: usize,
    /// Open signaling sockets per source: HTTP 429 past it. 0: no per-source cap.
    pub max_sockets_per_source: usize,
    /// How long a socket may stay open without having joined a room (its `init` answered by
    /// `joined`): past it the socket is closed with code 1008 `init_timeout`.
    pub init_timeout: Duration,
    /// Bytes of frames queued for one socket at most (the server's outbound queue, before the
    /// WebSocket layer). A socket that falls this far behind is dropped (close code 1008),
    /// like one past [`ServerConfig::outbound_queue`](crate::ServerConfig::outbound_queue)
    /// frames.
    pub max_queued_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(5),
            max_preauth: 1024,
            max_preauth_per_source: 128,
            max_sockets_per_identity: 8,
            max_sockets_per_source: 1024,
            init_timeout: Duration::from_secs(15),
            max_queued_bytes: 4 * 1024 * 1024,
        }
    }
}
