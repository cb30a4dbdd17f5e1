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
            frames_per_second: 100,
            frame_burst: 600,
            bytes_per_second: 256 * 1024,
            byte_burst: 1024 * 1024,
            max_offer_wait: Duration::from_secs(5),
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
}
