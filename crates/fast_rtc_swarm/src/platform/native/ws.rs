//! The signaling WebSocket natively: async-tungstenite over async-net, with TCP_NODELAY, and
//! rustls for `wss://` (`tls.rs`).

use crate::platform::frame::{ConnectError, Frame, Reason, with_token};
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use futures_util::{SinkExt, StreamExt};

pub(crate) use super::tls::{Stream, TlsConnector};

/// A signaling WebSocket with TCP_NODELAY (a member writes several small frames in a row;
/// Nagle's algorithm would hold them for an ACK).
pub(crate) struct Socket(async_tungstenite::WebSocketStream<Stream>);

impl Socket {
    pub(crate) async fn connect(
        url: &str,
        token: &str,
        tls: &TlsConnector,
    ) -> Result<Self, ConnectError> {
        let full = with_token(url, token);
        let request = full.as_str().into_client_request().map_err(typed)?;
        let host = request
            .uri()
            .host()
            .ok_or_else(|| ConnectError::Failed("no host in URL".into()))?
            .trim_matches(['[', ']'])
            .to_owned();
        let secure = request.uri().scheme_str() == Some("wss");
        let port = request
            .uri()
            .port_u16()
            .unwrap_or(if secure { 443 } else { 80 });
        let io = |e: std::io::Error| ConnectError::Failed(e.to_string());
        let tcp = async_net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(io)?;
        tcp.set_nodelay(true).map_err(io)?;
        let stream = if secure {
            tls.connect(&host, tcp)
                .await
                .map_err(ConnectError::Failed)?
        } else {
            Stream::Plain(tcp)
        };
        let (ws, _) = async_tungstenite::client_async(request, stream)
            .await
            .map_err(typed)?;
        Ok(Socket(ws))
    }

    /// Queues a text frame (sent by [`Socket::flush`] or when the buffer fills).
    pub(crate) async fn feed(&mut self, text: String) -> Result<(), String> {
        self.0
            .feed(Message::text(text))
            .await
            .map_err(|e| e.to_string())
    }

    pub(crate) async fn flush(&mut self) -> Result<(), String> {
        self.0.flush().await.map_err(|e| e.to_string())
    }

    /// Sends a WebSocket ping at once (a dead path answers with a reset: the next read
    /// fails).
    pub(crate) async fn ping(&mut self) -> Result<(), String> {
        self.0
            .send(Message::Ping(Default::default()))
            .await
            .map_err(|e| e.to_string())
    }

    /// The next frame; `None` once the socket has ended.
    pub(crate) async fn next(&mut self) -> Option<Result<Frame, String>> {
        Some(match self.0.next().await? {
            Ok(Message::Text(text)) => Ok(Frame::Text(text.as_str().to_owned())),
            Ok(Message::Close(frame)) => Ok(Frame::Closed(
                Reason(frame.map(|f| f.reason.as_str().to_owned())).to_string(),
            )),
            Ok(_) => Ok(Frame::Other),
            Err(e) => Err(e.to_string()),
        })
    }

    pub(crate) async fn close(&mut self) {
        let _ = self.0.close(None).await;
    }
}

/// A refused upgrade with HTTP 401 is [`ConnectError::Unauthorized`]; everything else fails
/// the attempt with its message.
fn typed(e: async_tungstenite::tungstenite::Error) -> ConnectError {
    match e {
        async_tungstenite::tungstenite::Error::Http(response)
            if response.status().as_u16() == 401 =>
        {
            ConnectError::Unauthorized
        }
        other => ConnectError::Failed(other.to_string()),
    }
}
