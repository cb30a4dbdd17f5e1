//! The connection to Redis: this instance's pub/sub channel in, published envelopes out.
//!
//! [`spawn`] starts one task that keeps a subscription to this instance's channel and a command
//! connection, reconnecting with backoff (100 ms, doubling, at most 2 s) whenever either fails.
//! It reports to the node through a bounded channel: [`BusEvent::Up`] with a fresh command
//! connection and [`Publisher`] after every (re)connect, each message read, and
//! [`BusEvent::Down`] when the connection is lost. Nothing is retried or replayed: pub/sub
//! delivers at most once, so the node treats every loss as the loss of the rooms' state (see
//! the [cluster docs](super)).

use crate::cluster::error::ClusterError;
use crate::cluster::wire::instance_channel;
use futures_util::StreamExt;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// Envelopes queued for publishing at most; the node waits when Redis is this far behind.
const PUBLISH_QUEUE: usize = 8192;
/// Envelopes sent in one pipeline at most.
const PUBLISH_BATCH: usize = 256;

/// What the bus task tells the node.
pub enum BusEvent {
    /// Connected (again): subscribed to this instance's channel, with a command connection and a
    /// publisher that use it.
    Up {
        /// For lease commands.
        commands: MultiplexedConnection,
        /// For envelopes.
        publisher: Publisher,
    },
    /// A message on this instance's channel.
    Message(Vec<u8>),
    /// The connection to Redis is lost; the task is reconnecting.
    Down(ClusterError),
}

/// Publishes envelopes in order, batched into pipelines, over one connection.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<(String, String)>,
}

impl Publisher {
    /// Queues `payload` for `channel`. Waits while the queue is full; an error means the
    /// connection is gone (a [`BusEvent::Down`] follows).
    pub async fn publish(&self, channel: String, payload: String) -> Result<(), ClusterError> {
        self.tx
            .send((channel, payload))
            .await
            .map_err(|_| ClusterError::Disconnected)
    }
}

/// The running bus task's handle.
pub struct Bus {
    /// Events for the node.
    pub events: mpsc::Receiver<BusEvent>,
    /// Asks the task to drop its connections and reconnect (after a command failed).
    pub reset: Arc<Notify>,
}

/// Starts the bus task for instance `me` on `client`, until `stop`.
pub fn spawn(client: redis::Client, me: String, timeout: Duration, stop: CancellationToken) -> Bus {
    let (tx, events) = mpsc::channel(4096);
    let reset = Arc::new(Notify::new());
    tokio::spawn(run(client, me, timeout, tx, reset.clone(), stop));
    Bus { events, reset }
}

async fn run(
    client: redis::Client,
    me: String,
    timeout: Duration,
    tx: mpsc::Sender<BusEvent>,
    reset: Arc<Notify>,
    stop: CancellationToken,
) {
    let channel = instance_channel(&me);
    let mut backoff = Duration::from_millis(100);
    loop {
        let session = async {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout));
            let commands = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let mut pubsub = match tokio::time::timeout(timeout, client.get_async_pubsub()).await {
                Ok(p) => p?,
                Err(_) => return Err(ClusterError::Timeout(timeout)),
            };
            pubsub.subscribe(&channel).await?;
            Ok::<_, ClusterError>((commands, pubsub))
        };
        let result = tokio::select! {
            () = stop.cancelled() => return,
            r = session => r,
        };
        let (commands, pubsub) = match result {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, retry_in = ?backoff, "cannot connect to Redis");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let (ptx, prx) = mpsc::channel(PUBLISH_QUEUE);
        let lost = CancellationToken::new();
        let publisher = tokio::spawn(publish_task(commands.clone(), prx, lost.clone()));
        info!(%channel, "connected to Redis");
        if tx
            .send(BusEvent::Up {
                commands,
                publisher: Publisher { tx: ptx },
            })
            .await
            .is_err()
        {
            return;
        }
        let mut messages = pubsub.into_on_message();
        let why = loop {
            tokio::select! {
                () = stop.cancelled() => { publisher.abort(); return; }
                () = reset.notified() => break ClusterError::Disconnected,
                () = lost.cancelled() => break ClusterError::Disconnected,
                msg = messages.next() => match msg {
                    Some(msg) => {
                        if tx.send(BusEvent::Message(msg.get_payload_bytes().to_vec())).await.is_err() {
                            return;
                        }
                    }
                    None => break ClusterError::Disconnected,
                },
            }
        };
        publisher.abort();
        error!(error = %why, "lost the connection to Redis; reconnecting");
        if tx.send(BusEvent::Down(why)).await.is_err() {
            return;
        }
    }
}

/// Sends queued envelopes as pipelines of PUBLISH, in order. A failed pipeline cancels `lost`:
/// its envelopes may be lost, so the whole session ends.
async fn publish_task(
    mut conn: MultiplexedConnection,
    mut rx: mpsc::Receiver<(String, String)>,
    lost: CancellationToken,
) {
    while let Some(first) = rx.recv().await {
        let mut pipe = redis::pipe();
        pipe.cmd("PUBLISH").arg(first.0).arg(first.1).ignore();
        let mut n = 1;
        while n < PUBLISH_BATCH {
            match rx.try_recv() {
                Ok((channel, payload)) => {
                    pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
                    n += 1;
                }
                Err(_) => break,
            }
        }
        let sent: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
        if let Err(e) = sent {
            error!(error = %e, envelopes = n, "publishing to Redis failed");
            lost.cancel();
            return;
        }
        debug!(envelopes = n, "published");
    }
}
