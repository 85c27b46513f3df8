//! Each relation beside its cases: it holds on the shipped manifests, it
//! breaks when either side changes, and it is unknown (silent) when the
//! other side is missing from the set — unless the set is complete for
//! that kind, where a missing name is broken.

use super::*;
use crate::kinds::rule::tests::ctx;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// The gateway's manifests of deploy/portkey (namespace portkey), with the
/// strategies ConfigMap built from its files.
fn shipped() -> Vec<Value> {
    let manifests = [
        include_str!("../../deploy/portkey/namespace.yaml"),
        include_str!("../../deploy/portkey/configmap-gateway.yaml"),
        include_str!("../../deploy/portkey/deployment.yaml"),
        include_str!("../../deploy/portkey/service.yaml"),
        include_str!("../../deploy/portkey/httproute.yaml"),
        include_str!("../../deploy/portkey/networkpolicy.yaml"),
        include_str!("../../deploy/portkey/servicemonitor.yaml"),
        include_str!("../../deploy/portkey/externalsecret.yaml"),
    ];
    let mut docs: Vec<Value> = manifests
        .iter()
        .map(|text| crate::yaml::parse_one(text).expect("a shipped manifest"))
        .collect();
    let data: serde_json::Map<String, Value> = crate::kinds::strategy::tests::shipped()
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    docs.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "portkey-model-configs"}, "data": data}));
    for doc in &mut docs {
        if doc["kind"] != "Namespace" {
            doc["metadata"]["namespace"] = Value::from("portkey");
        }
    }
    docs
}

fn kind_of(doc: &Value) -> Kind {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Kind::lookup(group, doc["kind"].as_str().unwrap_or_default()).expect("a handled kind")
}

fn read(doc: &Value) -> Object {
    Object::read(kind_of(doc), doc["metadata"]["namespace"].as_str(), doc).expect("readable")
}

fn set_of(docs: &[Value], complete: &[Kind]) -> ObjectSet {
    let objects = docs.iter().map(|d| Arc::new(read(d))).collect();
    let complete: HashSet<Kind> = complete.iter().copied().collect();
    ObjectSet::new(objects, complete, ctx().policy)
}

type Check = fn(&Objects<'_>, &Context) -> Vec<Broken>;

/// `holder-name path` of each broken reference, and every message.
fn found_in(check: Check, docs: &[Value], complete: &[Kind]) -> (Vec<String>, Vec<String>) {
    let set = set_of(docs, complete);
    let view = set.view();
    let found = check(&view, &ctx());
    let places = found
        .iter()
        .map(|b| {
            let holder = view.get(b.holder).expect("a holder of the set");
            format!("{} {}", holder.name, b.violation.path)
        })
        .collect();
    let messages = found.iter().map(|b| b.violation.to_string()).collect();
    (places, messages)
}

fn found(check: Check, docs: &[Value]) -> Vec<String> {
    found_in(check, docs, &[]).0
}

/// Every kind a live listing holds in full.
const LIVE: &[Kind] = &[
    Kind::Pod,
    Kind::Deployment,
    Kind::ReplicaSet,
    Kind::StatefulSet,
    Kind::DaemonSet,
    Kind::Job,
    Kind::CronJob,
    Kind::ConfigMap,
    Kind::Service,
    Kind::HttpRoute,
    Kind::ServiceMonitor,
    Kind::NetworkPolicy,
    Kind::ExternalSecret,
];

/// The shipped set with the object of `kind` changed by `edit`.
fn edited(kind: &str, edit: impl FnOnce(&mut Value)) -> Vec<Value> {
    let mut docs = shipped();
    let doc = docs
        .iter_mut()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"));
    edit(doc);
    docs
}

/// The shipped set with the object named `name` changed by `edit`.
fn edited_named(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<Value> {
    let mut docs = shipped();
    let doc = docs
        .iter_mut()
        .find(|d| d["metadata"]["name"] == name && d["kind"] != "Namespace")
        .unwrap_or_else(|| panic!("no {name}"));
    edit(doc);
    docs
}

/// The shipped set without the objects of `kind`.
fn without(docs: Vec<Value>, kind: &str) -> Vec<Value> {
    docs.into_iter().filter(|d| d["kind"] != kind).collect()
}

fn put(doc: &mut Value, pointer: &str, value: Value) {
    *doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer}")) = value;
}

#[test]
fn every_relation_holds_on_the_shipped_manifests() {
    for complete in [&[][..], LIVE] {
        let set = set_of(&shipped(), complete);
        let found: Vec<String> = check(&set.view(), &ctx())
            .into_iter()
            .map(|b| b.violation.to_string())
            .collect();
        assert!(found.is_empty(), "{found:#?}");
    }
}

#[test]
fn every_relation_is_in_the_table_once_with_its_own_rule() {
    let ids: Vec<RuleId> = rule_ids().collect();
    let relations: Vec<RuleId> = RuleId::ALL
        .iter()
        .copied()
        .filter(|r| r.is_relation())
        .collect();
    assert_eq!(ids, relations);
}

mod workload_selector {
    use super::*;

    #[test]
    fn holds() {
        assert!(found(super::super::workload_selector, &shipped()).is_empty());
    }

    #[test]
    fn broken_by_the_selector_or_by_the_template() {
        let selector = edited("Deployment", |d| {
            put(
                d,
                "/spec/selector/matchLabels/app.kubernetes.io~1name",
                json!("gateway"),
            )
        });
        assert_eq!(
            found(super::super::workload_selector, &selector),
            ["portkey-gateway spec.selector"]
        );
        let template = edited("Deployment", |d| {
            put(
                d,
                "/spec/template/metadata/labels",
                json!({"app": "portkey"}),
            )
        });
        let (places, messages) = found_in(super::super::workload_selector, &template, &[]);
        assert_eq!(places, ["portkey-gateway spec.selector"]);
        assert!(
            messages[0]
                .contains("expected app.kubernetes.io/name=portkey-gateway, got app=portkey"),
            "{messages:?}"
        );
        let expression = edited("Deployment", |d| {
            put(
                d,
                "/spec/selector",
                json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
            )
        });
        assert_eq!(found(super::super::workload_selector, &expression).len(), 1);
    }

    #[test]
    fn unknown_without_a_selector() {
        let docs = edited("Deployment", |d| {
            d["spec"].as_object_mut().unwrap().remove("selector");
            put(
                d,
                "/spec/template/metadata/labels",
                json!({"app": "portkey"}),
            );
        });
        assert!(found(super::super::workload_selector, &docs).is_empty());
    }
}

mod service_gateway {
    use super::*;

    #[test]
    fn holds_by_port_name_and_by_number() {
        assert!(found(super::super::service_gateway, &shipped()).is_empty());
        let by_number = edited("Service", |s| {
            put(s, "/spec/ports/0/targetPort", json!(8787))
        });
        assert!(found(super::super::service_gateway, &by_number).is_empty());
        let unset = edited("Service", |s| {
            s["spec"]["ports"][0]
                .as_object_mut()
                .unwrap()
                .remove("targetPort");
        });
        assert!(found(super::super::service_gateway, &unset).is_empty());
    }

    #[test]
    fn broken_by_a_target_port_the_gateway_lacks() {
        let by_name = edited("Service", |s| {
            put(s, "/spec/ports/0/targetPort", json!("metrics"))
        });
        let (places, messages) = found_in(super::super::service_gateway, &by_name, &[]);
        assert_eq!(places, ["portkey-gateway spec.ports[0].targetPort"]);
        assert!(
            messages[0].contains("Deployment portkey/portkey-gateway")
                && messages[0].contains("expected 8787 or http, got metrics"),
            "{messages:?}"
        );
        let by_number = edited("Service", |s| {
            put(s, "/spec/ports/0/targetPort", json!(9090))
        });
        assert_eq!(
            found(super::super::service_gateway, &by_number),
            ["portkey-gateway spec.ports[0].targetPort"]
        );
        // From the other side: the gateway's port renamed.
        let renamed = edited("Deployment", |d| {
            put(
                d,
                "/spec/template/spec/containers/0/ports/0/name",
                json!("web"),
            )
        });
        assert_eq!(
            found(super::super::service_gateway, &renamed),
            ["portkey-gateway spec.ports[0].targetPort"]
        );
    }

    #[test]
    fn broken_when_the_gateway_service_selects_no_pod() {
        let docs = edited("Service", |s| {
            put(
                s,
                "/spec/selector",
                json!({"app.kubernetes.io/name": "portkey-gateway", "tier": "api"}),
            )
        });
        let (places, messages) = found_in(super::super::service_gateway, &docs, &[]);
        assert_eq!(places, ["portkey-gateway spec.selector"]);
        assert!(
            messages[0].contains("Deployment portkey/portkey-gateway"),
            "{messages:?}"
        );
        // From the other side: the pods relabelled.
        let relabelled = edited("Deployment", |d| {
            put(
                d,
                "/spec/template/metadata/labels/app.kubernetes.io~1name",
                json!("gw"),
            );
            put(
                d,
                "/spec/selector/matchLabels/app.kubernetes.io~1name",
                json!("gw"),
            );
        });
        assert_eq!(
            found(super::super::service_gateway, &relabelled),
            ["portkey-gateway spec.selector"]
        );
    }

    #[test]
    fn another_service_selecting_nothing_is_unknown_unless_the_set_is_complete() {
        let mut docs = shipped();
        docs.push(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "cache", "namespace": "portkey"},
            "spec": {"selector": {"app": "redis"}, "ports": [{"port": 6379}]}}));
        assert!(found(super::super::service_gateway, &docs).is_empty());
        assert_eq!(
            found_in(super::super::service_gateway, &docs, LIVE).0,
            ["cache spec.selector"]
        );
        // It selects another workload of the set: not about the gateway.
        docs.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "redis", "namespace": "portkey"},
            "spec": {"selector": {"matchLabels": {"app": "redis"}},
                     "template": {"metadata": {"labels": {"app": "redis"}},
                                  "spec": {"containers": [{"name": "redis", "image": "redis:7"}]}}}}));
        assert!(found_in(super::super::service_gateway, &docs, LIVE)
            .0
            .is_empty());
    }

    #[test]
    fn unknown_without_gateway_pods() {
        let docs = without(
            edited("Service", |s| {
                put(s, "/spec/ports/0/targetPort", json!(9090))
            }),
            "Deployment",
        );
        assert!(found_in(super::super::service_gateway, &docs, LIVE)
            .0
            .is_empty());
    }
}

mod route_backend {
    use super::*;

    #[test]
    fn holds() {
        assert!(found(super::super::route_backend, &shipped()).is_empty());
    }

    #[test]
    fn broken_by_a_port_the_service_lacks() {
        let route = edited("HTTPRoute", |r| {
            put(r, "/spec/rules/0/backendRefs/0/port", json!(9999))
        });
        let (places, messages) = found_in(super::super::route_backend, &route, &[]);
        assert_eq!(
            places,
            ["portkey-gateway spec.rules[0].backendRefs[0].port"]
        );
        assert!(
            messages[0].contains("Service portkey/portkey-gateway does not expose port 9999")
                && messages[0].contains("(expected 8787, got 9999)"),
            "{messages:?}"
        );
        // From the other side: the Service's port moved.
        let service = edited("Service", |s| put(s, "/spec/ports/0/port", json!(80)));
        assert_eq!(
            found(super::super::route_backend, &service),
            ["portkey-gateway spec.rules[0].backendRefs[0].port"]
        );
    }

    #[test]
    fn mirrors_are_references_too() {
        let route = edited("HTTPRoute", |r| {
            r["spec"]["rules"][0]["filters"].as_array_mut().unwrap().push(json!(
                {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "portkey-gateway", "port": 81}}}
            ));
        });
        let places = found(super::super::route_backend, &route);
        assert_eq!(places.len(), 1);
        assert!(
            places[0].ends_with("requestMirror.backendRef.port"),
            "{places:?}"
        );
    }

    #[test]
    fn a_missing_service_is_unknown_unless_the_set_is_complete() {
        let route = edited("HTTPRoute", |r| {
            put(r, "/spec/rules/0/backendRefs/0/name", json!("portkey-gw"))
        });
        assert!(found(super::super::route_backend, &route).is_empty());
        assert_eq!(
            found_in(super::super::route_backend, &route, LIVE).0,
            ["portkey-gateway spec.rules[0].backendRefs[0].name"]
        );
        // Another namespace's Service is never in the set.
        let elsewhere = edited("HTTPRoute", |r| {
            r["spec"]["rules"][0]["backendRefs"][0]["namespace"] = json!("shop");
        });
        assert!(found_in(super::super::route_backend, &elsewhere, LIVE)
            .0
            .is_empty());
    }
}

mod servicemonitor_service {
    use super::*;

    #[test]
    fn holds() {
        assert!(found(super::super::servicemonitor_service, &shipped()).is_empty());
    }

    #[test]
    fn broken_by_a_port_name_the_service_lacks() {
        let monitor = edited("ServiceMonitor", |m| {
            put(m, "/spec/endpoints/0/port", json!("metrics"))
        });
        let (places, messages) = found_in(super::super::servicemonitor_service, &monitor, &[]);
        assert_eq!(places, ["portkey-gateway spec.endpoints[0].port"]);
        assert!(
            messages[0].contains("Service portkey/portkey-gateway has no port named metrics")
                && messages[0].contains("(expected http, got metrics)"),
            "{messages:?}"
        );
        // From the other side: the Service's port renamed.
        let service = edited("Service", |s| put(s, "/spec/ports/0/name", json!("web")));
        assert_eq!(
            found(super::super::servicemonitor_service, &service),
            ["portkey-gateway spec.endpoints[0].port"]
        );
    }

    #[test]
    fn broken_when_it_misses_the_gateway_service() {
        let service = edited("Service", |s| {
            put(s, "/metadata/labels", json!({"app": "portkey"}))
        });
        let (places, messages) = found_in(super::super::servicemonitor_service, &service, &[]);
        assert_eq!(places, ["portkey-gateway spec.selector"]);
        assert!(
            messages[0].contains("Service portkey/portkey-gateway"),
            "{messages:?}"
        );
    }

    #[test]
    fn unknown_without_services_or_in_other_namespaces() {
        let docs = without(
            edited("ServiceMonitor", |m| {
                put(m, "/spec/endpoints/0/port", json!("metrics"))
            }),
            "Service",
        );
        assert!(found(super::super::servicemonitor_service, &docs).is_empty());
        // With every Service listed, selecting none is known.
        assert_eq!(
            found_in(super::super::servicemonitor_service, &docs, LIVE).0,
            ["portkey-gateway spec.selector"]
        );
        let elsewhere = edited("ServiceMonitor", |m| {
            put(m, "/spec/endpoints/0/port", json!("metrics"));
            m["spec"]["namespaceSelector"] = json!({"matchNames": ["monitoring"]});
        });
        assert!(
            found_in(super::super::servicemonitor_service, &elsewhere, LIVE)
                .0
                .is_empty()
        );
        // No names, as no namespaceSelector: its own namespace.
        let own = edited("ServiceMonitor", |m| {
            put(m, "/spec/endpoints/0/port", json!("metrics"));
            m["spec"]["namespaceSelector"] = json!({"matchNames": []});
        });
        assert_eq!(
            found(super::super::servicemonitor_service, &own),
            ["portkey-gateway spec.endpoints[0].port"]
        );
    }
}

mod networkpolicy_gateway {
    use super::*;

    #[test]
    fn holds() {
        assert!(found(super::super::networkpolicy_gateway, &shipped()).is_empty());
        let everything = edited("NetworkPolicy", |p| put(p, "/spec/podSelector", json!({})));
        assert!(found(super::super::networkpolicy_gateway, &everything).is_empty());
    }

    #[test]
    fn broken_when_it_selects_no_pod() {
        let typo = edited("NetworkPolicy", |p| {
            put(
                p,
                "/spec/podSelector/matchLabels/app.kubernetes.io~1name",
                json!("portkey-gw"),
            )
        });
        let (places, messages) = found_in(super::super::networkpolicy_gateway, &typo, &[]);
        assert_eq!(places, ["portkey-gateway spec.podSelector"]);
        assert!(
            messages[0].contains("protects nothing")
                && messages[0].contains("Deployment portkey/portkey-gateway"),
            "{messages:?}"
        );
        // From the other side: the gateway pods relabelled.
        let relabelled = edited("Deployment", |d| {
            put(
                d,
                "/spec/template/metadata/labels/app.kubernetes.io~1name",
                json!("gw"),
            );
        });
        assert_eq!(
            found(super::super::networkpolicy_gateway, &relabelled),
            ["portkey-gateway spec.podSelector"]
        );
    }

    #[test]
    fn unknown_without_gateway_pods_or_for_another_workload() {
        let typo = edited("NetworkPolicy", |p| {
            put(
                p,
                "/spec/podSelector/matchLabels/app.kubernetes.io~1name",
                json!("portkey-gw"),
            )
        });
        assert!(found_in(
            super::super::networkpolicy_gateway,
            &without(typo, "Deployment"),
            LIVE
        )
        .0
        .is_empty());
        let mut docs = shipped();
        docs.push(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "redis", "namespace": "portkey"},
            "spec": {"podSelector": {"matchLabels": {"app": "redis"}}}}),
        );
        // Its pods may be in files not given ...
        assert!(found(super::super::networkpolicy_gateway, &docs).is_empty());
        // ... but a live namespace has them all.
        assert_eq!(
            found_in(super::super::networkpolicy_gateway, &docs, LIVE).0,
            ["redis spec.podSelector"]
        );
    }

    /// A Deployment of another app, whose pods carry `app: redis`.
    fn redis() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "redis", "namespace": "portkey"},
            "spec": {"selector": {"matchLabels": {"app": "redis"}},
                "template": {"metadata": {"labels": {"app": "redis"}},
                    "spec": {"containers": [{"name": "redis", "image": "redis:7.4"}]}}}})
    }

    #[test]
    fn broken_when_the_gateways_policy_selects_another_apps_pods() {
        let mut moved = edited("NetworkPolicy", |p| {
            put(
                p,
                "/spec/podSelector",
                json!({"matchLabels": {"app": "redis"}}),
            )
        });
        moved.push(redis());
        // Named after the gateway: it is meant for the gateway, which it
        // leaves unprotected, whether or not the namespace is known in full.
        for complete in [&[][..], LIVE] {
            let (places, messages) =
                found_in(super::super::networkpolicy_gateway, &moved, complete);
            assert_eq!(places, ["portkey-gateway spec.podSelector"]);
            assert!(
                messages[0]
                    .contains("selects the pods of Deployment portkey/redis but no gateway pod")
                    && messages[0].contains("Deployment portkey/portkey-gateway")
                    && messages[0].contains("(expected app.kubernetes.io/name=portkey-gateway")
                    && messages[0].contains("got app=redis)"),
                "{messages:?}"
            );
        }
        // Another app's own policy, selecting that app's pods, holds.
        let mut docs = shipped();
        docs.push(redis());
        docs.push(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "redis", "namespace": "portkey"},
            "spec": {"podSelector": {"matchLabels": {"app": "redis"}}}}),
        );
        for complete in [&[][..], LIVE] {
            assert!(
                found_in(super::super::networkpolicy_gateway, &docs, complete)
                    .0
                    .is_empty()
            );
        }
    }
}

mod secret_source {
    use super::*;

    #[test]
    fn holds() {
        assert!(found(super::super::secret_source, &shipped()).is_empty());
    }

    #[test]
    fn broken_by_a_key_the_external_secret_does_not_write() {
        let deployment = edited("Deployment", |d| {
            put(
                d,
                "/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/key",
                json!("OPENAI_KEY"),
            )
        });
        let (places, messages) = found_in(super::super::secret_source, &deployment, &[]);
        assert_eq!(
            places,
            ["portkey-gateway spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.key"]
        );
        assert!(
            messages[0].contains(
                "ExternalSecret portkey/portkey-provider-secrets does not write key OPENAI_KEY"
            ),
            "{messages:?}"
        );
        // From the other side: the ExternalSecret stops writing a key.
        let external_secret = edited("ExternalSecret", |e| {
            e["spec"]["data"].as_array_mut().unwrap().remove(3);
        });
        assert_eq!(
            found(super::super::secret_source, &external_secret),
            ["portkey-gateway spec.template.spec.containers[0].env[3].valueFrom.secretKeyRef.key"]
        );
    }

    #[test]
    fn a_template_writes_its_own_keys() {
        let docs = edited("ExternalSecret", |e| {
            e["spec"]["data"] = json!([{"secretKey": "raw", "remoteRef": {"key": "x"}}]);
            e["spec"]["target"]["template"] = json!({"data": {
                "OPENAI_API_KEY": "{{ .raw }}", "ANTHROPIC_API_KEY": "{{ .raw }}",
                "AZURE_OPENAI_API_KEY": "{{ .raw }}", "CEREBRAS_API_KEY": "{{ .raw }}"}});
        });
        assert!(found(super::super::secret_source, &docs).is_empty());
    }

    #[test]
    fn unknown_keys_and_missing_producers() {
        let key = |d: &mut Value| {
            put(
                d,
                "/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/key",
                json!("OPENAI_KEY"),
            )
        };
        // dataFrom writes keys no manifest lists.
        let mut docs = edited("Deployment", key);
        let es = docs
            .iter_mut()
            .find(|d| d["kind"] == "ExternalSecret")
            .unwrap();
        es["spec"]["dataFrom"] = json!([{"extract": {"key": "portkey"}}]);
        assert!(found(super::super::secret_source, &docs).is_empty());
        // No ExternalSecret produces the Secret: unknown, unless the set
        // holds every ExternalSecret.
        let other = edited("Deployment", |d| {
            put(
                d,
                "/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/name",
                json!("provider-keys"),
            )
        });
        assert!(found(super::super::secret_source, &other).is_empty());
        assert_eq!(
            found_in(super::super::secret_source, &other, LIVE).0,
            ["portkey-gateway spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name"]
        );
        let optional = edited("Deployment", |d| {
            put(
                d,
                "/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef",
                json!({"name": "provider-keys", "key": "k", "optional": true}),
            )
        });
        assert!(found_in(super::super::secret_source, &optional, LIVE)
            .0
            .is_empty());
    }
}

mod strategy_env {
    use super::*;

    fn env_removed(index: usize) -> Vec<Value> {
        edited("Deployment", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array_mut()
                .unwrap()
                .remove(index);
        })
    }

    #[test]
    fn holds() {
        assert!(found(super::super::strategy_env, &shipped()).is_empty());
    }

    #[test]
    fn broken_by_an_unset_variable() {
        // CEREBRAS_API_KEY is read once, by all-models.json.
        let (places, messages) = found_in(super::super::strategy_env, &env_removed(3), &[]);
        assert_eq!(places.len(), 1, "{places:?}");
        assert!(
            places[0].starts_with("portkey-model-configs data[\"all-models.json\"].targets["),
            "{places:?}"
        );
        assert!(
            messages[0].contains("$CEREBRAS_API_KEY is not set in container gateway of Deployment portkey/portkey-gateway"),
            "{messages:?}"
        );
        // From the other side: a strategy reads a variable nobody sets.
        let files = edited_named("portkey-model-configs", |c| {
            c["data"]["extra.json"] =
                json!(r#"{"targets": [{"provider": "openai", "api_key": "$MISTRAL_API_KEY"}]}"#);
        });
        assert_eq!(
            found(super::super::strategy_env, &files),
            ["portkey-model-configs data[\"extra.json\"].targets[0].api_key"]
        );
    }

    #[test]
    fn env_from_sources_set_variables() {
        let mut docs = env_removed(3);
        let d = docs.iter_mut().find(|d| d["kind"] == "Deployment").unwrap();
        d["spec"]["template"]["spec"]["containers"][0]["envFrom"]
            .as_array_mut()
            .unwrap()
            .push(json!({"secretRef": {"name": "cerebras"}, "prefix": "CEREBRAS_"}));
        // The Secret's producer is not in the set: unknown.
        assert!(found(super::super::strategy_env, &docs).is_empty());
        docs.push(
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "cerebras", "namespace": "portkey"},
            "spec": {"data": [{"secretKey": "API_KEY", "remoteRef": {"key": "c"}}]}}),
        );
        assert!(found(super::super::strategy_env, &docs).is_empty());
        let es = docs.last_mut().unwrap();
        es["spec"]["data"][0]["secretKey"] = json!("TOKEN");
        assert_eq!(found(super::super::strategy_env, &docs).len(), 1);
    }

    #[test]
    fn unknown_without_the_strategies_or_an_envfrom_source() {
        let docs: Vec<Value> = env_removed(3)
            .into_iter()
            .filter(|d| d["metadata"]["name"] != "portkey-model-configs")
            .collect();
        assert!(found_in(super::super::strategy_env, &docs, LIVE)
            .0
            .is_empty());
        // The gateway's envFrom ConfigMap could hold the variable.
        let docs: Vec<Value> = env_removed(3)
            .into_iter()
            .filter(|d| d["metadata"]["name"] != "portkey-gateway-config")
            .collect();
        assert!(found(super::super::strategy_env, &docs).is_empty());
    }
}

mod config_maps {
    use super::*;

    #[test]
    fn holds() {
        assert!(found(super::super::config_maps, &shipped()).is_empty());
        assert!(found_in(super::super::config_maps, &shipped(), LIVE)
            .0
            .is_empty());
    }

    #[test]
    fn broken_by_a_missing_config_map_in_a_complete_set() {
        let docs = without_named(shipped(), "portkey-model-configs");
        // Not given: unknown.
        assert!(found(super::super::config_maps, &docs).is_empty());
        let (places, messages) = found_in(super::super::config_maps, &docs, LIVE);
        assert_eq!(
            places,
            ["portkey-gateway spec.template.spec.volumes[2].configMap.name"]
        );
        assert!(
            messages[0].contains("ConfigMap portkey/portkey-model-configs does not exist"),
            "{messages:?}"
        );
    }

    #[test]
    fn broken_by_a_key_the_config_map_lacks() {
        let docs = edited("Deployment", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "portkey-gateway-config", "key": "LEVEL"}}}));
            d["spec"]["template"]["spec"]["volumes"][2]["configMap"]["items"] = json!([{"key": "all-models.json", "path": "all.json"}, {"key": "gone.json", "path": "gone.json"}]);
        });
        let mut places = found(super::super::config_maps, &docs);
        places.sort();
        assert_eq!(
            places,
            [
                "portkey-gateway spec.template.spec.containers[0].env[4].valueFrom.configMapKeyRef.key",
                "portkey-gateway spec.template.spec.volumes[2].configMap.items[1].key",
            ]
        );
    }

    #[test]
    fn broken_when_the_config_map_drops_a_key_read() {
        let mut docs = edited("Deployment", |d| {
            d["spec"]["template"]["spec"]["volumes"][2]["configMap"]["items"] =
                json!([{"key": "all-models.json", "path": "all-models.json"}]);
        });
        // The reference holds while the ConfigMap has the key ...
        assert!(found_in(super::super::config_maps, &docs, LIVE)
            .0
            .is_empty());
        // ... and breaks, on the workload, once the ConfigMap drops it.
        let config_map = docs
            .iter_mut()
            .find(|d| d["metadata"]["name"] == "portkey-model-configs")
            .expect("the strategies ConfigMap");
        config_map["data"]
            .as_object_mut()
            .expect("data")
            .remove("all-models.json");
        for complete in [&[][..], LIVE] {
            let (places, messages) = found_in(super::super::config_maps, &docs, complete);
            assert_eq!(
                places,
                ["portkey-gateway spec.template.spec.volumes[2].configMap.items[0].key"]
            );
            assert!(
                messages[0]
                    .contains("ConfigMap portkey/portkey-model-configs has no key all-models.json"),
                "{messages:?}"
            );
        }
    }

    #[test]
    fn optional_references_are_left_alone() {
        let docs = edited("Deployment", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["envFrom"]
                .as_array_mut()
                .unwrap()
                .push(json!({"configMapRef": {"name": "overrides", "optional": true}}));
        });
        assert!(found_in(super::super::config_maps, &docs, LIVE)
            .0
            .is_empty());
    }

    fn without_named(docs: Vec<Value>, name: &str) -> Vec<Value> {
        docs.into_iter()
            .filter(|d| d["metadata"]["name"] != name)
            .collect()
    }
}

#[test]
fn involving_finds_what_writing_an_object_breaks() {
    let set = set_of(&shipped(), &[]);
    // A new version of the Service, with its port renamed: the Service
    // monitor's reference breaks, and the Service itself no longer reaches
    // the gateway by name.
    let mut service = shipped()
        .into_iter()
        .find(|d| d["kind"] == "Service")
        .unwrap();
    put(&mut service, "/spec/ports/0/name", json!("web"));
    put(&mut service, "/spec/ports/0/targetPort", json!("web"));
    let admitted = Admitted::new(read(&service), ctx().policy);
    let view = set.with(&admitted);
    let mut rules: Vec<(String, bool)> =
        involving(&view, &ctx(), ObjectId::ADMITTED, Kind::Service)
            .into_iter()
            .map(|b| (b.violation.rule.to_string(), b.holder == ObjectId::ADMITTED))
            .collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            ("relation.service-gateway".to_owned(), true),
            ("relation.servicemonitor-service".to_owned(), false),
        ]
    );
    // The old Service is replaced, not counted twice.
    assert_eq!(view.of(Kind::Service).count(), 1);
    // An object of another namespace is not in the view at all.
    let mut elsewhere = service.clone();
    elsewhere["metadata"]["namespace"] = json!("shop");
    let admitted = Admitted::new(read(&elsewhere), ctx().policy);
    assert!(involving(
        &set.with(&admitted),
        &ctx(),
        ObjectId::ADMITTED,
        Kind::Service
    )
    .is_empty());
}

#[test]
fn what_another_apps_workload_is_involved_in_names_no_gateway_selector() {
    // The gateway's NetworkPolicy moved onto redis's pods, in a namespace
    // listed in full: broken, naming the gateway (not redis).
    let redis = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "redis", "namespace": "portkey"},
        "spec": {"selector": {"matchLabels": {"app": "redis"}},
            "template": {"metadata": {"labels": {"app": "redis"}},
                "spec": {"containers": [{"name": "redis", "image": "redis:7.4"}]}}}});
    let mut docs = edited("NetworkPolicy", |p| {
        put(
            p,
            "/spec/podSelector",
            json!({"matchLabels": {"app": "redis"}}),
        )
    });
    docs.push(redis.clone());
    let set = set_of(&docs, LIVE);
    let whole = check(&set.view(), &ctx());
    let redis_id = ObjectId(set.find(Kind::Deployment, "redis").unwrap());
    let gateway_id = ObjectId(set.find(Kind::Deployment, "portkey-gateway").unwrap());
    let np: Vec<&Broken> = whole
        .iter()
        .filter(|b| b.violation.rule == RuleId::RelationNetworkPolicyGateway)
        .collect();
    assert_eq!(np.len(), 1, "{whole:#?}");
    assert_eq!(np[0].others, [gateway_id]);
    assert!(!whole.iter().any(|b| b.others.contains(&redis_id)));
    // Writing redis again involves it in nothing ...
    let admitted = Admitted::new(read(&redis), ctx().policy);
    let found = involving(
        &set.with(&admitted),
        &ctx(),
        ObjectId::ADMITTED,
        Kind::Deployment,
    );
    assert!(found.is_empty(), "{found:#?}");
    // ... writing the gateway again involves it in the broken policy.
    let gateway = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let admitted = Admitted::new(read(gateway), ctx().policy);
    let rules: Vec<RuleId> = involving(
        &set.with(&admitted),
        &ctx(),
        ObjectId::ADMITTED,
        Kind::Deployment,
    )
    .into_iter()
    .map(|b| b.violation.rule)
    .collect();
    assert_eq!(rules, [RuleId::RelationNetworkPolicyGateway]);
}

/// Admission visits only the Services and NetworkPolicies a written
/// gateway workload can be involved with: what it finds is what visiting
/// every one finds, across namespaces where those relations hold and
/// break, for the gateway written as it was, relabelled, or renamed ports,
/// and for another app's workload that becomes a gateway.
#[test]
fn gateway_selectors_find_what_scanning_every_one_finds() {
    let app = |name: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "portkey"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name, "tier": "backend"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}}}})
    };
    let service = |name: &str, selector: Value| {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "portkey"},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    };
    let policy = |name: &str, selector: Value| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "portkey"},
            "spec": {"podSelector": selector}})
    };
    let gateway_labels = json!({"app.kubernetes.io/name": "portkey-gateway"});
    let mut namespace = shipped();
    for name in ["redis", "search", "worker"] {
        namespace.push(app(name));
        namespace.push(service(name, json!({"app": name})));
        namespace.push(policy(name, json!({"matchLabels": {"app": name}})));
    }
    let variants: Vec<Vec<Value>> = vec![
        vec![],
        // The gateway's policy moved onto redis's pods.
        vec![policy(
            "portkey-gateway",
            json!({"matchLabels": {"app": "redis"}}),
        )],
        // Selecting nothing; by expressions only; everything.
        vec![
            service("ghost", json!({"app": "ghost"})),
            policy("ghost", json!({"matchLabels": {"app": "ghost"}})),
        ],
        vec![policy(
            "by-expression",
            json!({"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["portkey-gateway"]}]}),
        )],
        vec![policy("everything", json!({}))],
        // redis's policy on search's pods: once redis is a gateway, the
        // policy is meant for it.
        vec![policy("redis", json!({"matchLabels": {"app": "search"}}))],
        // A Service and a policy selecting the gateway and a backend
        // label; a Service on the gateway port by name.
        vec![
            service("wide", json!({"tier": "backend"})),
            service("gateway-too", gateway_labels.clone()),
            policy("backends", json!({"matchLabels": {"tier": "backend"}})),
        ],
    ];
    let gateway = shipped()
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let mut written: Vec<Value> = vec![gateway.clone()];
    let mut relabelled = gateway.clone();
    put(
        &mut relabelled,
        "/spec/template/metadata/labels/app.kubernetes.io~1name",
        json!("gw"),
    );
    written.push(relabelled);
    let mut backend = gateway.clone();
    backend["spec"]["template"]["metadata"]["labels"]["tier"] = json!("backend");
    written.push(backend);
    let mut renamed_port = gateway.clone();
    put(
        &mut renamed_port,
        "/spec/template/spec/containers/0/ports/0/name",
        json!("web"),
    );
    written.push(renamed_port);
    // redis, written as a gateway.
    let mut redis_gateway = gateway.clone();
    redis_gateway["metadata"]["name"] = json!("redis");
    redis_gateway["spec"]["template"]["metadata"]["labels"] = json!({"app": "redis"});
    redis_gateway["spec"]["selector"] = json!({"matchLabels": {"app": "redis"}});
    written.push(redis_gateway);

    let mut compared = 0;
    let mut found_some = 0;
    for extra in &variants {
        let mut docs = namespace.clone();
        for doc in extra {
            // An object of the same kind and name replaces the shipped one.
            docs.retain(|d| {
                !(d["kind"] == doc["kind"] && d["metadata"]["name"] == doc["metadata"]["name"])
            });
            docs.push(doc.clone());
        }
        for complete in [&[][..], LIVE] {
            let set = set_of(&docs, complete);
            for doc in &written {
                let admitted = Admitted::new(read(doc), ctx().policy);
                assert!(!admitted.object.gateway_containers(ctx().policy).is_empty());
                let view = set.with(&admitted);
                for relation in [service_gateway as Check, networkpolicy_gateway] {
                    let involved = |v: &Objects<'_>| -> Vec<Broken> {
                        relation(v, &ctx())
                            .into_iter()
                            .filter(|b| {
                                b.holder == ObjectId::ADMITTED
                                    || b.others.contains(&ObjectId::ADMITTED)
                            })
                            .collect()
                    };
                    let visited = involved(&view);
                    assert_eq!(
                        visited,
                        involved(&view.scanning_all()),
                        "{extra:#?} {doc:#?}"
                    );
                    compared += 1;
                    found_some += usize::from(!visited.is_empty());
                }
            }
        }
    }
    assert_eq!(compared, variants.len() * 2 * written.len() * 2);
    // The comparison is over findings, not only over silence.
    assert!(found_some >= 10, "{found_some}");
}

/// Two objects of one kind and name (a directory holding a base and a
/// copy): the first given is the one looked up by name.
#[test]
fn the_first_object_of_a_kind_and_name_is_the_one_found() {
    let config_map = |key: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "twice", "namespace": "portkey"},
               "data": {key: "x"}})
    };
    let set = set_of(&[config_map("first"), config_map("second")], &[]);
    assert_eq!(set.find(Kind::ConfigMap, "twice"), Some(0));
    let view = set.view();
    assert_eq!(
        view.named(Kind::ConfigMap, "twice").map(|m| m.id),
        Some(ObjectId(0))
    );
}
