//! deploy/webhook agrees with the binary: the webhook rules list exactly the
//! handled kinds, the configurations follow the admission contract, and the
//! webhook's own pod passes the restricted profile. Its certificate chain
//! keeps caBundle stable across renewals, its replicas can always roll, its
//! policy is a mounted ConfigMap, and its monitoring components scrape the
//! port that serves /metrics.

mod common;

use common::{load_one, load_yaml, repo_path};
use portkey_guard::admission::{admit, Stage};
use portkey_guard::kinds::HANDLED_KINDS;
use portkey_guard::offline::create_request;
use portkey_guard::policy::Policy;
use serde_json::Value;
use std::collections::BTreeSet;

type Rule = (String, String, String); // (group, version, resource)

fn webhook_configs() -> Vec<Value> {
    load_yaml(&repo_path("deploy/webhook/webhooks.yaml"))
}

fn rules_of(config: &Value) -> BTreeSet<Rule> {
    let mut out = BTreeSet::new();
    for webhook in config["webhooks"].as_array().unwrap() {
        for rule in webhook["rules"].as_array().unwrap() {
            for group in rule["apiGroups"].as_array().unwrap() {
                for version in rule["apiVersions"].as_array().unwrap() {
                    for resource in rule["resources"].as_array().unwrap() {
                        let resource = resource.as_str().unwrap();
                        assert!(!resource.contains('/'), "no subresources: {resource}");
                        out.insert((
                            group.as_str().unwrap().into(),
                            version.as_str().unwrap().into(),
                            resource.into(),
                        ));
                    }
                }
            }
        }
    }
    out
}

fn handled(only_mutated: bool) -> BTreeSet<Rule> {
    HANDLED_KINDS
        .iter()
        .filter(|h| !only_mutated || h.mutated)
        .flat_map(|h| {
            h.versions
                .iter()
                .map(move |v| (h.group.to_owned(), (*v).to_owned(), h.resource.to_owned()))
        })
        .collect()
}

#[test]
fn webhook_rules_list_exactly_the_handled_kinds() {
    let configs = webhook_configs();
    let mutating = configs
        .iter()
        .find(|c| c["kind"] == "MutatingWebhookConfiguration")
        .unwrap();
    let validating = configs
        .iter()
        .find(|c| c["kind"] == "ValidatingWebhookConfiguration")
        .unwrap();
    assert_eq!(rules_of(mutating), handled(true), "mutating rules");
    assert_eq!(rules_of(validating), handled(false), "validating rules");
}

#[test]
fn webhook_configurations_follow_the_admission_contract() {
    for config in webhook_configs() {
        assert_eq!(
            config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "portkey-guard/portkey-guard-ca"
        );
        let mutating = config["kind"] == "MutatingWebhookConfiguration";
        for w in config["webhooks"].as_array().unwrap() {
            let name = w["name"].as_str().unwrap();
            assert_eq!(
                w["admissionReviewVersions"],
                serde_json::json!(["v1"]),
                "{name}"
            );
            assert_eq!(w["sideEffects"], "None", "{name}");
            assert!(w["timeoutSeconds"].as_i64().unwrap() <= 5, "{name}");
            assert_eq!(w["failurePolicy"], "Fail", "{name}");
            // The Namespace itself is matched by its name label through an
            // objectSelector (which sees the old object too); everything
            // else by the namespace's name label.
            let namespaces_only = w["rules"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["resources"] == serde_json::json!(["namespaces"]));
            let selector = if namespaces_only {
                assert_eq!(w["namespaceSelector"], serde_json::json!({}), "{name}");
                &w["objectSelector"]["matchExpressions"][0]
            } else {
                &w["namespaceSelector"]["matchExpressions"][0]
            };
            assert_eq!(selector["key"], "kubernetes.io/metadata.name", "{name}");
            let path = w["clientConfig"]["service"]["path"].as_str().unwrap();
            assert_eq!(
                path,
                if mutating { "/mutate" } else { "/validate" },
                "{name}"
            );
            if mutating {
                assert_eq!(w["reinvocationPolicy"], "IfNeeded", "{name}");
            }
            // The webhook's own namespace is never intercepted.
            let values: Vec<&str> = selector["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            match selector["operator"].as_str().unwrap() {
                "In" => assert_eq!(values, ["portkey"], "{name}"),
                // The hostname guard: every namespace but the gateway's,
                // kube-system and the webhook's own included.
                "NotIn" => assert_eq!(values, ["portkey"], "{name}"),
                other => panic!("{name}: unexpected operator {other}"),
            }
        }
    }
}

#[test]
fn the_webhook_pod_passes_the_restricted_profile() {
    // Admit the webhook's Deployment as if its namespace were policed, and
    // look at the restricted-profile rules only (its UID is not the gateway's).
    let policy = Policy::from_yaml("namespace: portkey-guard\n").unwrap();
    let mut deployment = load_yaml(&repo_path("deploy/webhook/deployment.yaml")).remove(0);
    deployment["metadata"]["namespace"] = Value::from("portkey-guard");
    let decision = admit(
        &create_request(&deployment, &policy).unwrap(),
        &policy,
        Stage::Validate,
    )
    .unwrap();
    let pss: Vec<String> = decision
        .findings
        .iter()
        .filter(|f| f.violation.rule.as_str().starts_with("pss."))
        .map(|f| f.violation.to_string())
        .collect();
    assert!(pss.is_empty(), "{pss:?}");
    let spec = &deployment["spec"]["template"]["spec"];
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert!(deployment["spec"]["replicas"].as_i64().unwrap() >= 2);
}

/// Every RBAC object of deploy/webhook, rendered as kustomize places them.
fn rbac_objects() -> Vec<Value> {
    let out = std::process::Command::new("kubectl")
        .args([
            "kustomize",
            &repo_path("deploy/webhook").display().to_string(),
        ])
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    portkey_guard::manifest::parse_documents("rendered", &text)
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding")
            )
        })
        .collect()
}

/// (namespace or "", group, resource, verb, resourceName or "") of every
/// permission granted.
type Grant = (String, String, String, String, String);

fn grants(objects: &[Value]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for role in objects
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
    {
        let namespace = role["metadata"]["namespace"].as_str().unwrap_or_default();
        for rule in role["rules"].as_array().unwrap() {
            let strings = |field: &str| -> Vec<String> {
                rule[field]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default()
            };
            let names = strings("resourceNames");
            let names = if names.is_empty() {
                vec![String::new()]
            } else {
                names
            };
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for verb in strings("verbs") {
                        for name in &names {
                            out.insert((
                                namespace.to_owned(),
                                group.clone(),
                                resource.clone(),
                                verb.clone(),
                                name.clone(),
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

fn grant(ns: &str, group: &str, resource: &str, verb: &str, name: &str) -> Grant {
    (
        ns.into(),
        group.into(),
        resource.into(),
        verb.into(),
        name.into(),
    )
}

#[test]
fn the_webhook_is_granted_exactly_what_it_reads_and_writes() {
    let objects = rbac_objects();
    let policy = Policy::default_policy();
    let ns = policy.namespace.as_str();
    let mut expected = BTreeSet::new();
    // Every policed kind of the namespace, read and watched, from the
    // binary's own list (Secrets are not in it) ...
    for kind in portkey_guard::cluster::policed_kinds() {
        let info = kind.info();
        if kind == portkey_guard::kinds::Kind::Namespace {
            continue;
        }
        for verb in ["get", "list", "watch"] {
            expected.insert(grant(ns, info.group, info.resource, verb, ""));
        }
        // ... and the routes of every namespace listed (the hostname guard).
        if kind.claims_hostnames() {
            expected.insert(grant("", info.group, info.resource, "list", ""));
        }
    }
    // The Namespace itself, by name.
    expected.insert(grant("", "", "namespaces", "get", ns));
    // Its own reports and Lease.
    for (scope, resource) in [(ns, "policyreports"), ("", "clusterpolicyreports")] {
        expected.insert(grant(
            scope,
            "wgpolicyk8s.io",
            resource,
            "get",
            "portkey-guard",
        ));
        expected.insert(grant(
            scope,
            "wgpolicyk8s.io",
            resource,
            "update",
            "portkey-guard",
        ));
        expected.insert(grant(scope, "wgpolicyk8s.io", resource, "create", ""));
    }
    for verb in ["get", "update"] {
        expected.insert(grant(
            "portkey-guard",
            "coordination.k8s.io",
            "leases",
            verb,
            "portkey-guard-audit",
        ));
    }
    expected.insert(grant(
        "portkey-guard",
        "coordination.k8s.io",
        "leases",
        "create",
        "",
    ));
    let granted = grants(&objects);
    let missing: Vec<&Grant> = expected.difference(&granted).collect();
    let extra: Vec<&Grant> = granted.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    // Never a Secret, a wildcard, or a verb that grants more.
    for (_, group, resource, verb, _) in &granted {
        assert!(resource != "secrets" && resource != "*" && group != "*" && verb != "*");
        assert!(["get", "list", "watch", "create", "update"].contains(&verb.as_str()));
    }
    // Bound to the webhook's service account only.
    for binding in objects
        .iter()
        .filter(|o| o["kind"].as_str().unwrap().ends_with("Binding"))
    {
        assert_eq!(
            binding["subjects"],
            serde_json::json!([{"kind": "ServiceAccount", "name": "portkey-guard", "namespace": "portkey-guard"}]),
            "{binding}"
        );
        let role = &binding["roleRef"];
        assert!(objects.iter().any(|o| o["kind"] == role["kind"]
            && o["metadata"]["name"] == role["name"]
            && o["metadata"]["namespace"] == binding["metadata"]["namespace"]));
    }
}

#[test]
fn the_webhook_mounts_one_short_lived_token_and_reaches_only_the_api_server() {
    for file in common::yaml_files(&repo_path("deploy/webhook")) {
        for object in load_yaml(&file) {
            if object["kind"] == "ServiceAccount" {
                assert_eq!(object["automountServiceAccountToken"], false);
            }
        }
    }
    let deployment = load_yaml(&repo_path("deploy/webhook/deployment.yaml")).remove(0);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "api-token")
        .expect("the token volume");
    let sources = volume["projected"]["sources"].as_array().unwrap();
    let token = sources
        .iter()
        .find_map(|s| s.get("serviceAccountToken"))
        .expect("a projected service account token");
    assert!(token["expirationSeconds"].as_i64().unwrap() <= 3600);
    assert!(
        token.get("audience").is_none(),
        "the API server's own audience"
    );
    let container = &pod["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "api-token")
        .unwrap();
    assert_eq!(
        mount["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    assert_eq!(mount["readOnly"], true);
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"--cluster"), "{args:?}");
    assert!(
        args.iter().any(|a| a.starts_with("--audit-interval=")),
        "{args:?}"
    );

    // Egress: the API server's ports, nothing else (no DNS).
    let policy = load_one(&repo_path("deploy/webhook/networkpolicy.yaml"));
    let egress = policy["spec"]["egress"].as_array().unwrap();
    let ports: BTreeSet<(String, i64)> = egress
        .iter()
        .flat_map(|rule| {
            rule["ports"]
                .as_array()
                .expect("every egress rule names its ports")
        })
        .map(|p| {
            (
                p["protocol"].as_str().unwrap().to_owned(),
                p["port"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        BTreeSet::from([("TCP".to_owned(), 443), ("TCP".to_owned(), 6443)])
    );
}

// === the certificate chain ===

/// The object of `kind` named `name` among `objects`.
fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Hours of a Go duration as cert-manager writes them ("720h").
fn hours(duration: &Value) -> u64 {
    let text = duration.as_str().expect("a duration");
    text.strip_suffix('h')
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("{text}: expected whole hours"))
}

#[test]
fn the_webhooks_trust_a_ca_that_serving_certificate_renewals_leave_alone() {
    let chain = load_yaml(&repo_path("deploy/webhook/certificate.yaml"));
    // Self-signed issuer -> CA certificate -> CA issuer -> serving certificate.
    let selfsigned = find(&chain, "Issuer", "portkey-guard-selfsigned");
    assert_eq!(selfsigned["spec"]["selfSigned"], serde_json::json!({}));
    let ca = find(&chain, "Certificate", "portkey-guard-ca");
    assert_eq!(ca["spec"]["isCA"], true);
    assert_eq!(ca["spec"]["issuerRef"]["name"], "portkey-guard-selfsigned");
    // A CA renewal keeps the key: what it signed stays trusted.
    assert_eq!(ca["spec"]["privateKey"]["rotationPolicy"], "Never");
    let ca_issuer = find(&chain, "Issuer", "portkey-guard-ca");
    assert_eq!(
        ca_issuer["spec"]["ca"]["secretName"],
        ca["spec"]["secretName"]
    );
    let serving = find(&chain, "Certificate", "portkey-guard-tls");
    assert_eq!(serving["spec"]["issuerRef"]["kind"], "Issuer");
    assert_eq!(serving["spec"]["issuerRef"]["name"], "portkey-guard-ca");
    assert_eq!(serving["spec"]["duration"], "720h");
    assert_eq!(serving["spec"]["renewBefore"], "240h");
    assert!(hours(&ca["spec"]["duration"]) >= 10 * hours(&serving["spec"]["duration"]));
    assert!(hours(&ca["spec"]["renewBefore"]) < hours(&ca["spec"]["duration"]));

    // The Deployment mounts the serving certificate's Secret; the API server
    // calls the Service by a name the certificate holds.
    let deployment = load_yaml(&repo_path("deploy/webhook/deployment.yaml")).remove(0);
    let volumes = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    assert!(volumes
        .iter()
        .any(|v| v["secret"]["secretName"] == serving["spec"]["secretName"]));
    let names: Vec<&str> = serving["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for config in webhook_configs() {
        // caBundle comes from the CA's Certificate, not the serving one.
        let inject = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
            .as_str()
            .unwrap();
        assert_eq!(inject, "portkey-guard/portkey-guard-ca");
        for w in config["webhooks"].as_array().unwrap() {
            let service = &w["clientConfig"]["service"];
            let host = format!(
                "{}.{}.svc",
                service["name"].as_str().unwrap(),
                service["namespace"].as_str().unwrap()
            );
            assert!(names.contains(&host.as_str()), "{host} not in {names:?}");
        }
    }
}

#[test]
fn the_expiry_alert_never_fires_in_normal_operation() {
    // Normal operation: the serving certificate never has less than
    // renewBefore left. The alert's threshold must be below that.
    let chain = load_yaml(&repo_path("deploy/webhook/certificate.yaml"));
    let serving = find(&chain, "Certificate", "portkey-guard-tls");
    let renew_before_seconds = hours(&serving["spec"]["renewBefore"]) * 3600;
    let rule = load_yaml(&repo_path(
        "deploy/webhook/components/alerts/prometheusrule.yaml",
    ))
    .remove(0);
    let alert = rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .find(|r| r["alert"] == "PortkeyGuardCertificateExpiresSoon")
        .expect("the certificate expiry alert");
    let expr = alert["expr"].as_str().unwrap();
    let threshold = expr
        .split_once(" - time() < ")
        .map(|(_, t)| t.trim())
        .unwrap_or_else(|| panic!("expected `expiry - time() < N`: {expr}"));
    let threshold_seconds: u64 = threshold
        .split('*')
        .map(|f| {
            f.trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{threshold}"))
        })
        .product();
    assert_eq!(threshold_seconds, 7 * 24 * 3600, "7 days");
    assert!(
        threshold_seconds < renew_before_seconds,
        "the alert ({threshold_seconds} s) would fire before renewal ({renew_before_seconds} s)"
    );
}

// === scheduling ===

#[test]
fn replicas_can_always_roll_on_a_small_cluster() {
    let deployment = load_yaml(&repo_path("deploy/webhook/deployment.yaml")).remove(0);
    let spec = &deployment["spec"];
    let pod = &spec["template"]["spec"];
    let replicas = spec["replicas"].as_i64().unwrap();
    // No hard placement rule: the surge pod schedules on one node too.
    let anti = &pod["affinity"]["podAntiAffinity"];
    assert!(anti["requiredDuringSchedulingIgnoredDuringExecution"].is_null());
    assert!(anti["preferredDuringSchedulingIgnoredDuringExecution"].is_array());
    for constraint in pod["topologySpreadConstraints"].as_array().unwrap() {
        assert_eq!(constraint["whenUnsatisfiable"], "ScheduleAnyway");
    }
    // A rollout adds before it removes, so it never needs the budget ...
    let rolling = &spec["strategy"]["rollingUpdate"];
    assert_eq!(rolling["maxUnavailable"], 0);
    assert!(rolling["maxSurge"].as_i64().unwrap() >= 1);
    // ... and the budget keeps one replica while still letting a drain
    // evict one at a time.
    let pdb = load_one(&repo_path("deploy/webhook/poddisruptionbudget.yaml"));
    let min_available = pdb["spec"]["minAvailable"].as_i64().unwrap();
    assert!(min_available >= 1 && min_available < replicas);
    assert_eq!(pdb["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );
    // Its own priority class, shipped with it; never a system-* class,
    // which belongs to kube-system.
    let class = pod["priorityClassName"].as_str().unwrap();
    assert!(!class.starts_with("system-"), "{class}");
    let shipped = load_one(&repo_path("deploy/webhook/priorityclass.yaml"));
    assert_eq!(shipped["kind"], "PriorityClass");
    assert_eq!(shipped["metadata"]["name"], class);
    assert_eq!(shipped["globalDefault"], false);
    assert!(kustomization_resources().contains(&"priorityclass.yaml".to_owned()));
}

fn kustomization() -> Value {
    load_one(&repo_path("deploy/webhook/kustomization.yaml"))
}

fn kustomization_resources() -> Vec<String> {
    kustomization()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

// === the policy as configuration ===

#[test]
fn the_policy_is_a_configmap_mounted_whole_and_passed_with_policy() {
    let kustomization = kustomization();
    let generator = kustomization["configMapGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "portkey-guard-policy")
        .expect("the policy ConfigMap");
    // No name hash: the volume is updated in place, not rolled out.
    assert_eq!(generator["options"]["disableNameSuffixHash"], true);
    assert_eq!(generator["files"], serde_json::json!(["policy.yaml"]));
    let text = std::fs::read_to_string(repo_path("deploy/webhook/policy.yaml")).unwrap();
    Policy::from_yaml(&text).unwrap_or_else(|e| panic!("deploy/webhook/policy.yaml: {e}"));

    let deployment = load_yaml(&repo_path("deploy/webhook/deployment.yaml")).remove(0);
    let pod = &deployment["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"] == "portkey-guard-policy")
        .expect("a volume of the policy ConfigMap");
    let container = &pod["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the policy volume mounted");
    // A subPath mount never sees the ConfigMap change.
    assert!(mount["subPath"].is_null());
    assert_eq!(mount["readOnly"], true);
    let expected = format!(
        "--policy={}/policy.yaml",
        mount["mountPath"].as_str().unwrap()
    );
    assert!(
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str() == Some(&expected)),
        "{expected} not in the args"
    );
}

// === monitoring ===

#[test]
fn the_monitors_scrape_the_metrics_port_as_job_portkey_guard() {
    let deployment = load_yaml(&repo_path("deploy/webhook/deployment.yaml")).remove(0);
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let probe_addr = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str()?.strip_prefix("--probe-addr="))
        .next()
        .expect("--probe-addr");
    let probe_port: i64 = probe_addr.rsplit(':').next().unwrap().parse().unwrap();
    let port_named = |name: &str| {
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["containerPort"].as_i64().unwrap())
    };
    let service = load_one(&repo_path("deploy/webhook/service.yaml"));
    // The alerts and the dashboard select job="portkey-guard": the value
    // of app.kubernetes.io/name on the Service (kustomization labels) and
    // on the pods.
    let labels = &kustomization()["labels"][0]["pairs"];
    assert_eq!(labels["app.kubernetes.io/name"], "portkey-guard");
    assert_eq!(
        pod["metadata"]["labels"]["app.kubernetes.io/name"],
        "portkey-guard"
    );

    let servicemonitor = load_one(&repo_path(
        "deploy/webhook/components/servicemonitor/servicemonitor.yaml",
    ));
    assert_eq!(servicemonitor["spec"]["jobLabel"], "app.kubernetes.io/name");
    assert_eq!(
        servicemonitor["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"]
    );
    for endpoint in servicemonitor["spec"]["endpoints"].as_array().unwrap() {
        assert_eq!(endpoint["path"], "/metrics");
        let service_port = service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == endpoint["port"])
            .expect("the ServiceMonitor's port is a Service port");
        let target = service_port["targetPort"].as_str().unwrap();
        assert_eq!(port_named(target), Some(probe_port));
    }

    let podmonitor = load_one(&repo_path(
        "deploy/webhook/components/podmonitor/podmonitor.yaml",
    ));
    assert_eq!(podmonitor["spec"]["jobLabel"], "app.kubernetes.io/name");
    for endpoint in podmonitor["spec"]["podMetricsEndpoints"]
        .as_array()
        .unwrap()
    {
        assert_eq!(endpoint["path"], "/metrics");
        assert_eq!(
            port_named(endpoint["port"].as_str().unwrap()),
            Some(probe_port)
        );
    }

    // The NetworkPolicy lets the monitoring namespace reach that port.
    let netpol = load_one(&repo_path("deploy/webhook/networkpolicy.yaml"));
    assert!(netpol["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .any(|rule| {
            rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                == "monitoring"
                && rule["ports"][0]["port"] == probe_port
        }));
}
