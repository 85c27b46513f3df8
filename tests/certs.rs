//! `portkey-guard certs`: a CA and a serving certificate that verify with
//! an independent implementation (openssl), private keys 0600, rotation
//! keeping the CA, and clear errors for half-written input.

mod common;

use common::ScratchDir;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn certs(out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portkey-guard"))
        .args(["certs", "--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

/// openssl, an implementation independent of ours, verifies the chain.
fn assert_verifies(ca: &Path, cert: &Path) {
    let verify = openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
    ]);
    assert!(verify.contains(": OK"), "{verify}");
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn issues_verifiable_certificates_and_rotates_under_the_same_ca() {
    let dir = ScratchDir::new("certs");
    let out = certs(
        &dir,
        &["--ip", "127.0.0.1", "--dns", "localhost", "--days", "30"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    use base64::Engine;
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8_lossy(&out.stdout).trim())
        .unwrap();
    assert_eq!(bundle, ca.as_bytes(), "stdout is the base64 caBundle");
    for key in ["tls.key", "ca.key"] {
        let mode = std::fs::metadata(dir.join(key))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
    let ca_path = dir.join("ca.crt");
    let tls_path = dir.join("tls.crt");
    assert_verifies(&ca_path, &tls_path);
    let sans = openssl(&[
        "x509",
        "-in",
        tls_path.to_str().unwrap(),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    for name in [
        "DNS:portkey-guard.portkey-guard.svc",
        "DNS:localhost",
        "IP Address:127.0.0.1",
    ] {
        assert!(sans.contains(name), "{name} in {sans}");
    }

    // Re-running keeps the CA (the API server's caBundle stays valid) and
    // issues a new serving certificate.
    let first_tls = std::fs::read_to_string(&tls_path).unwrap();
    let again = certs(&dir, &["--ip", "127.0.0.1"]);
    assert!(again.status.success());
    assert_eq!(std::fs::read_to_string(&ca_path).unwrap(), ca);
    assert_ne!(std::fs::read_to_string(&tls_path).unwrap(), first_tls);
    assert_verifies(&ca_path, &tls_path);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn half_written_or_broken_ca_is_a_clear_error() {
    let dir = ScratchDir::new("certs-bad");
    std::fs::write(dir.join("ca.crt"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    let out = certs(&dir, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists without ca.key"));

    std::fs::write(dir.join("ca.key"), "-----BEGIN PRIVATE KEY-----\ngarbage\n").unwrap();
    let out = certs(&dir, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a usable CA key"));
    assert!(
        !dir.join("tls.crt").exists(),
        "nothing half-written is left behind"
    );

    let out = certs(&dir, &["--ip", "not-an-ip"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
