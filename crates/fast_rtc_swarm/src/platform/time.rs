//! This build's system clock and timers (natively std's and async-io's, in the browser the
//! page's): the one part of the platform that the code above it and the platform's own peers
//! both use.

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use super::native::time::*;
#[cfg(target_arch = "wasm32")]
pub(crate) use super::web::time::*;
