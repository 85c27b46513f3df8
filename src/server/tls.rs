//! TLS: the serving certificate (swappable while serving), client
//! certificate verification, and the certificate's expiry.

use rustls::crypto::ring::default_provider;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
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
    Certificate(String),
    #[error("private key: {0}")]
    Key(String),
    #[error("certificate and private key do not belong together: {0}")]
    Mismatch(String),
    #[error("client CA: {0}")]
    ClientCa(String),
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
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let leaf = chain.first().ok_or(TlsError::NoCertificate)?;
        let not_after = not_after(leaf)
            .ok_or_else(|| TlsError::Certificate("cannot read its validity".to_owned()))?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key(e.to_string()))?;
        let certified = CertifiedKey::from_der(chain, key, &provider())
            .map_err(|e| TlsError::Mismatch(e.to_string()))?;
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
                let cert = cert.map_err(|e| TlsError::ClientCa(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsError::ClientCa(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(TlsError::ClientCa("no PEM certificate found".to_owned()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::ClientCa(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

// === impl expiry ===

/// One DER element: (tag, contents, rest).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// `notAfter` of an X.509 certificate, as Unix seconds.
pub fn not_after(cert_der: &[u8]) -> Option<i64> {
    const SEQUENCE: u8 = 0x30;
    let (tag, certificate, _) = der_element(cert_der)?;
    (tag == SEQUENCE).then_some(())?;
    let (tag, tbs, _) = der_element(certificate)?;
    (tag == SEQUENCE).then_some(())?;
    let mut rest = tbs;
    // [0] EXPLICIT version is optional.
    let (tag, _, after) = der_element(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    // serialNumber, signature, issuer, then validity.
    for _ in 0..3 {
        rest = der_element(rest)?.2;
    }
    let (tag, validity, _) = der_element(rest)?;
    (tag == SEQUENCE).then_some(())?;
    let (_, _, after_not_before) = der_element(validity)?;
    let (tag, time, _) = der_element(after_not_before)?;
    parse_time(tag, std::str::from_utf8(time).ok()?)
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn parse_time(tag: u8, text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if text.len() == 12 => {
            let yy: i32 = text[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        0x18 if text.len() == 14 => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<u8> { rest.get(i..i + 2)?.parse().ok() };
    let month = time::Month::try_from(field(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(2)?).ok()?;
    let clock = time::Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
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
    fn der_reader_never_panics_on_garbage() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2],
            &[0x30, 0x02, 0x30],
            &[0xff; 64],
        ] {
            assert_eq!(not_after(input), None);
        }
        assert_eq!(parse_time(0x17, "491231235959Z"), Some(2524607999));
        assert_eq!(parse_time(0x18, "20500101000000Z"), Some(2524608000));
    }
}
