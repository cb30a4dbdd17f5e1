//! The demos' settings in a browser: the page's query string
//! (`?signaling=ws://HOST:PORT/ws&room=ROOM&token=TOKEN&…`). wasm32 only, so each `main.rs`
//! declares this module for that target only.

/// A value of the page's query string, if the page has it.
pub(crate) fn query(key: &str) -> Option<String> {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|q| web_sys::UrlSearchParams::new_with_str(&q).ok())
        .and_then(|q| q.get(key))
}
