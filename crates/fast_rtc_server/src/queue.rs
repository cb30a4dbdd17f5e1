//! The queue between the owner task and one socket task, bounded in frames
//! ([`ServerConfig::outbound_queue`](crate::ServerConfig::outbound_queue)) and in bytes
//! ([`ConnectionLimits::max_queued_bytes`](crate::ConnectionLimits::max_queued_bytes)).
//!
//! An item's bytes are what it says ([`Weighed`]: a frame's encoded size); they count from the
//! moment the owner queues the item until the socket task takes it to write. A send that would
//! pass either bound fails as "full", and the owner drops the socket as a slow consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// What an item costs the queue's byte bound.
pub(crate) trait Weighed {
    /// Its size in bytes.
    fn bytes(&self) -> usize;
}

/// The owner's end.
pub(crate) struct SocketTx<T> {
    tx: mpsc::Sender<(T, usize)>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl<T> Clone for SocketTx<T> {
    fn clone(&self) -> Self {
        SocketTx {
            tx: self.tx.clone(),
            queued: self.queued.clone(),
            max_bytes: self.max_bytes,
        }
    }
}

/// The socket task's end.
pub(crate) struct SocketRx<T> {
    rx: mpsc::Receiver<(T, usize)>,
    queued: Arc<AtomicUsize>,
}

/// A queue of at most `frames` frames and `max_bytes` bytes (each at least 1).
pub(crate) fn channel<T>(frames: usize, max_bytes: usize) -> (SocketTx<T>, SocketRx<T>) {
    let (tx, rx) = mpsc::channel(frames.max(1));
    let queued = Arc::new(AtomicUsize::new(0));
    (
        SocketTx {
            tx,
            queued: queued.clone(),
            max_bytes: max_bytes.max(1),
        },
        SocketRx { rx, queued },
    )
}

impl<T: Weighed> SocketTx<T> {
    /// Queues `out` without waiting; `Full` if either bound would be passed, `Closed` if the
    /// socket task is gone.
    pub(crate) fn try_send(&self, out: T) -> Result<(), TrySendError<T>> {
        let bytes = out.bytes();
        // Counted before the frame is visible to the socket task, which subtracts it.
        let before = self.queued.fetch_add(bytes, Ordering::AcqRel);
        let refused = if before.saturating_add(bytes) > self.max_bytes {
            Err(TrySendError::Full(out))
        } else {
            match self.tx.try_send((out, bytes)) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full((out, _))) => Err(TrySendError::Full(out)),
                Err(TrySendError::Closed((out, _))) => Err(TrySendError::Closed(out)),
            }
        };
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
        refused
    }
}

impl<T> SocketRx<T> {
    /// The next frame; `None` once the owner has dropped its end.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        let (out, bytes) = self.rx.recv().await?;
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
        Some(out)
    }

    /// The next frame if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        let (out, bytes) = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of some bytes, or a close (none).
    #[derive(Debug)]
    enum Outbound {
        Msg(usize),
        Close,
    }

    impl Weighed for Outbound {
        fn bytes(&self) -> usize {
            match self {
                Outbound::Msg(n) => *n,
                Outbound::Close => 0,
            }
        }
    }

    #[tokio::test]
    async fn bytes_and_frames_are_both_bounded() {
        let size = 1000;
        let (tx, mut rx) = channel(10, size * 2);
        assert!(tx.try_send(Outbound::Msg(size)).is_ok());
        assert!(tx.try_send(Outbound::Msg(size)).is_ok());
        assert!(matches!(
            tx.try_send(Outbound::Msg(size)),
            Err(TrySendError::Full(_))
        ));
        // A close frame costs no bytes.
        assert!(tx.try_send(Outbound::Close).is_ok());
        assert!(rx.recv().await.is_some());
        assert!(tx.try_send(Outbound::Msg(size)).is_ok());
        assert!(rx.try_recv().is_some());
        assert!(rx.try_recv().is_some());
        assert!(rx.try_recv().is_some());
        assert!(rx.try_recv().is_none());
        let (tx, _rx) = channel(1, usize::MAX);
        assert!(tx.try_send(Outbound::Msg(size)).is_ok());
        assert!(matches!(
            tx.try_send(Outbound::Msg(size)),
            Err(TrySendError::Full(_))
        ));
    }
}
