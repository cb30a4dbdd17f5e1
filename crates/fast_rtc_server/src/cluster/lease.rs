//! Room ownership: one lease key per room in Redis, held by exactly one instance at a time.
//!
//! The key [`owner_key`] holds the owner's instance id and expires after the lease time unless
//! the owner renews it. Taking, renewing and releasing are Lua scripts, so each is one atomic
//! step in Redis: an instance only ever renews or deletes a lease that holds its own id.
//!
//! The same scripts keep [`rooms_key`], a sorted set of every leased room scored by its lease's
//! expiry (read from Redis's own `TIME`, so instances' clocks do not matter), from which
//! [`Leases::room_count`] counts the rooms of the whole cluster. A dead owner cannot remove its
//! rooms; their entries expire with their leases and are dropped when the set is counted. The
//! scripts touch two keys, so a Redis Cluster would need them in one hash slot; one Redis (or a
//! primary with replicas) is what cluster mode is for.

use crate::cluster::error::ClusterError;
use crate::cluster::wire::{owner_key, rooms_key};
use fast_rtc_protocol::RoomId;
use redis::aio::MultiplexedConnection;
use std::future::Future;
use std::time::Duration;

/// Redis's clock in ms, for the scripts below.
macro_rules! now_ms {
    () => {
        "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    };
}
/// KEYS: lease, rooms set. ARGV: instance, lease ms, room. Returns the owner; takes the lease
/// (and lists the room until it expires) if nobody holds it.
const TAKE: &str = concat!(
    "local v = redis.call('GET', KEYS[1]) \
    if v then return v end \
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) ",
    now_ms!(),
    "redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[3]) \
    return ARGV[1]"
);
/// KEYS: lease, rooms set. ARGV: instance, lease ms, room. Extends the lease (and its entry in
/// the set) to ARGV[2] ms if ARGV[1] holds it: 1, else 0.
const RENEW: &str = concat!(
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end ",
    now_ms!(),
    "redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[3]) \
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])"
);
/// KEYS: lease, rooms set. ARGV: instance, room. Deletes the lease (and the room's entry) if
/// ARGV[1] holds it.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    redis.call('ZREM', KEYS[2], ARGV[2]) \
    return redis.call('DEL', KEYS[1]) end return 0";
/// KEYS: rooms set. Drops the entries whose lease expired; returns how many are left.
const COUNT: &str = concat!(
    now_ms!(),
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) \
    return redis.call('ZCARD', KEYS[1])"
);

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
        let cmd = self.lease_script(TAKE, room);
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
            pipe.add_command(self.lease_script(RENEW, room));
        }
        let mut conn = self.conn.clone();
        let held: Vec<i64> = self.bounded(pipe.query_async(&mut conn)).await?;
        Ok(held.into_iter().map(|h| h == 1).collect())
    }

    /// `script` ([`TAKE`] or [`RENEW`]) on `room`'s lease: keys the room's owner and the set of
    /// leased rooms; arguments this instance, the lease time and the room.
    fn lease_script(&self, script: &str, room: &RoomId) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script)
            .arg(2)
            .arg(owner_key(room))
            .arg(rooms_key())
            .arg(&self.me)
            .arg(self.lease_ms())
            .arg(room.as_str());
        cmd
    }

    /// Gives up the lease of `room`, if this instance holds it.
    pub async fn release(&mut self, room: &RoomId) -> Result<(), ClusterError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RELEASE)
            .arg(2)
            .arg(owner_key(room))
            .arg(rooms_key())
            .arg(&self.me)
            .arg(room.as_str());
        let mut conn = self.conn.clone();
        let _: i64 = self.bounded(cmd.query_async(&mut conn)).await?;
        Ok(())
    }

    /// How many rooms have a live lease over the whole cluster (expired entries are dropped).
    pub async fn room_count(&mut self) -> Result<u64, ClusterError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(COUNT).arg(1).arg(rooms_key());
        let mut conn = self.conn.clone();
        let n: i64 = self.bounded(cmd.query_async(&mut conn)).await?;
        Ok(u64::try_from(n).unwrap_or(0))
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
