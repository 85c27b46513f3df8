//! The real binary over real TLS on loopback: HTTP/2 and HTTP/1.1 by ALPN,
//! untrusted clients, client certificates, certificate rotation under load,
//! policy reload, and SIGTERM with a request in flight.

mod common;

use common::server::{
    cert_args, connect, http_get, make_certs, peer_certificate, post, post_compliant, review,
    start_with_certs, tls_client, trusting, validate_head, ServerProcess,
};
use common::ScratchDir;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn allowed(body: &[u8]) -> bool {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["response"]["allowed"].as_bool().unwrap()
}

fn leaf_der(cert_pem_path: &Path) -> Vec<u8> {
    let pem = std::fs::read(cert_pem_path).unwrap();
    CertificateDer::pem_slice_iter(&pem)
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaks_http2_and_http1_to_trusting_clients_only() {
    let (dir, server) = start_with_certs("tls-basic", &[]);
    let ca = std::fs::read(dir.join("ca.crt")).unwrap();

    for (alpn, expected) in [
        (&b"h2"[..], &b"h2"[..]),
        (&b"http/1.1"[..], &b"http/1.1"[..]),
    ] {
        let stream = connect(&tls_client(Some(&ca), None, &[alpn]), server.admission)
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(expected));
        let (status, body) = post(
            stream,
            "/validate?timeout=5s",
            review("denied-deployment.json"),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        assert!(!allowed(&body));
        let stream = connect(&tls_client(Some(&ca), None, &[alpn]), server.admission)
            .await
            .unwrap();
        let (status, body) = post(stream, "/mutate", review("compliant-deployment.json"))
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert!(allowed(&body));
    }

    // A client that does not trust the CA cannot connect.
    assert!(connect(&tls_client(None, None, &[b"h2"]), server.admission)
        .await
        .is_err());
    // Plain HTTP on the TLS port: the connection is closed, the server is fine.
    let mut plain = std::net::TcpStream::connect(server.admission).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    std::io::Write::write_all(
        &mut plain,
        b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    )
    .unwrap();
    let mut reply = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut reply);
    assert!(
        !String::from_utf8_lossy(&reply).contains("AdmissionReview"),
        "no admission over plain HTTP"
    );
    let stream = connect(&tls_client(Some(&ca), None, &[b"h2"]), server.admission)
        .await
        .unwrap();
    assert_eq!(
        post(stream, "/validate", review("compliant-deployment.json"))
            .await
            .unwrap()
            .0,
        200
    );

    let metrics = server.metrics();
    assert!(
        metrics.contains("portkey_guard_tls_handshake_failures_total 2"),
        "{metrics}"
    );

    // One structured line per admission, without object contents.
    let log = server.log_when(|log| log.matches(r#""message":"admission""#).count() >= 5);
    let admissions: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "admission")
        .collect();
    assert_eq!(admissions.len(), 5, "{log}");
    let denied = admissions
        .iter()
        .find(|a| a["decision"] == "denied")
        .unwrap();
    assert_eq!(denied["uid"], "11111111-0000-4000-8000-000000000002");
    assert_eq!(denied["dry_run"], true);
    assert!(denied["rules"].as_str().unwrap().contains("gateway.image"));
    for field in [
        "kind",
        "namespace",
        "name",
        "operation",
        "user",
        "duration_us",
        "patch_operations",
    ] {
        assert!(denied.get(field).is_some(), "{field}");
    }
    assert!(
        !log.contains("portkeyai/gateway:latest") && !log.contains("secretKeyRef"),
        "object contents leaked into logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_with_a_client_ca() {
    let dir = ScratchDir::new("tls-mtls");
    make_certs(&dir);
    // A separate CA for clients, and a client certificate it signs.
    let client_ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "api server client CA");
    let client_ca = ca_params.self_signed(&client_ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, client_ca_key);
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params =
        rcgen::CertificateParams::new(vec!["kube-apiserver".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();
    std::fs::write(dir.join("client-ca.crt"), client_ca.pem()).unwrap();

    let mut args = cert_args(&dir);
    args.extend([
        "--client-ca".to_owned(),
        dir.join("client-ca.crt").display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&args, dir.join("serve.log"));
    let ca = std::fs::read(dir.join("ca.crt")).unwrap();

    let anonymous = tls_client(Some(&ca), None, &[b"h2"]);
    let refused = match connect(&anonymous, server.admission).await {
        Err(_) => true,
        Ok(stream) => post(stream, "/validate", review("compliant-deployment.json"))
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate is refused");

    let cert_pem = client_cert.pem();
    let key_pem = client_key.serialize_pem();
    let authenticated = tls_client(
        Some(&ca),
        Some((cert_pem.as_bytes(), key_pem.as_bytes())),
        &[b"h2"],
    );
    let stream = connect(&authenticated, server.admission).await.unwrap();
    let (status, body) = post(stream, "/validate", review("compliant-deployment.json"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(allowed(&body));
}

/// Lays out `src`'s tls.crt/tls.key the way a Secret volume does:
/// `tls.crt -> ..data/tls.crt`, `..data -> ..<version>`, swapped atomically.
fn publish(live: &Path, version: &str, cert: &Path, key: &Path) {
    let target = live.join(format!("..{version}"));
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(cert, target.join("tls.crt")).unwrap();
    std::fs::copy(key, target.join("tls.key")).unwrap();
    let tmp = live.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, live.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        let link = live.join(file);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), &link).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_while_a_client_keeps_sending() {
    let dir = ScratchDir::new("tls-rotate");
    let (issued, live) = (dir.join("issued"), dir.join("live"));
    std::fs::create_dir_all(&live).unwrap();
    make_certs(&issued);
    let old_leaf = leaf_der(&issued.join("tls.crt"));
    let old_key = dir.join("old.key");
    std::fs::copy(issued.join("tls.key"), &old_key).unwrap();
    publish(
        &live,
        "v1",
        &issued.join("tls.crt"),
        &issued.join("tls.key"),
    );

    let mut args = cert_args(&live);
    args.extend(["--reload-interval-seconds".to_owned(), "1".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&args, dir.join("serve.log"));
    let ca = std::fs::read(issued.join("ca.crt")).unwrap();
    let client = tls_client(Some(&ca), None, &[b"h2"]);

    // Re-issue under the same CA and swap while requests keep flowing.
    make_certs(&issued);
    let new_leaf = leaf_der(&issued.join("tls.crt"));
    assert_ne!(old_leaf, new_leaf);
    let (mut sent, mut failed, mut rotated_after) = (0, 0, None);
    let started = Instant::now();
    let mut published = false;
    while started.elapsed() < Duration::from_secs(20) {
        if !published && sent == 20 {
            publish(
                &live,
                "v2",
                &issued.join("tls.crt"),
                &issued.join("tls.key"),
            );
            published = true;
        }
        sent += 1;
        match connect(&client, server.admission).await {
            Ok(stream) => {
                let served = peer_certificate(&stream);
                match post(stream, "/validate", review("compliant-deployment.json")).await {
                    Ok((200, _)) => {}
                    _ => failed += 1,
                }
                if served == new_leaf {
                    rotated_after.get_or_insert(sent);
                    if sent > rotated_after.unwrap() + 20 {
                        break;
                    }
                }
            }
            Err(_) => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        rotated_after.is_some(),
        "the new certificate was never served"
    );
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during rotation"
    );
    assert!(server
        .metrics()
        .contains(r#"portkey_guard_certificate_reloads_total{result="success"} 1"#));

    // A new certificate with the old key does not match: not taken.
    make_certs(&issued);
    publish(&live, "v3", &issued.join("tls.crt"), &old_key);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stream = connect(&client, server.admission).await.unwrap();
    assert_eq!(
        peer_certificate(&stream),
        new_leaf,
        "the last good certificate keeps serving"
    );
    assert_eq!(
        post(stream, "/validate", review("compliant-deployment.json"))
            .await
            .unwrap()
            .0,
        200
    );
    assert!(server
        .metrics()
        .contains(r#"portkey_guard_certificate_reloads_total{result="failure"} 1"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_file_changes_are_picked_up_and_garbage_is_refused() {
    let dir = ScratchDir::new("policy-reload");
    make_certs(&dir);
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, "rules:\n  httproute.server-headers: warn\n").unwrap();
    let mut args = cert_args(&dir);
    args.extend([
        "--policy".to_owned(),
        policy.display().to_string(),
        "--reload-interval-seconds".to_owned(),
        "1".to_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&args, dir.join("serve.log"));
    let client = trusting(&dir, b"h2");
    let decide = || async {
        let stream = connect(&client, server.admission).await.unwrap();
        allowed(
            &post(stream, "/validate", review("httproute-server-headers.json"))
                .await
                .unwrap()
                .1,
        )
    };
    assert!(decide().await, "warn: allowed");

    std::fs::write(&policy, "rules:\n  httproute.server-headers: deny\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while decide().await {
        assert!(Instant::now() < deadline, "policy change never picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::write(&policy, "rules: [this is: not a policy\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!decide().await, "the last good policy keeps serving");
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"portkey_guard_policy_reloads_total{result="failure"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"portkey_guard_policy_reloads_total{result="success"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let (dir, mut server) = start_with_certs("sigterm", &[]);
    let client = trusting(&dir, b"http/1.1");

    // Send the headers and half the body, then SIGTERM.
    let body = review("denied-deployment.json");
    let mut stream = connect(&client, server.admission).await.unwrap();
    let head = validate_head(body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Draining: not ready, no new connections.
    assert_eq!(
        http_get(server.probes, "/readyz").map(|(s, _)| s),
        Some(503)
    );
    assert!(
        connect(&client, server.admission).await.is_err(),
        "no new connections while draining"
    );

    stream.write_all(&body[body.len() / 2..]).await.unwrap();
    stream.flush().await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"allowed\":false"), "{reply}");
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_others_are_served() {
    let dir = ScratchDir::new("slow");
    make_certs(&dir);
    let mut args = cert_args(&dir);
    args.extend(["--request-timeout-seconds".to_owned(), "1".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&args, dir.join("serve.log"));
    let client = trusting(&dir, b"http/1.1");

    // 1. Headers one byte at a time: closed once the header deadline passes.
    let started = Instant::now();
    let mut slow_headers = connect(&client, server.admission).await.unwrap();
    let head = b"POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaaa\r\n";
    let mut cut_off = false;
    for byte in head {
        if slow_headers.write_all(&[*byte]).await.is_err() || slow_headers.flush().await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    if !cut_off {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(3), slow_headers.read(&mut buf)).await;
        cut_off = matches!(read, Ok(Ok(0)) | Ok(Err(_)))
            || matches!(read, Ok(Ok(n)) if String::from_utf8_lossy(&buf[..n]).contains("408"));
    }
    assert!(cut_off, "a client trickling headers is disconnected");
    assert!(started.elapsed() < Duration::from_secs(8));

    // 2. A body one byte at a time: 408 once the request deadline passes,
    // while another client is served normally in the meantime.
    let body = review("compliant-deployment.json");
    let mut slow_body = connect(&client, server.admission).await.unwrap();
    let head = validate_head(body.len());
    slow_body.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(async move {
        for byte in body.iter().take(20) {
            if slow_body.write_all(&[*byte]).await.is_err() {
                break;
            }
            let _ = slow_body.flush().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut reply = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), slow_body.read_to_end(&mut reply)).await;
        String::from_utf8_lossy(&reply).into_owned()
    });
    let fast = trusting(&dir, b"h2");
    assert_eq!(post_compliant(&fast, server.admission).await, 200);
    let reply = writer.await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");

    // 3. A TCP connection that never starts TLS is closed after the deadline.
    let mut idle = tokio::net::TcpStream::connect(server.admission)
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "idle pre-TLS connection closed: {read:?}"
    );
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"portkey_guard_rejected_requests_total{reason="timeout"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_certificates_it_serves_a_local_self_signed_one() {
    let dir = ScratchDir::new("local-cert");
    let server = ServerProcess::start(&["--log-format", "json"], dir.join("serve.log"));
    let log = std::fs::read_to_string(&server.log).unwrap();
    let warning: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "WARN")
        .expect("a loud warning about the local certificate");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("local use only"),
        "{warning}"
    );
    let ca_file = warning["ca_file"].as_str().unwrap();
    let ca = std::fs::read(ca_file).unwrap();
    let stream = connect(&tls_client(Some(&ca), None, &[b"h2"]), server.admission)
        .await
        .unwrap();
    let (status, body) = post(stream, "/validate", review("denied-deployment.json"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(!allowed(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_tls_1_2_and_1_3_and_no_admission_on_the_plain_port() {
    let (_dir, server) = start_with_certs("tls-versions", &[]);
    let connect_with = |version: &str| {
        // SECLEVEL=0 makes the client really offer the old versions, so the
        // refusal is the server's.
        let out = std::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &server.admission.to_string(),
                version,
                "-servername",
                "localhost",
            ])
            .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl is installed");
        String::from_utf8_lossy(&out.stdout).contains("BEGIN CERTIFICATE")
    };
    assert!(connect_with("-tls1_3"), "TLS 1.3 is served");
    assert!(connect_with("-tls1_2"), "TLS 1.2 is served");
    for old in ["-tls1_1", "-tls1"] {
        assert!(!connect_with(old), "{old} is refused");
    }
    let metrics = server.metrics();
    assert!(
        metrics.contains("portkey_guard_tls_handshake_failures_total 2"),
        "the server refused them: {metrics}"
    );
    // The probe port never answers admission requests.
    for path in ["/mutate", "/validate"] {
        let mut plain = std::net::TcpStream::connect(server.probes).unwrap();
        let body = review("denied-deployment.json");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        std::io::Write::write_all(&mut plain, head.as_bytes()).unwrap();
        std::io::Write::write_all(&mut plain, &body).unwrap();
        let mut reply = String::new();
        std::io::Read::read_to_string(&mut plain, &mut reply).unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 404") || reply.starts_with("HTTP/1.1 405"),
            "{reply}"
        );
        assert!(!reply.contains("AdmissionReview"));
    }
}
