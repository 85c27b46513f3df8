//! The `matchConditions` of the shipped webhook configurations
//! (`deploy/webhook/webhooks.yaml`), read from the file and evaluated as the
//! API server evaluates them, so a test can compare what they send with
//! what portkey-guard decides.
//!
//! The API server's matching logic for a webhook's conditions, in order
//! (`admissionregistration.k8s.io/v1`, `ValidatingWebhook.matchConditions`):
//!
//! 1. if any condition evaluates to false, the webhook is skipped;
//! 2. if all evaluate to true, the webhook is called;
//! 3. if any evaluates to an error (and none to false), the request is
//!    rejected with `failurePolicy: Fail`, and the webhook skipped with
//!    `Ignore`.
//!
//! The expressions run on `cel-interpreter` with `object` bound to the
//! object as JSON (what the API server binds for a CREATE or UPDATE), plus
//! the cel-go string functions of [`crate::cel_strings`].

use crate::cel_strings;
use cel_interpreter::{Context, Program, Value as Cel};
use portkey_guard::kind::{Kind, HANDLED_KINDS};
use serde_json::Value;

/// The label every namespace carries with its own name (set by the API
/// server since 1.21), the only label the selectors here use.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    Fail,
    Ignore,
}

/// What the API server does with a request, given a webhook's conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every condition is true: the webhook decides.
    Called,
    /// A condition is false (or one errs under `Ignore`): admitted without
    /// the webhook.
    Skipped,
    /// A condition errs and none is false, under `Fail`: the API server
    /// rejects the request itself. The errors, one per condition.
    Rejected(Vec<String>),
}

pub struct Condition {
    pub name: String,
    pub expression: String,
    program: Program,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition")
            .field("name", &self.name)
            .field("expression", &self.expression)
            .finish()
    }
}

/// A validating webhook that has `matchConditions`.
#[derive(Debug)]
pub struct ConditionedWebhook {
    pub name: String,
    pub failure_policy: FailurePolicy,
    /// The kinds its rules match (resources mapped to portkey-guard's kinds).
    pub kinds: Vec<Kind>,
    namespace_selector: Value,
    pub conditions: Vec<Condition>,
}

impl ConditionedWebhook {
    /// Evaluates every condition on `object` and combines the results as the
    /// API server does.
    pub fn evaluate(&self, object: &Value) -> Outcome {
        let mut context = Context::default();
        cel_strings::register(&mut context);
        if let Err(e) = context.add_variable("object", object.clone()) {
            return self.on_error(vec![format!("object: {e}")]);
        }
        let mut errors = Vec::new();
        for condition in &self.conditions {
            match condition.program.execute(&context) {
                Ok(Cel::Bool(true)) => {}
                Ok(Cel::Bool(false)) => return Outcome::Skipped,
                // The API server type-checks the expression to bool when the
                // configuration is written; anything else is an error.
                Ok(other) => errors.push(format!("{}: not a bool: {other:?}", condition.name)),
                Err(e) => errors.push(format!("{}: {e}", condition.name)),
            }
        }
        if errors.is_empty() {
            Outcome::Called
        } else {
            self.on_error(errors)
        }
    }

    fn on_error(&self, errors: Vec<String>) -> Outcome {
        match self.failure_policy {
            FailurePolicy::Fail => Outcome::Rejected(errors),
            FailurePolicy::Ignore => Outcome::Skipped,
        }
    }

    /// Whether the namespace selector matches a namespace called `name`
    /// that carries only its name label.
    pub fn selects_namespace(&self, name: &str) -> Result<bool, String> {
        selector_matches(&self.namespace_selector, name)
    }
}

/// The validating webhooks of `text` (a webhook configuration file) that
/// have `matchConditions`, each expression compiled.
pub fn conditioned_webhooks(text: &str) -> Result<Vec<ConditionedWebhook>, String> {
    let limits = portkey_guard::yaml::Limits::default();
    let documents = portkey_guard::yaml::parse_stream(text, &limits).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for document in documents {
        let doc = document.value;
        if doc["kind"] != "ValidatingWebhookConfiguration" {
            continue;
        }
        for webhook in doc["webhooks"].as_array().into_iter().flatten() {
            let Some(conditions) = webhook.get("matchConditions") else {
                continue;
            };
            let name = string_at(webhook, "name")?;
            found.push(read_webhook(name, webhook, conditions)?);
        }
    }
    Ok(found)
}

fn read_webhook(
    name: String,
    webhook: &Value,
    conditions: &Value,
) -> Result<ConditionedWebhook, String> {
    let failure_policy = match webhook.get("failurePolicy").and_then(Value::as_str) {
        // Fail is the default of admissionregistration.k8s.io/v1.
        None | Some("Fail") => FailurePolicy::Fail,
        Some("Ignore") => FailurePolicy::Ignore,
        Some(other) => return Err(format!("{name}: unknown failurePolicy {other}")),
    };
    let conditions = conditions
        .as_array()
        .ok_or_else(|| format!("{name}: matchConditions is not a list"))?
        .iter()
        .map(|c| {
            let condition_name = string_at(c, "name")?;
            let expression = string_at(c, "expression")?;
            let program = Program::compile(&expression)
                .map_err(|e| format!("{name}/{condition_name}: does not compile: {e}"))?;
            Ok(Condition {
                name: condition_name,
                expression,
                program,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut kinds = Vec::new();
    for rule in webhook["rules"].as_array().into_iter().flatten() {
        for group in rule["apiGroups"].as_array().into_iter().flatten() {
            for resource in rule["resources"].as_array().into_iter().flatten() {
                let handled = HANDLED_KINDS
                    .iter()
                    .find(|h| {
                        Some(h.group) == group.as_str() && Some(h.resource) == resource.as_str()
                    })
                    .ok_or_else(|| format!("{name}: no kind for {group}/{resource}"))?;
                kinds.push(handled.kind);
            }
        }
    }
    Ok(ConditionedWebhook {
        name,
        failure_policy,
        kinds,
        namespace_selector: webhook
            .get("namespaceSelector")
            .cloned()
            .unwrap_or(Value::Null),
        conditions,
    })
}

fn string_at(value: &Value, key: &str) -> Result<String, String> {
    value[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{key} is missing or not a string in {value}"))
}

/// A label selector over a namespace whose only label is its name label.
fn selector_matches(selector: &Value, namespace: &str) -> Result<bool, String> {
    let label = |key: &str| (key == NAMESPACE_NAME_LABEL).then_some(namespace);
    for (key, value) in selector["matchLabels"].as_object().into_iter().flatten() {
        if label(key) != value.as_str() {
            return Ok(false);
        }
    }
    for expression in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = string_at(expression, "key")?;
        let values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let value = label(&key);
        let matches = match expression["operator"].as_str() {
            Some("In") => value.is_some_and(|v| values.contains(&v)),
            Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
            Some("Exists") => value.is_some(),
            Some("DoesNotExist") => value.is_none(),
            other => return Err(format!("unknown selector operator {other:?}")),
        };
        if !matches {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn webhook(failure_policy: &str, expressions: &[&str]) -> ConditionedWebhook {
        let conditions: Vec<Value> = expressions
            .iter()
            .enumerate()
            .map(|(i, e)| json!({"name": format!("c{i}"), "expression": e}))
            .collect();
        let text = serde_json::to_string(&json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "webhooks": [{
                "name": "test.example", "failurePolicy": failure_policy,
                "namespaceSelector": {"matchExpressions": [
                    {"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": ["portkey"]}]},
                "matchConditions": conditions,
                "rules": [{"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"]}],
            }],
        }))
        .unwrap();
        conditioned_webhooks(&text).unwrap().remove(0)
    }

    #[test]
    fn combines_conditions_as_the_api_server() {
        let object = json!({"spec": {"x": 1}});
        let outcome = |policy, expressions: &[&str]| webhook(policy, expressions).evaluate(&object);
        assert_eq!(outcome("Fail", &["object.spec.x == 1"]), Outcome::Called);
        assert_eq!(
            outcome("Fail", &["true", "object.spec.x == 1"]),
            Outcome::Called
        );
        assert_eq!(outcome("Fail", &["object.spec.x == 2"]), Outcome::Skipped);
        // An error alone rejects under Fail, skips under Ignore.
        let missing = "object.metadata.name == 'a'";
        assert!(
            matches!(outcome("Fail", &[missing]), Outcome::Rejected(e) if e.len() == 1 && e[0].contains("metadata"))
        );
        assert_eq!(outcome("Ignore", &[missing]), Outcome::Skipped);
        // A false condition wins over an error, in either order.
        assert_eq!(outcome("Fail", &[missing, "false"]), Outcome::Skipped);
        assert_eq!(outcome("Fail", &["false", missing]), Outcome::Skipped);
        assert!(matches!(
            outcome("Fail", &["true", missing]),
            Outcome::Rejected(_)
        ));
        // A result that is not a bool is an error.
        assert!(matches!(
            outcome("Fail", &["object.spec.x"]),
            Outcome::Rejected(_)
        ));
    }

    #[test]
    fn reads_rules_and_selector() {
        let w = webhook("Fail", &["true"]);
        assert_eq!(w.name, "test.example");
        assert_eq!(w.kinds, [Kind::Ingress]);
        assert_eq!(w.failure_policy, FailurePolicy::Fail);
        assert!(w.selects_namespace("shop").unwrap());
        assert!(!w.selects_namespace("portkey").unwrap());
    }

    #[test]
    fn selectors() {
        let m = |selector: Value, ns| selector_matches(&selector, ns).unwrap();
        assert!(m(json!({}), "shop"));
        assert!(m(
            json!({"matchLabels": {NAMESPACE_NAME_LABEL: "shop"}}),
            "shop"
        ));
        assert!(!m(
            json!({"matchLabels": {NAMESPACE_NAME_LABEL: "shop"}}),
            "portkey"
        ));
        assert!(!m(json!({"matchLabels": {"team": "a"}}), "shop"));
        let expr = |op: &str| json!({"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": op, "values": ["portkey"]}]});
        assert!(m(expr("In"), "portkey"));
        assert!(!m(expr("In"), "shop"));
        assert!(m(expr("NotIn"), "shop"));
        assert!(!m(expr("NotIn"), "portkey"));
        assert!(m(expr("Exists"), "shop"));
        assert!(!m(expr("DoesNotExist"), "shop"));
        assert!(selector_matches(&expr("Sometimes"), "shop").is_err());
    }

    #[test]
    fn bad_configurations_are_errors() {
        let doc = |webhook: Value| {
            serde_json::to_string(
                &json!({"kind": "ValidatingWebhookConfiguration", "webhooks": [webhook]}),
            )
            .unwrap()
        };
        let unparsable = doc(
            json!({"name": "w", "matchConditions": [{"name": "c", "expression": "object.spec.("}]}),
        );
        assert!(conditioned_webhooks(&unparsable)
            .unwrap_err()
            .contains("does not compile"));
        let policy = doc(json!({"name": "w", "failurePolicy": "Maybe", "matchConditions": []}));
        assert!(conditioned_webhooks(&policy)
            .unwrap_err()
            .contains("failurePolicy"));
        let resource = doc(
            json!({"name": "w", "matchConditions": [], "rules": [{"apiGroups": ["x.io"], "resources": ["things"]}]}),
        );
        assert!(conditioned_webhooks(&resource)
            .unwrap_err()
            .contains("no kind for"));
        let unnamed = doc(json!({"matchConditions": []}));
        assert!(conditioned_webhooks(&unnamed).is_err());
        assert!(conditioned_webhooks("a: [").is_err());
    }
}
