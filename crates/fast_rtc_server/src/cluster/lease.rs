//! Room ownership: one lease key per room in Redis, held by exactly one instance at a time.
//!
//! The key [`owner_key`] holds the owner's instance id and expires after the lease time unless
//! the owner renews it. Taking, renewing and releasing are Lua scripts, so each is one atomic
//! step in Redis: an instance only ever renews or deletes a lease that holds its own id.

use crate::cluster::error::ClusterError;
use crate::cluster::wire::owner_key;
use fast_rtc_protocol::RoomId;
use redis::aio::MultiplexedConnection;
use std::future::Future;
use std::time::Duration;

/// Returns the owner; takes the lease for ARGV[1] for ARGV[2] ms if nobody holds it.
const TAKE: &str = "local v = redis.call('GET', KEYS[1]) \
    if v then return v end \
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) \
    return ARGV[1]";
/// Extends the lease to ARGV[2] ms if ARGV[1] holds it: 1, else 0.
const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
/// Deletes the lease if ARGV[1] holds it.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) end return 0";

/// Lease operations of one instance over one Redis connection.
#[derive(Clone)]
pub struct Leases {
    conn: MultiplexedConnection,
    me: String,
    lease: Duration,
    timeout: Duration,
}

impl Leases {
    /// Leases for instance `me`, each lasting `lease`; every command waits `timeout` at most.
    pub fn new(
        conn: MultiplexedConnection,
        me: String,
        lease: Duration,
        timeout: Duration,
    ) -> Self {
        Leases {
            conn,
            me,
            lease,
            timeout,
        }
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    async fn bounded<T>(
        &self,
        f: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(ClusterError::Timeout(self.timeout)),
        }
    }

    /// The instance that owns `room`; this one, if nobody did (it then holds the lease).
    pub async fn owner_or_take(&mut self, room: &RoomId) -> Result<String, ClusterError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(TAKE)
            .arg(1)
            .arg(owner_key(room))
            .arg(&self.me)
            .arg(self.lease_ms());
        let mut conn = self.conn.clone();
        self.bounded(cmd.query_async(&mut conn)).await
    }

    /// Renews the leases of `rooms` in one round trip: for each, whether this instance still
    /// holds it.
    pub async fn renew(&mut self, rooms: &[RoomId]) -> Result<Vec<bool>, ClusterError> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.cmd("EVAL")
                .arg(RENEW)
                .arg(1)
                .arg(owner_key(room))
                .arg(&self.me)
                .arg(self.lease_ms());
        }
        let mut conn = self.conn.clone();
        let held: Vec<i64> = self.bounded(pipe.query_async(&mut conn)).await?;
        Ok(held.into_iter().map(|h| h == 1).collect())
    }

    /// Gives up the lease of `room`, if this instance holds it.
    pub async fn release(&mut self, room: &RoomId) -> Result<(), ClusterError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RELEASE).arg(1).arg(owner_key(room)).arg(&self.me);
        let mut conn = self.conn.clone();
        let _: i64 = self.bounded(cmd.query_async(&mut conn)).await?;
        Ok(())
    }

    /// The current owners of `rooms`, in one round trip (`None`: nobody holds the lease).
    pub async fn owners(&mut self, rooms: &[RoomId]) -> Result<Vec<Option<String>>, ClusterError> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.cmd("GET").arg(owner_key(room));
        }
        let mut conn = self.conn.clone();
        self.bounded(pipe.query_async(&mut conn)).await
    }
}
