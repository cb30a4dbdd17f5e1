//! A test PKI made with rcgen: a CA, and a server certificate it signed for `127.0.0.1` and
//! `localhost`. Used by the server's `tests/tls.rs` and the swarm's `tests/e2e_tls.rs`.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// The CA name the tests trust (a second PKI with another name is "some other CA").
pub const TEST_CA: &str = "fast-rtc test CA";

/// A CA, and a certificate it signed for `127.0.0.1` and `localhost`.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The CA's certificate (DER): what a client trusts.
    pub ca_der: Vec<u8>,
    /// The server's certificate (PEM).
    pub cert_pem: String,
    /// The server's private key (PEM).
    pub key_pem: String,
}

impl Pki {
    /// A fresh CA whose common name is `ca_name` (new keys each call), and a server
    /// certificate it signed for `127.0.0.1` and `localhost`.
    pub fn new(ca_name: &str) -> Result<Pki, rcgen::Error> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
            .signed_by(&key, &ca)?;
        Ok(Pki {
            ca_der: ca.der().to_vec(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pki_is_new_and_in_pem() {
        let (a, b) = (Pki::new(TEST_CA).unwrap(), Pki::new(TEST_CA).unwrap());
        assert!(a.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.key_pem.contains("PRIVATE KEY"));
        assert_ne!(a.ca_der, b.ca_der);
    }
}
