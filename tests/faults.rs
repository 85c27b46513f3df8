//! Fault injection on the real binary: floods of idle connections,
//! truncated handshakes, oversized bodies, secrets that must not reach the
//! logs, and SIGTERM under load.

mod common;

use axum::body::Bytes;
use common::repo_path;
use common::server::{
    connect, post, post_compliant, review, start_with_certs as start, streamed_body, tls_client,
    trusting, validate_head,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_leave_memory_bounded_and_requests_served() {
    // More connections than the default allows: held, not queued.
    let (dir, server) = start("idle-flood", &["--max-connections", "16384"]);
    let client = trusting(&dir, b"h2");
    let before = rss_kib(server.pid());
    let mut idle = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        idle.push(
            tokio::net::TcpStream::connect(server.admission)
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let stream = connect(&client, server.admission).await.unwrap();
    let (status, _) = post(stream, "/validate", review("compliant-deployment.json"))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "served in {took:?}");
    let during = rss_kib(server.pid());
    eprintln!(
        "10,000 idle connections: RSS {before} -> {during} KiB ({} B each); \
         an admission meanwhile in {took:?}",
        (during - before) * 1024 / 10_000,
    );
    // About 8 KiB per idle connection; well under the pod's limit.
    assert!(
        during - before < 128 * 1024,
        "RSS grew from {before} KiB to {during} KiB"
    );
    drop(idle);
    assert_eq!(post_compliant(&client, server.admission).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_handshakes_are_dropped_and_counted() {
    let (dir, server) = start("truncated", &[]);
    // The first bytes of a TLS ClientHello, then nothing / a close.
    let partial_hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    for _ in 0..200 {
        let mut tcp = tokio::net::TcpStream::connect(server.admission)
            .await
            .unwrap();
        tcp.write_all(&partial_hello).await.unwrap();
    }
    // Garbage that is not TLS at all.
    for _ in 0..50 {
        let mut tcp = tokio::net::TcpStream::connect(server.admission)
            .await
            .unwrap();
        tcp.write_all(b"\x00\xff garbage \r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut buf)).await;
    }
    let client = trusting(&dir, b"h2");
    assert_eq!(post_compliant(&client, server.admission).await, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = server.metrics();
        let failures: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("portkey_guard_tls_handshake_failures_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if failures >= 250 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {failures} handshake failures counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_refused_before_it_is_sent() {
    let (dir, server) = start("oversized", &[]);
    let client = trusting(&dir, b"http/1.1");
    let mut stream = connect(&client, server.admission).await.unwrap();
    let head = validate_head(3 * 1024 * 1024 + 1);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    // No body byte sent: the declared length alone is refused.
    let mut reply = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&reply[..n]).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&reply[..n])
    );

    // Over HTTP/2 the 413 reaches the client as an answer, not as a reset
    // stream: with a declared length, and without one (cut off once past
    // the limit) while the client is still sending.
    let client = trusting(&dir, b"h2");
    let stream = connect(&client, server.admission).await.unwrap();
    let (status, _) = post(stream, "/validate", vec![b' '; 3 * 1024 * 1024 + 1])
        .await
        .unwrap();
    assert_eq!(status, 413, "declared length over HTTP/2");
    let stream = connect(&client, server.admission).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let (tx, body) = streamed_body(1);
    let request = hyper::Request::post("/validate")
        .header("host", "localhost")
        .body(body)
        .unwrap();
    let feeder = tokio::spawn(async move {
        // Four times the limit, unless the server stops the stream first.
        let chunk = Bytes::from(vec![b' '; 64 * 1024]);
        for _ in 0..4 * 48 {
            if tx.send(chunk.clone()).await.is_err() {
                return false;
            }
        }
        true
    });
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 413, "undeclared length over HTTP/2");
    assert!(!feeder.await.unwrap(), "the client is told to stop sending");

    // curl over HTTP/2 (and HTTP/1.1), declared and streamed from stdin
    // without a length: the 413 is what it reports.
    let big = dir.join("big.json");
    std::fs::write(&big, vec![b' '; 3 * 1024 * 1024 + 1]).unwrap();
    let url = format!("https://127.0.0.1:{}/validate", server.admission.port());
    for (protocol, upload, expected_version) in [
        ("--http2", "--data-binary", "2"),
        ("--http2", "--upload-file", "2"),
        ("--http1.1", "--data-binary", "1.1"),
    ] {
        let source = if upload == "--data-binary" {
            format!("@{}", big.display())
        } else {
            "-".to_owned()
        };
        let out = std::process::Command::new("curl")
            .args(["--silent", "--show-error", protocol, "--cacert"])
            .arg(dir.join("ca.crt"))
            .args(["-X", "POST", "-H", "Content-Type: application/json"])
            .args([upload, &source])
            .args([
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{http_version}",
                &url,
            ])
            .stdin(std::fs::File::open(&big).unwrap())
            .output()
            .expect("curl is installed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "curl {protocol} {upload}: {:?} {stdout} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout,
            format!("413 {expected_version}"),
            "curl {protocol} {upload}"
        );
    }
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"portkey_guard_rejected_requests_total{reason="too_large"} 6"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs_or_the_messages() {
    let (dir, server) = start("no-secrets", &[]);
    let secret = "sk-proj-LOGGED-NEVER-0123456789";
    let mut strategies = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(repo_path("deploy/portkey/strategies")).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.ends_with("all-models.json") {
            text = text.replacen("$OPENAI_API_KEY", secret, 1);
        }
        strategies.insert(
            path.file_name().unwrap().to_string_lossy().into_owned(),
            text,
        );
    }
    let object = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "portkey-model-configs", "namespace": "portkey"}, "data": strategies});
    let env_object = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "portkey"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "env": [{"name": "OPENAI_API_KEY", "value": secret}]}]}});
    // A value where the schema wants another type: serde's own message
    // would quote it.
    let mut malformed =
        serde_json::from_slice::<serde_json::Value>(&review("compliant-deployment.json")).unwrap()
            ["request"]["object"]
            .clone();
    malformed["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
        serde_json::Value::from(secret);
    let client = trusting(&dir, b"h2");
    for (kind, group, object) in [
        ("ConfigMap", "", object),
        ("Pod", "", env_object),
        ("Deployment", "apps", malformed),
    ] {
        let body = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "secret-test", "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": "x"}, "name": object["metadata"]["name"],
            "namespace": "portkey", "operation": "CREATE", "userInfo": {"username": "alice"},
            "object": object, "dryRun": false}});
        for path in ["/mutate", "/validate"] {
            let stream = connect(&client, server.admission).await.unwrap();
            let (status, reply) = post(stream, path, serde_json::to_vec(&body).unwrap())
                .await
                .unwrap();
            assert_eq!(status, 200);
            let reply = String::from_utf8_lossy(&reply);
            assert!(!reply.contains(secret), "{path} response echoes the secret");
            if path == "/validate" {
                assert!(reply.contains("\"allowed\":false"), "{reply}");
            }
            if kind == "Deployment" && path == "/validate" {
                assert!(
                    reply.contains(
                        "spec.template.spec.containers[0].ports[0].containerPort is not a valid Deployment: \
                         wrong type, expected i32"
                    ),
                    "the error names the field and the kind: {reply}"
                );
            }
        }
    }
    let log = server.log_when(|log| {
        log.contains("strategy.credentials")
            && log.contains("pod.credential-env")
            && log.contains("object could not be read")
    });
    assert!(!log.contains(secret), "the log contains the secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_completes_in_flight_requests_and_exits_0() {
    let (dir, mut server) = start("sigterm-load", &[]);
    let ca = std::fs::read(dir.join("ca.crt")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut workers = Vec::new();
    for i in 0..16 {
        let client = tls_client(
            Some(&ca),
            None,
            &[if i % 2 == 0 {
                &b"h2"[..]
            } else {
                &b"http/1.1"[..]
            }],
        );
        let addr = server.admission;
        let stop = stop.clone();
        let served = served.clone();
        workers.push(tokio::spawn(async move {
            let (mut ok, mut bad_status, mut refused) = (0u32, 0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match connect(&client, addr).await {
                    Ok(stream) => {
                        match post(stream, "/validate", review("denied-deployment.json")).await {
                            Ok((200, _)) => {
                                ok += 1;
                                served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            Ok(_) => bad_status += 1,
                            // The connection was closed before the request was taken.
                            Err(_) => refused += 1,
                        }
                    }
                    Err(_) => refused += 1,
                }
            }
            (ok, bad_status, refused)
        }));
    }
    // Under load, not after a fixed time: a busy machine may take longer
    // to get the first hundred requests through.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while served.load(std::sync::atomic::Ordering::SeqCst) < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than 100 requests served in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.signal("TERM");
    let code = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(30)))
        .await
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut totals = (0, 0, 0);
    for w in workers {
        let (ok, bad, refused) = w.await.unwrap();
        totals = (totals.0 + ok, totals.1 + bad, totals.2 + refused);
    }
    assert_eq!(code, Some(0), "clean exit");
    assert_eq!(totals.1, 0, "no request got an error status: {totals:?}");
    // The lines still gathering when the signal came were written on the
    // way out: one per answer, and the last line says so.
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    let logged = log.matches(r#""message":"admission""#).count();
    assert!(logged >= totals.0 as usize, "{logged} lines, {totals:?}");
    assert!(
        log.lines()
            .last()
            .unwrap_or("")
            .contains("shut down cleanly"),
        "{log}"
    );
}
