//! `portkey-guard certs`: a CA and a serving certificate for local runs,
//! kind clusters and tests. In a cluster, cert-manager issues them instead.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use time::{Duration, OffsetDateTime};

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Directory for ca.crt, ca.key, tls.crt and tls.key. A CA already there
    /// is reused, so re-running rotates the serving certificate only.
    #[arg(long)]
    pub out: PathBuf,
    /// Service name the API server calls.
    #[arg(long, default_value = "portkey-guard")]
    pub service: String,
    /// Namespace of that Service.
    #[arg(long, default_value = "portkey-guard")]
    pub namespace: String,
    /// Extra DNS name for the serving certificate (repeatable).
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// IP address for the serving certificate (repeatable).
    #[arg(long = "ip")]
    pub ip: Vec<IpAddr>,
    /// Validity of the serving certificate in days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a usable CA key: {source}")]
    CaKey { path: String, source: rcgen::Error },
    #[error("{0} exists without {1}: remove it or supply both")]
    HalfCa(String, String),
}

/// PEM text of a CA and a serving certificate signed by it.
pub struct Bundle {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

const CA_NAME: &str = "portkey-guard local CA";

fn ca_params(days: u32) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(i64::from(days));
    Ok(params)
}

/// The DNS names the API server may use for `service` in `namespace`.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Issues a serving certificate for `dns` and `ips`, signed by the CA in
/// `existing_ca` (PEM cert and key) or by a new CA.
pub fn issue(
    dns: &[String],
    ips: &[IpAddr],
    days: u32,
    existing_ca: Option<(String, String)>,
) -> Result<Bundle, CertError> {
    let (ca_cert_pem, ca_key) = match existing_ca {
        Some((cert, key)) => {
            let key = KeyPair::from_pem(&key).map_err(|source| CertError::CaKey {
                path: CA_KEY.to_owned(),
                source,
            })?;
            (cert, key)
        }
        None => {
            let key = KeyPair::generate()?;
            let cert = ca_params(3650)?.self_signed(&key)?;
            (cert.pem(), key)
        }
    };
    let ca_key_pem = ca_key.serialize_pem();
    // Signed as the CA certificate says (its own subject and key
    // identifier), read with the X.509 parser, not re-derived.
    let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key)?;

    let mut params = CertificateParams::new(dns.to_vec())?;
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        dns.first().map_or("portkey-guard", String::as_str),
    );
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(i64::from(days));
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Bundle {
        ca_cert_pem,
        ca_key_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn read_existing_ca(dir: &Path) -> Result<Option<(String, String)>, CertError> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| CertError::Io {
            path: p.display().to_string(),
            source,
        })
    };
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => Ok(Some((read(&cert_path)?, read(&key_path)?))),
        (false, false) => Ok(None),
        (true, false) => Err(CertError::HalfCa(
            cert_path.display().to_string(),
            CA_KEY.to_owned(),
        )),
        (false, true) => Err(CertError::HalfCa(
            key_path.display().to_string(),
            CA_CERT.to_owned(),
        )),
    }
}

/// Writes a file whole: to a temporary name, then renamed into place, so a
/// reader never sees half a certificate. Keys are mode 0600.
fn write_atomically(path: &Path, contents: &str, private: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn write(args: &CertsArgs) -> Result<String, CertError> {
    std::fs::create_dir_all(&args.out).map_err(|source| CertError::Io {
        path: args.out.display().to_string(),
        source,
    })?;
    let existing = read_existing_ca(&args.out)?;
    let mut dns = service_names(&args.service, &args.namespace);
    dns.extend(args.dns.iter().cloned());
    let bundle = issue(&dns, &args.ip, args.days, existing)?;
    write_atomically(&args.out.join(CA_CERT), &bundle.ca_cert_pem, false)?;
    write_atomically(&args.out.join(CA_KEY), &bundle.ca_key_pem, true)?;
    write_atomically(&args.out.join(TLS_KEY), &bundle.key_pem, true)?;
    write_atomically(&args.out.join(TLS_CERT), &bundle.cert_pem, false)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bundle.ca_cert_pem.as_bytes()))
}

/// Writes the files and prints the base64 `caBundle` for the webhook
/// configurations.
pub fn run(args: &CertsArgs) -> ExitCode {
    match write(args) {
        Ok(ca_bundle) => {
            println!("{ca_bundle}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portkey-guard: error: {e}");
            ExitCode::from(2)
        }
    }
}
