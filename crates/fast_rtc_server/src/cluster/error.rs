//! The errors of cluster mode.

use std::time::Duration;

/// What went wrong between this instance and Redis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// `--redis` is not a Redis URL.
    #[error("bad Redis URL {url:?}: {source}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it was refused.
        source: redis::RedisError,
    },
    /// Redis refused a command or the connection failed.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// There is no connection to Redis at the moment (it is being re-established).
    #[error("not connected to Redis")]
    Disconnected,
}
