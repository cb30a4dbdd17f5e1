//! The admin API: a second listener ([`AdminConfig`]) with its own bearer secret, for
//! operators and their tools, never for players.
//!
//! - `GET /healthz` — `ok` (no secret needed: for load balancers and probes).
//! - `GET /metrics` — Prometheus metrics (OpenMetrics text). With an admin listener, `/metrics`
//!   is served here only, no longer on the signaling listener.
//! - `POST /kick` — body `{"room":"…","userId":"…","reason":"…"}`: the member is removed from
//!   the room (the room's members get the `kicked` frame and `leaveSwarm` for their links to
//!   it), its socket is closed with code 4001, and the token it connected with is refused
//!   until it expires. `200 {"kicked":true}`; `404` if that identity is not in that room; `400`
//!   for a bad body; `501` in cluster mode (not supported yet).
//!
//! Every route but `/healthz` needs `Authorization: Bearer SECRET`, else `401`. Connections to
//! the admin listener get the same deadlines and pre-authentication cap as the signaling
//! listener's ([`crate::limits::ConnectionLimits`]).

use crate::auth::Secret;
use crate::hub::ConnId;
use crate::metrics::Metrics;
use crate::owner::{Event, KickOutcome};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fast_rtc_protocol::{RoomId, UserId};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

/// The longest kick reason accepted, in bytes.
pub const MAX_REASON_BYTES: usize = 256;
/// The longest request body accepted, in bytes.
const MAX_BODY_BYTES: usize = 4096;

/// Where the admin API listens and the secret its callers present:
/// [`ServerConfig::admin`](crate::ServerConfig::admin).
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// The admin listener's address. Keep it off the public network (e.g. `127.0.0.1:9090`).
    pub listen: SocketAddr,
    /// The bearer secret (at least 32 bytes); not the token-signing secret.
    pub secret: Secret,
}

/// A kick's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KickRequest {
    /// The room.
    pub room: RoomId,
    /// The member to remove.
    pub user_id: UserId,
    /// Why, as the room's members are told (at most [`MAX_REASON_BYTES`]).
    #[serde(default)]
    pub reason: String,
}

/// What the admin routes need from the server.
pub(crate) struct AdminState {
    pub(crate) secret: Secret,
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) metrics: Arc<Metrics>,
    /// Revokes the token of a kicked socket (called by the owner task).
    pub(crate) revoke: Arc<dyn Fn(ConnId) + Send + Sync>,
}

/// The admin listener's routes.
pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_route))
        .route("/kick", post(kick_route))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(state))
}

/// Whether `headers` carry `Authorization: Bearer SECRET`, compared in constant time.
fn authorized(headers: &HeaderMap, secret: &Secret) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (given, want) = (given.trim().as_bytes(), secret.as_bytes());
    given.len() == want.len()
        && given
            .iter()
            .zip(want)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or wrong admin secret: send Authorization: Bearer SECRET",
    )
        .into_response()
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `/metrics`, on the admin listener (the signaling listener's when there is none).
pub(crate) async fn metrics_text(events: &mpsc::Sender<Event>, metrics: &Metrics) -> Response {
    let (tx, rx) = oneshot::channel();
    if events.send(Event::SyncMetrics(tx)).await.is_ok() {
        let _ = rx.await;
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

async fn metrics_route(State(state): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &state.secret) {
        return unauthorized();
    }
    metrics_text(&state.events, &state.metrics).await
}

async fn kick_route(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers, &state.secret) {
        return unauthorized();
    }
    let req: KickRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": format!("bad kick request: {e}") }).to_string(),
            );
        }
    };
    if req.reason.len() > MAX_REASON_BYTES {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": format!("reason longer than {MAX_REASON_BYTES} bytes") })
                .to_string(),
        );
    }
    let (reply, answer) = oneshot::channel();
    let revoke = state.revoke.clone();
    let event = Event::Kick {
        room: req.room.clone(),
        user: req.user_id.clone(),
        reason: req.reason.clone(),
        revoke: Box::new(move |conn| revoke(conn)),
        reply,
    };
    let outcome = match state.events.send(event).await {
        Ok(()) => answer.await.ok(),
        Err(_) => None,
    };
    match outcome {
        Some(KickOutcome::Kicked) => {
            info!(room = %req.room, user = %req.user_id, reason = %req.reason, "kicked by the admin API");
            json(StatusCode::OK, r#"{"kicked":true}"#.to_owned())
        }
        Some(KickOutcome::NotInRoom) => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "error": format!("{} is not in room {}", req.user_id, req.room) })
                .to_string(),
        ),
        Some(KickOutcome::Unsupported) => json(
            StatusCode::NOT_IMPLEMENTED,
            r#"{"error":"kick is not supported in cluster mode yet"}"#.to_owned(),
        ),
        None => json(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"the server is shutting down"}"#.to_owned(),
        ),
    }
}
