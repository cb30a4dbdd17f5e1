//! Authentication: who is on the other end of a socket, decided before the WebSocket upgrade.

use crate::hub::{Identity, RoomGrant};
use fast_rtc_protocol::{RoomId, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The shortest secret accepted for HS256, in bytes (the hash's output size, RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest `sub` accepted, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 128;

/// Why a token was refused. The server answers every one with HTTP 401 before the upgrade.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `token` query parameter.
    #[error("missing token: pass it as the `token` query parameter")]
    Missing,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The signature, algorithm, format or a claim is wrong.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Decides who a token belongs to. Implement it to plug in your own check (a session lookup, a
/// call to your game backend); [`JwtAuthenticator`] is the built-in one.
pub trait Authenticator: Send + Sync + 'static {
    /// The identity of `token`'s holder, or why it is refused.
    fn authenticate(&self, token: &str)
    -> impl Future<Output = Result<Identity, AuthError>> + Send;

    /// When `token` (already accepted by [`Authenticator::authenticate`]) expires, if known:
    /// how long the server keeps a kicked member's token revoked. The default knows none (the
    /// revocation then lasts a day).
    fn expiry(&self, token: &str) -> Option<SystemTime> {
        let _ = token;
        None
    }
}

/// A secret for HS256 tokens. Its `Debug` does not show it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

/// The secret is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Shorter than [`MIN_SECRET_BYTES`].
    #[error("the secret is {0} bytes long; at least {MIN_SECRET_BYTES} bytes are required")]
    TooShort(usize),
}

impl Secret {
    /// Takes a secret; surrounding whitespace (a trailing newline of a file) is trimmed.
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self, SecretError> {
        let b = bytes.as_ref().trim_ascii();
        if b.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort(b.len()));
        }
        Ok(Secret(b.to_vec()))
    }

    /// A fresh random secret (hex, 64 characters), e.g. for a local demo server.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Secret(hex.into_bytes())
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The claims of a fast-rtc token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The member's identity (its `userId` in the room).
    pub sub: String,
    /// The room the token grants, or `*` for any room.
    pub room: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Verifies HS256 JWTs with `sub`, `room` and `exp`.
///
/// Expiry is checked with 5 seconds of leeway for clock skew between the issuer and the server.
#[derive(Clone)]
pub struct JwtAuthenticator {
    key: DecodingKey,
    validation: Validation,
}

impl JwtAuthenticator {
    /// An authenticator for tokens signed with `secret`.
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtAuthenticator {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Checks `token` and returns its identity.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            },
        )?;
        let Claims { sub, room, .. } = data.claims;
        if sub.is_empty() || sub.len() > MAX_SUBJECT_BYTES {
            return Err(AuthError::Invalid(format!(
                "sub must be 1 to {MAX_SUBJECT_BYTES} bytes long"
            )));
        }
        let rooms = if room == "*" {
            RoomGrant::Any
        } else {
            RoomGrant::Only(RoomId::new(room))
        };
        Ok(Identity {
            user_id: UserId::new(sub),
            rooms,
        })
    }
}

impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        self.verify(token)
    }

    fn expiry(&self, token: &str) -> Option<SystemTime> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .ok()?
            .claims;
        // The leeway: the token is accepted that much past its `exp`.
        UNIX_EPOCH.checked_add(Duration::from_secs(
            claims.exp.saturating_add(self.validation.leeway),
        ))
    }
}

/// Signs tokens the server's [`JwtAuthenticator`] accepts.
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
}

impl TokenIssuer {
    /// An issuer for `secret`.
    pub fn new(secret: &Secret) -> Self {
        TokenIssuer {
            key: EncodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// A token for `sub` in `room` (`*` for any room), valid for `ttl` from `now`.
    pub fn issue(
        &self,
        sub: &str,
        room: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<String, AuthError> {
        let exp = now
            .checked_add(ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .ok_or_else(|| AuthError::Invalid("expiry out of range".into()))?;
        self.issue_claims(&Claims {
            sub: sub.to_owned(),
            room: room.to_owned(),
            exp,
        })
    }

    /// A token with exactly these claims.
    pub fn issue_claims(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }
}
