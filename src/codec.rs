//! The codec of typed swarm messages: bitcode (serde mode).
//!
//! Chosen over postcard by `cargo run --release -p fast_rtc_bench -- codec` (see the README):
//! bitcode makes smaller messages for game state, which is what crosses the network every tick,
//! and encodes and decodes faster on this machine. bincode is not an option: its 3.0.0 release
//! is a `compile_error!`.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A message could not be decoded (or, rarely, encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

/// Encodes `value` as bytes for a data channel.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bitcode::serialize(value).map_err(|e| CodecError(e.to_string()))
}

/// Decodes bytes received from a peer. Any input is safe: bad bytes are an error, never a panic.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    bitcode::deserialize(bytes).map_err(|e| CodecError(e.to_string()))
}
