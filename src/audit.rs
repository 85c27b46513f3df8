//! `portkey-guard audit`: the objects that already run, judged as they
//! stand. Each live object of the policy's namespace (and each route of
//! any namespace, for the hostname guard) goes through the same [`admit`]
//! as a write would, then the relations are applied across them all with
//! the namespace known in full. Pure: the reading is `cluster`'s, the
//! writing of reports `policy_report`'s.

use crate::admission::{admit, Reason, Stage, EXEMPTION_ANNOTATION};
use crate::cluster::{Inventory, Live};
use crate::kind::{Kind, HANDLED_KINDS};
use crate::offline::{
    reason_name, relate, request_for, Holders, LocatedFinding, ObjectReport, Requester, Status,
};
use crate::policy::Policy;
use serde::Serialize;
use std::collections::HashMap;

/// Who an authored object is judged as: no request, no person, no group.
pub const AUDIT_USER: &str = "portkey-guard:audit";

/// An object that could not be judged, and why (by field and kind, never
/// by a value of the object).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unjudged {
    /// `deployments.apps/portkey/portkey-gateway`
    pub object: String,
    pub error: String,
    /// The object as a PolicyReport names it.
    #[serde(skip)]
    pub resource: ResourceRef,
}

/// An object as a PolicyReport result names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// The verdict on what runs.
#[derive(Clone, Debug, Default)]
pub struct Audit {
    /// Every object judged, in the shape of `check`'s reports (no file or
    /// line: `source` names the object as kubectl does).
    pub objects: Vec<ObjectReport>,
    pub errors: Vec<Unjudged>,
    /// Policed kinds this API server does not serve (their CRD is not
    /// installed): skipped.
    pub not_served: Vec<Kind>,
}

/// Who `live` is judged as. What a built-in controller made from an owner
/// that exists (the owner reference's uid is an object read, of the kind
/// the controller makes it from) is judged as that controller, so `admit`
/// holds it to the pod-hardening rules only, as at admission. Anything else
/// is judged as written by a person.
fn requester(live: &Live, kinds_by_uid: &HashMap<&str, Kind>, policy: &Policy) -> Requester {
    let by_person = Requester {
        username: AUDIT_USER.to_owned(),
        groups: Vec::new(),
    };
    let Some(owner) = live.object.controller_owner() else {
        return by_person;
    };
    let group = owner.api_version.split_once('/').map_or("", |(g, _)| g);
    let owner_kind = Kind::lookup(group, &owner.kind);
    if owner_kind.is_none() || kinds_by_uid.get(owner.uid.as_str()) != owner_kind.as_ref() {
        return by_person;
    }
    let kind = live.kind.info().name;
    let controller = policy.controllers.iter().find(|(_, grants)| {
        grants
            .iter()
            .any(|g| g.kind == kind && g.owner == owner.kind)
    });
    match controller {
        Some((username, _)) => Requester {
            username: username.clone(),
            groups: Vec::new(),
        },
        None => by_person,
    }
}

/// The exemption an object was written under, if the webhook noted one and
/// the policy still grants it (`user NAME` or `group NAME`).
fn exempted_by(live: &Live, policy: &Policy) -> Option<String> {
    let note = live
        .object
        .metadata
        .annotations
        .as_ref()?
        .get(EXEMPTION_ANNOTATION)?;
    let granted = match note.split_once(' ') {
        Some(("user", name)) => policy.exemptions.usernames.iter().any(|u| u == name),
        Some(("group", name)) => policy.exemptions.groups.iter().any(|g| g == name),
        _ => false,
    };
    granted.then(|| note.clone())
}

/// The object as a PolicyReport names it.
fn resource_of(live: &Live) -> ResourceRef {
    ResourceRef {
        api_version: live.resource.api_version.clone(),
        kind: live.resource.kind.clone(),
        namespace: live.object.metadata.namespace.clone(),
        name: live.object.metadata.name.clone().unwrap_or_default(),
        uid: live.object.metadata.uid.clone(),
    }
}

/// Where a kind sits in [`HANDLED_KINDS`]: the order reports list objects.
fn kind_order(kind: &str) -> usize {
    HANDLED_KINDS
        .iter()
        .position(|h| h.name == kind)
        .unwrap_or(usize::MAX)
}

/// Judges every object read, then the relations across them.
pub fn judge(inventory: &Inventory, policy: &Policy) -> Audit {
    let kinds_by_uid: HashMap<&str, Kind> = inventory
        .objects
        .iter()
        .filter_map(|l| Some((l.object.metadata.uid.as_deref()?, l.kind)))
        .collect();
    let mut audit = Audit {
        not_served: inventory.not_served.clone(),
        ..Audit::default()
    };
    for live in &inventory.objects {
        let unjudged = |error: String| Unjudged {
            object: live.reference(),
            error,
            resource: resource_of(live),
        };
        let requester = requester(live, &kinds_by_uid, policy);
        // A copy of the cached object's text: the cache keeps no tree.
        let mut req = request_for((*live.object).clone(), policy, &requester);
        let decision = match admit(&req, policy, Stage::Validate) {
            Ok(decision) => decision,
            Err(e) => {
                audit.errors.push(unjudged(describe_error(&e)));
                continue;
            }
        };
        let mut warnings = decision.warnings;
        let mut reason = reason_name(decision.reason);
        if let Some(who) = exempted_by(live, policy) {
            reason = reason_name(Reason::Exempted);
            warnings.push(format!(
                "portkey-guard: written under the exemption of {who} ({EXEMPTION_ANNOTATION}): reported, not enforced on that write"
            ));
        }
        let status = match (decision.reason, decision.allowed) {
            (Reason::OutOfScope, _) => Status::Skipped,
            (_, true) => Status::Allowed,
            (_, false) => Status::Denied,
        };
        audit.objects.push(ObjectReport {
            source: live.reference(),
            file: String::new(),
            line: 0,
            column: 0,
            api_version: live.resource.api_version.clone(),
            kind: live.resource.kind.clone(),
            namespace: live.object.metadata.namespace.clone(),
            name: req.name.clone(),
            status,
            reason,
            allowed: decision.allowed,
            violations: decision
                .findings
                .into_iter()
                .map(|finding| LocatedFinding {
                    finding,
                    file: String::new(),
                    line: 0,
                    column: 0,
                })
                .collect(),
            warnings,
            mutations: Vec::new(),
            // The request's own copy, moved: no third copy of the object.
            // The request's own copy (its tree, if admit built one).
            stored: req
                .object
                .take()
                .map(|o| o.json().clone())
                .unwrap_or_default(),
        });
    }
    relate(
        &mut audit.objects,
        policy,
        &inventory.complete,
        Holders::All,
        |_, _| (String::new(), 0, 0),
    );
    audit.objects.sort_by(|a, b| {
        (kind_order(&a.kind), &a.namespace, &a.name).cmp(&(
            kind_order(&b.kind),
            &b.namespace,
            &b.name,
        ))
    });
    audit
}

/// An error of `admit` on a live object, by field and kind only.
fn describe_error(error: &crate::admission::AdmitError) -> String {
    match error {
        crate::admission::AdmitError::Unreadable(e) => format!(
            "the object cannot be read: {}",
            crate::object::describe_json_error(e)
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Live;
    use crate::object::RawObject;
    use kube::core::ApiResource;
    use serde_json::{json, Value};

    fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: if group.is_empty() {
                version.into()
            } else {
                format!("{group}/{version}")
            },
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    fn live(kind: Kind, ar: ApiResource, mut json: Value) -> Live {
        json["apiVersion"] = Value::from(ar.api_version.clone());
        json["kind"] = Value::from(ar.kind.clone());
        Live {
            kind,
            resource: std::sync::Arc::new(ar),
            object: std::sync::Arc::new(RawObject::from_json(json).unwrap()),
        }
    }

    fn deployment(name: &str, uid: &str, image: &str, annotations: Value) -> Live {
        let mut d =
            crate::yaml::parse_one(include_str!("../deploy/portkey/deployment.yaml")).unwrap();
        d["metadata"]["name"] = json!(name);
        d["metadata"]["namespace"] = json!("portkey");
        d["metadata"]["uid"] = json!(uid);
        d["metadata"]["annotations"] = annotations;
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        live(
            Kind::Deployment,
            resource("apps", "v1", "Deployment", "deployments"),
            d,
        )
    }

    fn replica_set(owner_uid: &str, image: &str) -> Live {
        let d = deployment("gw", "rs-uid", image, json!({}));
        let mut rs = d.object.json().clone();
        rs["metadata"]["name"] = json!("gw-5d8f");
        rs["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment",
            "name": "gw", "uid": owner_uid, "controller": true}]);
        live(
            Kind::ReplicaSet,
            resource("apps", "v1", "ReplicaSet", "replicasets"),
            rs,
        )
    }

    fn rules_of(report: &ObjectReport) -> Vec<&str> {
        report
            .violations
            .iter()
            .map(|v| v.finding.violation.rule.as_str())
            .collect()
    }

    #[test]
    fn controller_made_objects_get_the_pod_hardening_only_when_their_owner_is_there() {
        let policy = Policy::default_policy();
        let owner = deployment("gw", "owner-uid", "portkeyai/gateway:1.11.0", json!({}));
        let made = replica_set("owner-uid", "portkeyai/gateway:1.11.0");
        let inventory = Inventory {
            objects: vec![owner, made],
            ..Inventory::default()
        };
        let audit = judge(&inventory, &policy);
        let by_name = |name: &str| audit.objects.iter().find(|o| o.name == name).unwrap();
        // The owner is judged in full: its image is not the pinned one.
        assert!(rules_of(by_name("gw")).contains(&"gateway.image"));
        // The ReplicaSet, made by the deployment controller from it, only
        // by the pod hardening (which it passes).
        assert!(
            rules_of(by_name("gw-5d8f")).is_empty(),
            "{:?}",
            rules_of(by_name("gw-5d8f"))
        );
        // An owner reference to nothing read earns nothing.
        let orphan = Inventory {
            objects: vec![replica_set("no-such-uid", "portkeyai/gateway:1.11.0")],
            ..Inventory::default()
        };
        let audit = judge(&orphan, &policy);
        assert!(rules_of(&audit.objects[0]).contains(&"gateway.image"));
    }

    #[test]
    fn findings_of_an_exempted_write_are_reported_and_marked() {
        let policy = Policy::from_yaml("exemptions:\n  groups: [platform-breakglass]\n").unwrap();
        let note = json!({EXEMPTION_ANNOTATION: "group platform-breakglass"});
        let inventory = Inventory {
            objects: vec![deployment(
                "breakglass",
                "u1",
                "portkeyai/gateway:1.14.0",
                note.clone(),
            )],
            ..Inventory::default()
        };
        let audit = judge(&inventory, &policy);
        let o = &audit.objects[0];
        assert_eq!(o.reason, "exempted");
        assert_eq!(o.status, Status::Denied);
        assert!(rules_of(o).contains(&"gateway.image"));
        assert!(o
            .warnings
            .iter()
            .any(|w| w.contains("group platform-breakglass")));
        // A note naming an exemption the policy no longer grants marks
        // nothing.
        let audit = judge(&inventory, &Policy::default_policy());
        assert_eq!(audit.objects[0].reason, "judged");
    }

    #[test]
    fn relations_use_the_namespace_known_in_full() {
        let policy = Policy::default_policy();
        // The gateway reads a Secret that no ExternalSecret produces: with
        // every ExternalSecret listed, that is known.
        let gw = deployment(
            "portkey-gateway",
            "u1",
            "portkeyai/gateway:1.12.1",
            json!({}),
        );
        let mut inventory = Inventory {
            objects: vec![gw],
            ..Inventory::default()
        };
        let audit = judge(&inventory, &policy);
        assert!(!rules_of(&audit.objects[0]).contains(&"relation.secret-source"));
        inventory.complete.insert(Kind::ExternalSecret);
        let audit = judge(&inventory, &policy);
        assert!(rules_of(&audit.objects[0]).contains(&"relation.secret-source"));
    }

    #[test]
    fn an_unreadable_object_is_an_error_that_names_no_value() {
        let good = deployment("bad", "u1", "portkeyai/gateway:1.12.1", json!({}));
        let mut json = good.object.json().clone();
        json["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
            json!("sk-live-SECRET");
        let d = live(
            Kind::Deployment,
            resource("apps", "v1", "Deployment", "deployments"),
            json,
        );
        let audit = judge(
            &Inventory {
                objects: vec![d],
                ..Inventory::default()
            },
            &Policy::default_policy(),
        );
        assert!(audit.objects.is_empty());
        assert_eq!(audit.errors.len(), 1);
        assert_eq!(audit.errors[0].object, "deployments.apps/portkey/bad");
        assert!(
            !audit.errors[0].error.contains("sk-live"),
            "{}",
            audit.errors[0].error
        );
    }
}
