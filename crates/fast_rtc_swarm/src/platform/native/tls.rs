//! TLS for the native signaling socket (`wss://`): rustls with ring (the provider webrtc-rs
//! already uses; no OpenSSL), over the same TCP_NODELAY stream as `ws://`.
//!
//! Roots: Mozilla's, compiled in (`webpki-roots`), plus the DER certificates in
//! [`NativeConfig::tls_roots`](super::NativeConfig::tls_roots). `webpki-roots` rather than the
//! platform's store (`rustls-native-certs`, `rustls-platform-verifier`): a game client must
//! reach a public signaling server the same way on every machine, including minimal containers
//! with no CA bundle, and a private deployment names its CA explicitly instead of installing it
//! system-wide. Both crates are maintained by the rustls project.

use super::NativeError;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Built once per swarm (in [`start`](crate::start)) and shared by every connection attempt.
#[derive(Clone)]
pub(crate) struct TlsConnector(futures_rustls::TlsConnector);

/// A `wss://` stream.
pub(crate) type TlsStream = futures_rustls::client::TlsStream<async_net::TcpStream>;

/// The signaling socket's byte stream: plain TCP (`ws://`) or TLS over TCP (`wss://`).
pub(crate) enum Stream {
    /// `ws://`.
    Plain(async_net::TcpStream),
    /// `wss://` (boxed: rustls's connection state is large).
    Tls(Box<TlsStream>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

impl TlsConnector {
    /// Mozilla's roots plus the backend's [`tls_roots`](super::NativeConfig::tls_roots).
    pub(crate) fn from_config(config: &super::NativeConfig) -> Result<Self, NativeError> {
        TlsConnector::new(&config.tls_roots)
    }

    /// Mozilla's roots only (a swarm on a backend of the caller's, from
    /// [`start_with`](crate::start_with)).
    pub(crate) fn roots_only() -> Result<Self, NativeError> {
        TlsConnector::new(&[])
    }

    /// Mozilla's roots plus `extra` (DER certificates).
    pub(crate) fn new(extra: &[Vec<u8>]) -> Result<Self, NativeError> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for (index, der) in extra.iter().enumerate() {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| NativeError::TlsRoot {
                    index,
                    reason: e.to_string(),
                })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NativeError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConnector(futures_rustls::TlsConnector::from(Arc::new(
            config,
        ))))
    }

    /// The TLS handshake with `host` (a DNS name or an IP address, checked against the
    /// server's certificate) over `tcp`. A certificate the roots do not vouch for is an error
    /// that says so.
    pub(crate) async fn connect(
        &self,
        host: &str,
        tcp: async_net::TcpStream,
    ) -> Result<Stream, String> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
        let tls = self.0.connect(name, tcp).await.map_err(|e| {
            let certificate = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|inner| matches!(inner, rustls::Error::InvalidCertificate(_)));
            if certificate {
                format!(
                    "TLS handshake with {host} failed: {e} (not signed by a trusted CA, or not \
                     for this host? add a private CA to NativeConfig::tls_roots)"
                )
            } else {
                format!("TLS handshake with {host} failed: {e}")
            }
        })?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}
