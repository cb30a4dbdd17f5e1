//! What the swarm reads from a signaling token: when it expires, so it can ask the
//! application for a fresh one in time ([`crate::lifecycle#tokens`]), and whose it is.
//!
//! The token is opaque to the swarm; a JWT (`header.payload.signature`, base64url) with a
//! numeric `exp` claim (seconds since the Unix epoch) has a known expiry, anything else has
//! none. Nothing is verified: the server does that.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fast_rtc_protocol::UserId;
use serde::Deserialize;
use std::time::Duration;
use web_time::{SystemTime, UNIX_EPOCH};

/// The longest payload decoded; a real token's is a few hundred bytes.
const MAX_PAYLOAD: usize = 8 * 1024;

/// The claims read (others are ignored; a claim of another type makes the token unreadable).
#[derive(Deserialize)]
struct Claims {
    exp: Option<f64>,
    sub: Option<String>,
}

/// The token's claims, if it is a JWT.
fn claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > MAX_PAYLOAD {
        return None;
    }
    // Some issuers pad; base64url without padding is the JWT form.
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `sub` claim of a JWT, read without verifying it (the server verifies): the identity a
/// member will have in the room, for display and for telling one's own messages apart.
/// `None` if `token` is not a JWT with a string `sub`.
pub fn subject(token: &str) -> Option<UserId> {
    claims(token)?.sub.map(UserId::from)
}

/// How long `token` is valid from `now`: `Some(ZERO)` if its `exp` has passed, `None` if it
/// is not a JWT with a numeric `exp` claim.
pub fn expires_in(token: &str, now: SystemTime) -> Option<Duration> {
    let exp = claims(token)?.exp?;
    if !exp.is_finite() || exp < 0.0 {
        return None;
    }
    let exp = UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(exp).ok()?)?;
    Some(exp.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn reads_exp() {
        let t = jwt(r#"{"sub":"a","room":"*","exp":1000}"#);
        assert_eq!(expires_in(&t, at(400)), Some(Duration::from_secs(600)));
        assert_eq!(expires_in(&t, at(2000)), Some(Duration::ZERO));
    }

    #[test]
    fn padded_payloads_are_read_too() {
        let payload = base64::engine::general_purpose::URL_SAFE.encode(r#"{"exp":10}"#);
        let t = format!("h.{payload}.s");
        assert_eq!(expires_in(&t, at(4)), Some(Duration::from_secs(6)));
    }

    #[test]
    fn reads_sub() {
        let t = jwt(r#"{"sub":"alice","exp":1000}"#);
        assert_eq!(subject(&t), Some(UserId::from("alice")));
        assert_eq!(subject(&jwt(r#"{"exp":1}"#)), None);
        assert_eq!(subject("opaque"), None);
    }

    #[test]
    fn anything_else_has_no_expiry() {
        for t in [
            "opaque-token".to_owned(),
            "a.b".to_owned(),
            "a.!!!.c".to_owned(),
            jwt(r#"{"sub":"a"}"#),
            jwt(r#"{"exp":"soon"}"#),
            jwt(r#"{"exp":-5}"#),
            jwt(r#"{"exp":1e400}"#),
            jwt("not json"),
            format!("{}.x", jwt(r#"{"exp":1}"#)),
        ] {
            assert_eq!(expires_in(&t, at(0)), None, "{t}");
        }
    }
}
