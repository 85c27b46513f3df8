//! What cluster awareness costs, measured in-process (BENCHMARKS.md,
//! "Relations and audit"):
//!
//! * the relation step `/validate` adds to an admission (the webhook's own
//!   `relation_warnings`, snapshot taken from a real `Cache`), beside
//!   `admit()` itself, for the shipped namespace and for one of 1,000
//!   objects;
//! * `audit::judge` of 1,000 objects (every object through `admit`, then
//!   the relations), and building the cache's snapshot of them;
//! * the memory 1,000 cached objects take (RSS before and after reading
//!   them as the watchers would keep them, with the snapshot).
//!
//! cargo run --release --example cluster_costs

use kube::core::ApiResource;
use portkey_guard::admission::{admit, Stage};
use portkey_guard::audit::judge;
use portkey_guard::cluster::cache::{Cache, Snapshot};
use portkey_guard::cluster::{Inventory, Live};
use portkey_guard::kinds::Kind;
use portkey_guard::object::RawObject;
use portkey_guard::offline::create_request_as;
use portkey_guard::offline::Requester;
use portkey_guard::policy::Policy;
use portkey_guard::server::webhook::{relation_warnings, AppState};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn shipped() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/portkey");
    let mut docs = Vec::new();
    for name in [
        "namespace.yaml",
        "configmap-gateway.yaml",
        "deployment.yaml",
        "service.yaml",
        "httproute.yaml",
        "networkpolicy.yaml",
        "servicemonitor.yaml",
        "externalsecret.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        docs.push(portkey_guard::yaml::parse_one(&text).unwrap());
    }
    let mut data = serde_json::Map::new();
    for entry in std::fs::read_dir(dir.join("strategies")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        data.insert(name, Value::from(std::fs::read_to_string(&path).unwrap()));
    }
    docs.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "portkey-model-configs"}, "data": data}));
    for (i, d) in docs.iter_mut().enumerate() {
        if d["kind"] != "Namespace" {
            d["metadata"]["namespace"] = json!("portkey");
        }
        d["metadata"]["uid"] = json!(format!("shipped-{i}"));
    }
    docs
}

/// The shipped gateway plus objects the way a busy namespace holds them,
/// 1,000 in all: three gateway Deployments with ten ReplicaSets and two
/// Pods each, 95 other applications (Deployment, ReplicaSet, Service,
/// NetworkPolicy; an HTTPRoute for 60, an ExternalSecret for 30) and
/// ConfigMaps to make up the rest.
fn thousand() -> Vec<Value> {
    let mut docs: Vec<Value> = shipped()
        .into_iter()
        .filter(|d| d["kind"] != "Namespace")
        .collect();
    let gateway = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap()
        .clone();
    let owned = |kind: &str, name: String, owner: &Value, template: &Value| {
        let mut o = template.clone();
        o["kind"] = json!(kind);
        o["metadata"]["name"] = json!(name);
        o["metadata"]["uid"] = json!(format!("uid-{name}"));
        o["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "controller": true}]);
        o
    };
    // Two more gateway Deployments; ten ReplicaSets of history and two
    // Pods for each of the three.
    for i in 0..2 {
        let mut d = gateway.clone();
        d["metadata"]["name"] = json!(format!("portkey-gateway-canary-{i}"));
        d["metadata"]["uid"] = json!(format!("uid-canary-{i}"));
        docs.push(d);
    }
    let gateways: Vec<Value> = docs
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .cloned()
        .collect();
    for g in &gateways {
        let name = g["metadata"]["name"].as_str().unwrap();
        for r in 0..10 {
            docs.push(owned("ReplicaSet", format!("{name}-rs{r}"), g, g));
        }
        let rs = docs.last().unwrap().clone();
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": g["spec"]["template"]["metadata"].clone(),
            "spec": g["spec"]["template"]["spec"].clone()});
        pod["metadata"]["namespace"] = json!("portkey");
        for p in 0..2 {
            docs.push(owned("Pod", format!("{name}-pod{p}"), &rs, &pod));
        }
    }
    // Other applications: a Deployment and its ReplicaSet, a Service, a
    // NetworkPolicy; routes, ServiceMonitors and ExternalSecrets for some.
    for i in 0..95 {
        let app = format!("app-{i}");
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": app, "namespace": "portkey", "uid": format!("uid-{app}"), "labels": {"app": app}},
            "spec": {"selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": "app", "image": format!("example/{app}:1"),
                                      "ports": [{"name": "http", "containerPort": 8080}],
                                      "envFrom": [{"configMapRef": {"name": format!("{app}-config")}}]}]}}}});
        docs.push(owned("ReplicaSet", format!("{app}-rs"), &d, &d));
        docs.push(d);
        docs.push(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": app, "namespace": "portkey", "labels": {"app": app}},
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}));
        docs.push(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": app, "namespace": "portkey"},
            "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Ingress"]}}),
        );
        if i < 60 {
            docs.push(
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": app, "namespace": "portkey"},
                "spec": {"hostnames": [format!("{app}.internal")],
                         "rules": [{"backendRefs": [{"name": app, "port": 80}]}]}}),
            );
        }
        if i < 30 {
            docs.push(json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                "metadata": {"name": app, "namespace": "portkey"},
                "spec": {"secretStoreRef": {"kind": "ClusterSecretStore", "name": "bitwarden-backend"},
                         "data": [{"secretKey": "TOKEN", "remoteRef": {"key": app}}]}}));
        }
    }
    let mut i = 0;
    while docs.len() < 1000 {
        docs.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("app-{i}-config"), "namespace": "portkey"},
            "data": {"LOG_LEVEL": "info", "PORT": "8080", "FEATURE_A": "on", "FEATURE_B": "off", "REGION": "eu"}}));
        i += 1;
    }
    docs
}

fn resource(kind: Kind) -> ApiResource {
    let info = kind.info();
    let version = match kind {
        Kind::HttpRoute | Kind::ExternalSecret | Kind::ServiceMonitor => "v1",
        _ => info.versions[0],
    };
    ApiResource {
        group: info.group.into(),
        version: version.into(),
        api_version: if info.group.is_empty() {
            version.into()
        } else {
            format!("{}/{version}", info.group)
        },
        kind: info.name.into(),
        plural: info.resource.into(),
    }
}

fn kind_of(doc: &Value) -> Kind {
    let api_version = doc["apiVersion"].as_str().unwrap();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Kind::lookup(group, doc["kind"].as_str().unwrap()).unwrap()
}

fn live(docs: &[Value]) -> Vec<Live> {
    into_live(docs.to_vec())
}

/// Objects as the cache keeps them: their text only (a tree is built when
/// something needs one).
fn into_live(docs: Vec<Value>) -> Vec<Live> {
    docs.into_iter()
        .map(|d| {
            let kind = kind_of(&d);
            let text = serde_json::value::to_raw_value(&d).unwrap();
            Live {
                kind,
                resource: Arc::new(resource(kind)),
                object: Arc::new(RawObject::from_text(text).unwrap()),
            }
        })
        .collect()
}

fn complete() -> HashSet<Kind> {
    portkey_guard::cluster::policed_kinds()
        .filter(|k| *k != Kind::Namespace)
        .collect()
}

/// Median and 90th percentile of the per-call time over `batches` batches.
fn time(batches: usize, per_batch: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..per_batch {
        f(); // warm-up
    }
    let mut means: Vec<Duration> = (0..batches)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            started.elapsed() / per_batch as u32
        })
        .collect();
    means.sort();
    (means[batches / 2], means[batches * 9 / 10])
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// (what, the review's object) of the admissions measured.
fn admissions(docs: &[Value]) -> Vec<(&'static str, Value)> {
    let pick = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap()
            .clone()
    };
    let mut without_cerebras = pick("Deployment", "portkey-gateway");
    without_cerebras["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .remove(3);
    vec![
        (
            "gateway Deployment (unchanged)",
            pick("Deployment", "portkey-gateway"),
        ),
        ("gateway Deployment (breaks strategy-env)", without_cerebras),
        ("gateway Service", pick("Service", "portkey-gateway")),
        ("HTTPRoute", pick("HTTPRoute", "portkey-gateway")),
        (
            "strategies ConfigMap",
            pick("ConfigMap", "portkey-model-configs"),
        ),
    ]
}

fn measure_admission(label: &str, docs: &[Value], policy: &Policy) {
    let cache = Arc::new(Cache::default());
    cache.publish(Snapshot::of(live(docs), complete(), policy));
    let mut state = AppState::new(policy.clone());
    state.cache = Some(cache);
    println!(
        "\n{label} ({} objects): per admission, medians of 50 batches",
        docs.len()
    );
    println!("| object admitted | admit() validate | relation step | warnings |");
    println!("|---|---|---|---|");
    for (what, object) in admissions(docs) {
        let requester = Requester {
            username: "alice".into(),
            groups: Vec::new(),
        };
        // As the webhook has it: the object as text, read by nothing yet
        // (a copy per call: admit() and the relation step share what
        // they read of it, as they do for each request).
        let mut pristine = create_request_as(&object, policy, &requester).unwrap();
        pristine.object = pristine.object.map(|o| {
            RawObject::from_text(
                serde_json::value::RawValue::from_string(o.text().to_owned()).unwrap(),
            )
            .unwrap()
        });
        let decision = admit(&pristine.clone(), policy, Stage::Validate).unwrap();
        let warnings = relation_warnings(&state, &pristine.clone(), policy, &decision).len();
        let (copy, _) = time(50, 200, || {
            black_box(black_box(&pristine).clone());
        });
        let (admitted, _) = time(50, 200, || {
            let req = black_box(&pristine).clone();
            black_box(admit(&req, policy, Stage::Validate).unwrap());
        });
        let (related, _) = time(50, 200, || {
            let req = black_box(&pristine).clone();
            let decision = admit(&req, policy, Stage::Validate).unwrap();
            black_box(relation_warnings(&state, &req, policy, &decision));
        });
        println!(
            "| {what} | {:.1} µs | {:.1} µs | {warnings} |",
            admitted.saturating_sub(copy).as_secs_f64() * 1e6,
            related.saturating_sub(admitted).as_secs_f64() * 1e6,
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--breakdown") {
        breakdown();
        return;
    }
    let policy = Policy::default_policy();
    if std::env::args().any(|a| a == "--memory") {
        memory(&policy);
        return;
    }
    measure_admission("the shipped namespace", &shipped(), &policy);
    let docs = thousand();
    measure_admission("a namespace of 1,000 objects", &docs, &policy);
    audit_time(&docs, &policy);
}

/// Memory of 1,000 objects as the cache keeps them (JSON, trimmed) and
/// read for the relations, in a snapshot: RSS growth in a fresh process.
fn memory(policy: &Policy) {
    let texts: Vec<String> = thousand().iter().map(|d| d.to_string()).collect();
    let json_bytes: usize = texts.iter().map(String::len).sum();
    let before = rss_kib();
    // The objects as the watchers hand them over: text, read for their
    // apiVersion, kind and metadata.
    let objects: Vec<Live> = texts
        .into_iter()
        .map(|t| {
            let object =
                RawObject::from_text(serde_json::value::RawValue::from_string(t).unwrap()).unwrap();
            let group = object.api_version().rsplit_once('/').map_or("", |(g, _)| g);
            let kind = Kind::lookup(group, object.kind()).unwrap();
            Live {
                kind,
                resource: Arc::new(resource(kind)),
                object: Arc::new(object),
            }
        })
        .collect();
    let after_objects = rss_kib();
    let started = Instant::now();
    let snapshot = Snapshot::of(objects, complete(), policy);
    let snapshot_took = started.elapsed();
    let after_snapshot = rss_kib();
    println!(
        "memory of 1,000 objects ({} KiB of JSON): their text {} KiB, with the relations' reading {} KiB (RSS growth); snapshot built in {:.1} ms",
        json_bytes / 1024,
        after_objects.saturating_sub(before),
        after_snapshot.saturating_sub(before),
        snapshot_took.as_secs_f64() * 1e3
    );
    black_box(&snapshot);
}

/// The audit of 1,000 objects: each through admit(), then the relations.
fn audit_time(docs: &[Value], policy: &Policy) {
    let inventory = Inventory {
        objects: live(docs),
        complete: complete(),
        not_served: Vec::new(),
    };
    let policy = policy.clone();
    let (median, p90) = time(10, 1, || {
        black_box(judge(&inventory, &policy));
    });
    let audit = judge(&inventory, &policy);
    let findings: usize = audit.objects.iter().map(|o| o.violations.len()).sum();
    println!(
        "\naudit::judge of 1,000 objects: {:.1} ms median ({:.1} p90) of 10 runs; {} objects, {findings} findings",
        median.as_secs_f64() * 1e3,
        p90.as_secs_f64() * 1e3,
        audit.objects.len()
    );
}

/// Where the relation step's time goes, relation by relation, for the
/// gateway Deployment admitted into the namespace of 1,000 objects.
fn breakdown() {
    use portkey_guard::relations::{Admitted, Object, RELATIONS};
    let policy = Policy::default_policy();
    let docs = thousand();
    let snapshot = Snapshot::of(live(&docs), complete(), &policy);
    let d = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap()
        .clone();
    use portkey_guard::kinds::pod_template::PodTemplate;
    use portkey_guard::object::Doc;
    // As the webhook has it: received as text, its pod template read by
    // admit() already.
    let received =
        RawObject::from_text(serde_json::value::RawValue::from_string(d.to_string()).unwrap())
            .unwrap();
    PodTemplate::read_shared(Kind::Deployment, Doc::Object(&received)).unwrap();
    let (read, _) = time(50, 200, || {
        black_box(Admitted::new(
            Object::read(
                Kind::Deployment,
                Some("portkey"),
                Doc::Object(black_box(&received)),
            )
            .unwrap(),
            &policy,
        ));
    });
    println!(
        "read the admitted Deployment (its pod template shared with admit()): {:.1} µs",
        read.as_secs_f64() * 1e6
    );
    let admitted = Admitted::new(
        Object::read(Kind::Deployment, Some("portkey"), &d).unwrap(),
        &policy,
    );
    let ctx = portkey_guard::kinds::Context {
        policy: &policy,
        namespace: "portkey",
        username: "alice",
        origin: portkey_guard::kinds::Origin::Authored,
    };
    for relation in RELATIONS
        .iter()
        .filter(|r| r.kinds.contains(&Kind::Deployment))
    {
        let (t, _) = time(50, 200, || {
            let view = snapshot.set.with(&admitted);
            black_box((relation.check)(&view, &ctx));
        });
        println!("{}: {:.1} µs", relation.id, t.as_secs_f64() * 1e6);
    }
}
