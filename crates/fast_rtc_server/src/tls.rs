//! Optional TLS for the shell (`wss://`, `https://`), so a small deployment needs no proxy:
//! rustls on ring, no OpenSSL.
//!
//! Each handshake runs in its connection's own task, bounded by
//! [`TlsConfig::handshake_timeout`], and counts against the pre-authentication cap
//! ([`ConnectionLimits::max_preauth`](crate::limits::ConnectionLimits::max_preauth)), so a
//! client that stalls or fails its handshake only loses its own connection and never blocks
//! accepting others. The [`Hub`] never sees a socket before its handshake is done.
//!
//! [`Hub`]: crate::hub::Hub

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tracing::debug;

/// The server's certificate chain and key: [`ServerConfig::tls`](crate::ServerConfig::tls).
#[derive(Clone)]
pub struct TlsConfig {
    rustls: Arc<rustls::ServerConfig>,
    /// How long a client may take to finish its TLS handshake before its connection is dropped
    /// (10 s by default).
    pub handshake_timeout: Duration,
}

/// The certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate PEM holds no `CERTIFICATE` block, or a broken one.
    #[error("bad certificate PEM{}: {reason}", from(.path))]
    Certificate {
        /// The file, if read from one.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },
    /// The key PEM holds no private key (PKCS#8, PKCS#1 or SEC1), or a broken one.
    #[error("bad private key PEM{}: {reason}", from(.path))]
    Key {
        /// The file, if read from one.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate, or its algorithm
    /// is not supported).
    #[error("unusable certificate and key: {0}")]
    Rejected(String),
}

fn from(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" in {}", p.display()))
        .unwrap_or_default()
}

impl TlsConfig {
    /// From PEM text: `cert_chain` holds the server's certificate first, then any
    /// intermediates; `key` holds its private key.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        Self::build(cert_chain, key, None, None)
    }

    /// From PEM files (see [`TlsConfig::from_pem`]).
    pub fn from_pem_files(cert_chain: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Self::build(&read(cert_chain)?, &read(key)?, Some(cert_chain), Some(key))
    }

    fn build(
        cert_chain: &[u8],
        key: &[u8],
        cert_path: Option<&Path>,
        key_path: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let cert_error = |reason: String| TlsError::Certificate {
            path: cert_path.map(Path::to_owned),
            reason,
        };
        let certs = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(cert_error("no CERTIFICATE block".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError::Key {
            path: key_path.map(Path::to_owned),
            reason: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rejected(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Rejected(e.to_string()))?;
        // The shell speaks HTTP/1.1 only (the WebSocket upgrade needs it).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            rustls: Arc::new(config),
            handshake_timeout: Duration::from_secs(10),
        })
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("TlsConfig")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// Runs the TLS handshake of `tcp` (from `addr`), within `tls`'s handshake timeout: the TLS
/// stream, or `None` if it failed or timed out (logged at debug level).
pub(crate) async fn handshake<IO>(
    tls: &TlsConfig,
    tcp: IO,
    addr: SocketAddr,
) -> Option<TlsStream<IO>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let acceptor = TlsAcceptor::from(tls.rustls.clone());
    let timeout = tls.handshake_timeout;
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            debug!(%addr, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            debug!(%addr, "TLS handshake not done within {timeout:?}");
            None
        }
    }
}
