//! A TCP proxy between a member and the real server that a test can freeze (a half-open
//! connection: the sockets stay open, nothing moves either way, no FIN, no RST) or cut (every
//! connection dropped). Connections made after a freeze or a cut pass normally.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

pub struct Proxy {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<Conn>>>,
    accept: AbortHandle,
}

struct Conn {
    freeze: watch::Sender<bool>,
    tasks: Vec<AbortHandle>,
}

impl Proxy {
    /// A proxy on a random loopback port forwarding to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<Conn>>> = Arc::default();
        let list = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let (freeze, frozen) = watch::channel(false);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = tokio::spawn(pipe(cr, sw, frozen.clone())).abort_handle();
                let down = tokio::spawn(pipe(sr, cw, frozen)).abort_handle();
                list.lock().unwrap().push(Conn {
                    freeze,
                    tasks: vec![up, down],
                });
            }
        })
        .abort_handle();
        Proxy {
            addr,
            conns,
            accept,
        }
    }

    /// `ws://` URL of the server's endpoint through the proxy.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.conns.lock().unwrap().len()
    }

    /// Every connection so far stops moving bytes, both ways, and stays open.
    pub fn freeze(&self) {
        for c in self.conns.lock().unwrap().iter() {
            let _ = c.freeze.send(true);
        }
    }

    /// Every connection so far is dropped (both sockets closed).
    pub fn cut(&self) {
        for c in self.conns.lock().unwrap().iter() {
            for t in &c.tasks {
                t.abort();
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Copies `from` to `to` until either ends; once frozen, holds what it read (and an end of
/// stream) forever.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        if *frozen.borrow_and_update() {
            // Half-open from here on: keep both sockets, move nothing.
            std::future::pending::<()>().await;
        }
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
