//! The signaling WebSocket in the browser: the page's `WebSocket`.

use crate::platform::frame::{ConnectError, Frame, Reason, with_token};
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

/// TLS is the page's (`wss://` through its `WebSocket`, with the browser's roots): nothing to
/// set up. Mirrors the native connector so the signaling loop is the same on both.
#[derive(Clone)]
pub(crate) struct TlsConnector;

impl TlsConnector {
    pub(crate) fn from_config(_: &super::WebConfig) -> Result<Self, super::WebError> {
        Ok(TlsConnector)
    }

    pub(crate) fn roots_only() -> Result<Self, super::WebError> {
        Ok(TlsConnector)
    }
}

impl Socket {
    /// Opens the socket. A browser hides the HTTP status of a refused upgrade from the page,
    /// so a refused token is a plain [`ConnectError::Failed`] here.
    pub(crate) async fn connect(
        url: &str,
        token: &str,
        _tls: &TlsConnector,
    ) -> Result<Self, ConnectError> {
        Self::open(url, token).await.map_err(ConnectError::Failed)
    }

    async fn open(url: &str, token: &str) -> Result<Self, String> {
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

    /// A page cannot send WebSocket pings: nothing (the pump never asks here, `SEES_PINGS`
    /// being false).
    pub(crate) async fn ping(&mut self) -> Result<(), String> {
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
