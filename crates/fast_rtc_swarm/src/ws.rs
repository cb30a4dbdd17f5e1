//! The signaling WebSocket: async-tungstenite over async-net natively, the browser's
//! `WebSocket` on wasm. Both offer the same small API to the signaling loop.

use std::fmt;

/// What arrived on the socket.
pub(crate) enum Frame {
    /// A text frame.
    Text(String),
    /// The server closed the socket (with its reason, if any).
    Closed(String),
    /// Anything else (binary, ping, pong): ignored.
    Other,
}

/// `URL?token=TOKEN` (or `&token=` if the URL has a query already).
fn with_token(url: &str, token: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}token={token}")
}

struct Reason(Option<String>);

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_deref().unwrap_or("no reason given"))
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::Socket;
#[cfg(target_arch = "wasm32")]
pub(crate) use web::Socket;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::{Frame, Reason, with_token};
    use async_tungstenite::tungstenite::Message;
    use async_tungstenite::tungstenite::client::IntoClientRequest;
    use futures_util::{SinkExt, StreamExt};

    /// A signaling WebSocket with TCP_NODELAY (a member writes several small frames in a row;
    /// Nagle's algorithm would hold them for an ACK).
    pub(crate) struct Socket(async_tungstenite::WebSocketStream<async_net::TcpStream>);

    impl Socket {
        pub(crate) async fn connect(url: &str, token: &str) -> Result<Self, String> {
            let full = with_token(url, token);
            let request = full
                .as_str()
                .into_client_request()
                .map_err(|e| e.to_string())?;
            let host = request
                .uri()
                .host()
                .ok_or("no host in URL")?
                .trim_matches(['[', ']'])
                .to_owned();
            let port = request.uri().port_u16().unwrap_or(80);
            let tcp = async_net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| e.to_string())?;
            tcp.set_nodelay(true).map_err(|e| e.to_string())?;
            let (ws, _) = async_tungstenite::client_async(request, tcp)
                .await
                .map_err(|e| e.to_string())?;
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
}

#[cfg(target_arch = "wasm32")]
mod web {
    use super::{Frame, Reason, with_token};
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

    /// Frames received and not yet read, at most. Past this the socket is closed as broken
    /// (the swarm reads continuously, so only a stalled page gets here) and the loop reconnects.
    const INBOX: usize = 4096;

    /// The browser's WebSocket. Its handlers live in this struct and are removed when it drops:
    /// no closure outlives its socket.
    pub(crate) struct Socket {
        ws: WebSocket,
        inbox: async_channel::Receiver<Result<Frame, String>>,
        _on_message: Closure<dyn FnMut(MessageEvent)>,
        _on_close: Closure<dyn FnMut(CloseEvent)>,
        _on_error: Closure<dyn FnMut(Event)>,
        _on_open: Closure<dyn FnMut(Event)>,
    }

    impl Socket {
        pub(crate) async fn connect(url: &str, token: &str) -> Result<Self, String> {
            let ws = WebSocket::new(&with_token(url, token)).map_err(|e| format!("{e:?}"))?;
            let (tx, inbox) = async_channel::bounded(INBOX);
            let (open_tx, open_rx) = async_channel::bounded::<Result<(), String>>(1);
            let on_message = {
                let tx = tx.clone();
                let ws = ws.clone();
                Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                    let frame = match e.data().as_string() {
                        Some(text) => Frame::Text(text),
                        None => Frame::Other,
                    };
                    if tx.try_send(Ok(frame)).is_err() {
                        let _ = ws.close_with_code_and_reason(1008, "inbox full");
                    }
                })
            };
            let on_close = {
                let tx = tx.clone();
                let open_tx = open_tx.clone();
                Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
                    let reason = Reason(Some(format!("{} {}", e.code(), e.reason())));
                    let _ = open_tx.try_send(Err(format!("closed: {reason}")));
                    let _ = tx.try_send(Ok(Frame::Closed(reason.to_string())));
                    tx.close();
                })
            };
            let on_error = {
                let open_tx = open_tx.clone();
                Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
                    let _ = open_tx.try_send(Err("WebSocket error".into()));
                })
            };
            let on_open = Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
                let _ = open_tx.try_send(Ok(()));
            });
            ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
            ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
            let socket = Socket {
                ws,
                inbox,
                _on_message: on_message,
                _on_close: on_close,
                _on_error: on_error,
                _on_open: on_open,
            };
            match open_rx.recv().await {
                Ok(Ok(())) => Ok(socket),
                Ok(Err(e)) => Err(e),
                Err(_) => Err("WebSocket went away".into()),
            }
        }

        /// Sends a text frame (the browser buffers it).
        pub(crate) async fn feed(&mut self, text: String) -> Result<(), String> {
            self.ws.send_with_str(&text).map_err(|e| format!("{e:?}"))
        }

        pub(crate) async fn flush(&mut self) -> Result<(), String> {
            Ok(())
        }

        /// The next frame; `None` once the socket has ended.
        pub(crate) async fn next(&mut self) -> Option<Result<Frame, String>> {
            self.inbox.recv().await.ok()
        }

        pub(crate) async fn close(&mut self) {
            let _ = self.ws.close();
        }
    }

    impl Drop for Socket {
        fn drop(&mut self) {
            self.ws.set_onmessage(None);
            self.ws.set_onclose(None);
            self.ws.set_onerror(None);
            self.ws.set_onopen(None);
            let _ = self.ws.close();
        }
    }
}
