//! TLS: the serving certificate (swappable while serving), client
//! certificate verification, and the certificate's expiry.

use rustls::crypto::ring::default_provider;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{Error as PemError, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate: no PEM certificate found")]
    NoCertificate,
    #[error("certificate: {0}")]
    Certificate(#[source] PemError),
    #[error("certificate: its validity cannot be read")]
    Validity,
    #[error("private key: {0}")]
    Key(#[source] PemError),
    #[error("certificate and private key do not belong together: {0}")]
    Mismatch(#[source] rustls::Error),
    #[error("client CA: {0}")]
    ClientCaPem(#[source] PemError),
    #[error("client CA: no PEM certificate found")]
    NoClientCa,
    #[error("client CA: {0}")]
    ClientCa(#[source] rustls::Error),
    #[error("client CA: {0}")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(default_provider())
}

/// A serving certificate chain and key that parse and belong together.
#[derive(Clone, Debug)]
pub struct ServingCert {
    pub key: Arc<CertifiedKey>,
    /// Expiry of the leaf certificate, Unix seconds.
    pub not_after: i64,
}

impl ServingCert {
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServingCert, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(TlsError::Certificate)?;
        let leaf = chain.first().ok_or(TlsError::NoCertificate)?;
        let not_after = not_after(leaf).ok_or(TlsError::Validity)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(TlsError::Key)?;
        let certified =
            CertifiedKey::from_der(chain, key, &provider()).map_err(TlsError::Mismatch)?;
        Ok(ServingCert {
            key: Arc::new(certified),
            not_after,
        })
    }
}

/// Serves the current certificate; reloads swap it without a restart.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    pub fn new(cert: &ServingCert) -> Self {
        CertResolver {
            current: RwLock::new(cert.key.clone()),
        }
    }

    pub fn set(&self, cert: &ServingCert) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = cert.key.clone();
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// TLS 1.2 and 1.3 only, ALPN h2 then http/1.1, and with a client CA,
/// client certificates required and verified.
pub fn server_config(
    resolver: Arc<CertResolver>,
    client_ca_pem: Option<&[u8]>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.map_err(TlsError::ClientCaPem)?)
                    .map_err(TlsError::ClientCa)?;
            }
            if roots.is_empty() {
                return Err(TlsError::NoClientCa);
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(TlsError::ClientVerifier)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

// === impl expiry ===

/// `notAfter` of an X.509 certificate, as Unix seconds.
pub fn not_after(cert_der: &[u8]) -> Option<i64> {
    let (_, certificate) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    Some(certificate.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::issue;

    #[test]
    fn reads_expiry_of_generated_certificates() {
        let bundle = issue(&["localhost".to_owned()], &[], 30, None).unwrap();
        let cert =
            ServingCert::from_pem(bundle.cert_pem.as_bytes(), bundle.key_pem.as_bytes()).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let days = (cert.not_after - now) as f64 / 86_400.0;
        assert!((29.9..=30.1).contains(&days), "{days}");
    }

    #[test]
    fn mismatched_or_broken_pairs_are_rejected() {
        let a = issue(&["a".to_owned()], &[], 30, None).unwrap();
        let b = issue(&["b".to_owned()], &[], 30, None).unwrap();
        let err = ServingCert::from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap_err();
        assert!(matches!(err, TlsError::Mismatch(_)), "{err}");
        let half = &a.cert_pem.as_bytes()[..a.cert_pem.len() / 2];
        assert!(ServingCert::from_pem(half, a.key_pem.as_bytes()).is_err());
        assert!(ServingCert::from_pem(a.cert_pem.as_bytes(), b"").is_err());
        assert!(ServingCert::from_pem(b"", a.key_pem.as_bytes()).is_err());
    }

    #[test]
    fn expiry_of_garbage_is_unknown() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2],
            &[0x30, 0x02, 0x30],
            &[0xff; 64],
        ] {
            assert_eq!(not_after(input), None);
        }
    }
}
