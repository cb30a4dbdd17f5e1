//! Peer count, throughput and RTT in Bevy's diagnostics store.

use crate::session::{Peer, Swarm};
use bevy::diagnostic::{Diagnostic, DiagnosticPath, Diagnostics, RegisterDiagnostic};
use bevy::prelude::*;

/// Byte counters the plugin's systems add to; turned into per-second measurements.
#[derive(Resource, Default, Debug)]
pub struct FastRtcDiagnostics {
    /// Bytes received since the last measurement.
    pub bytes_in: u64,
    /// Bytes sent since the last measurement.
    pub bytes_out: u64,
}

impl FastRtcDiagnostics {
    /// Connected peers.
    pub const PEERS: DiagnosticPath = DiagnosticPath::const_new("fast_rtc/peers");
    /// Bytes received per second.
    pub const BYTES_IN_PER_SECOND: DiagnosticPath =
        DiagnosticPath::const_new("fast_rtc/bytes_in_per_second");
    /// Bytes sent per second.
    pub const BYTES_OUT_PER_SECOND: DiagnosticPath =
        DiagnosticPath::const_new("fast_rtc/bytes_out_per_second");
    /// Mean round-trip time over peers whose RTT is known, in milliseconds.
    pub const RTT_MS: DiagnosticPath = DiagnosticPath::const_new("fast_rtc/rtt_ms");
}

pub(crate) fn register(app: &mut App) {
    app.init_resource::<FastRtcDiagnostics>()
        .register_diagnostic(Diagnostic::new(FastRtcDiagnostics::PEERS))
        .register_diagnostic(
            Diagnostic::new(FastRtcDiagnostics::BYTES_IN_PER_SECOND).with_suffix("B/s"),
        )
        .register_diagnostic(
            Diagnostic::new(FastRtcDiagnostics::BYTES_OUT_PER_SECOND).with_suffix("B/s"),
        )
        .register_diagnostic(Diagnostic::new(FastRtcDiagnostics::RTT_MS).with_suffix("ms"));
}

pub(crate) fn measure(
    mut diagnostics: Diagnostics,
    mut stats: ResMut<FastRtcDiagnostics>,
    swarm: Res<Swarm>,
    peers: Query<&Peer>,
    time: Res<Time<Real>>,
) {
    let dt = time.delta_secs_f64();
    diagnostics.add_measurement(&FastRtcDiagnostics::PEERS, || swarm.peer_count() as f64);
    if dt > 0.0 {
        let (bytes_in, bytes_out) = (stats.bytes_in, stats.bytes_out);
        diagnostics.add_measurement(&FastRtcDiagnostics::BYTES_IN_PER_SECOND, || {
            bytes_in as f64 / dt
        });
        diagnostics.add_measurement(&FastRtcDiagnostics::BYTES_OUT_PER_SECOND, || {
            bytes_out as f64 / dt
        });
    }
    stats.bytes_in = 0;
    stats.bytes_out = 0;
    let rtts: Vec<f64> = peers
        .iter()
        .filter_map(|p| p.rtt)
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    if !rtts.is_empty() {
        diagnostics.add_measurement(&FastRtcDiagnostics::RTT_MS, || {
            rtts.iter().sum::<f64>() / rtts.len() as f64
        });
    }
}
