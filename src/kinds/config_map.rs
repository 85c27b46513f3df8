//! The gateway's ConfigMaps (README: Rules, `configmap.*` and
//! `strategy.*`): its settings, and its routing strategies under their
//! plain or kustomize-hashed name.

use super::rule::{check_all, looks_like_provider_key, read_at, Context, MalformedObject, Rule};
use super::strategy::{self, StrategyFiles};
use crate::name_pattern;
use crate::object::Doc;
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::api::core::v1::ConfigMap;

pub const RULES: &[Rule<ConfigMap>] = &[
    Rule::new(RuleId::ConfigMapGatewayConfig, gateway_config),
    Rule::new(RuleId::ConfigMapCredentials, credentials),
];

pub fn validate<'a>(
    ctx: &Context,
    doc: impl Into<Doc<'a>>,
) -> Result<Vec<Violation>, MalformedObject> {
    let doc = doc.into();
    let config_map: ConfigMap = read_at(doc, &[], "ConfigMap")?;
    let name = config_map.metadata.name.as_deref().unwrap_or_default();
    // Any suffix is judged, kustomize's hash included: no name is a way
    // around the strategy rules.
    if name_pattern::is_variant_of(&ctx.policy.strategies.config_map, name) {
        let files = StrategyFiles::read_shared(doc, || {
            Ok::<_, MalformedObject>(StrategyFiles::parse(&config_map))
        })?;
        return Ok(check_all(strategy::RULES, &*files, ctx));
    }
    Ok(check_all(RULES, &config_map, ctx))
}

/// Whether this is the gateway's ConfigMap (under its name or a generated
/// variant of it).
fn is_gateway_config(config_map: &ConfigMap, ctx: &Context) -> bool {
    let name = config_map.metadata.name.as_deref().unwrap_or_default();
    name_pattern::is_variant_of(&ctx.policy.gateway_config.name, name)
}

/// Every key of the ConfigMap with its field (`data`, `binaryData`) and
/// value.
fn entries(config_map: &ConfigMap) -> impl Iterator<Item = (&'static str, &String, &[u8])> {
    let text = config_map
        .data
        .iter()
        .flatten()
        .map(|(k, v)| ("data", k, v.as_bytes()));
    let binary = config_map
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| ("binaryData", k, v.0.as_slice()));
    text.chain(binary)
}

/// A credential-like key with a value: `configmap.credentials` judges it.
fn literal_credential(key: &str, value: &[u8], ctx: &Context) -> bool {
    name_pattern::matches_any(&ctx.policy.pods.credential_env_names, key) && !value.is_empty()
}

/// `configmap.credentials`: the gateway takes its ConfigMap envFrom, so a
/// credential-like key there is a credential in the gateway's environment,
/// out of Git's reach only if it is not there at all. The message names the
/// key, never the value. No ConfigMap of the namespace holds a value shaped
/// like a provider key, whatever the key is called.
pub fn credentials(config_map: &ConfigMap, ctx: &Context) -> Vec<Violation> {
    let gateway = is_gateway_config(config_map, ctx);
    entries(config_map)
        .filter_map(|(field, key, value)| {
            let message = if gateway && literal_credential(key, value, ctx) {
                format!("{key} looks like a credential: it belongs in a Secret from an ExternalSecret")
            } else if std::str::from_utf8(value).is_ok_and(looks_like_provider_key) {
                format!("{key} holds what looks like a provider key: it belongs in a Secret from an ExternalSecret")
            } else {
                return None;
            };
            Some(
                Violation::new(
                    RuleId::ConfigMapCredentials,
                    FieldPath::root(field).key(key),
                    message,
                    "no such key",
                    "a literal value",
                )
                .with_witness(&String::from_utf8_lossy(value)),
            )
        })
        .collect()
}

/// `configmap.gateway-config`: the gateway's ConfigMap, under its name or a
/// generated variant of it, sets each production setting to an allowed
/// value and holds nothing else but the names of `gateway.allowedEnv`:
/// every key reaches the gateway's environment (`NODE_OPTIONS`, a provider
/// key under a name that does not look like one). A credential-like key
/// with a value is `configmap.credentials`' to report. Messages name keys,
/// never values.
pub fn gateway_config(config_map: &ConfigMap, ctx: &Context) -> Vec<Violation> {
    if !is_gateway_config(config_map, ctx) {
        return Vec::new();
    }
    let data = config_map.data.as_ref();
    let mut out: Vec<Violation> = ctx
        .policy
        .gateway_config
        .values
        .iter()
        .filter_map(|(key, allowed)| {
            let actual = data.and_then(|d| d.get(key));
            (!actual.is_some_and(|v| allowed.contains(v))).then(|| {
                Violation::new(
                    RuleId::ConfigMapGatewayConfig,
                    FieldPath::root("data").key(key),
                    "the gateway's production setting",
                    allowed.join(" | "),
                    shown(actual.map(|v| format!("{v:?}"))),
                )
            })
        })
        .collect();
    out.extend(
        entries(config_map)
            .filter(|(_, key, value)| !ctx.policy.gateway_may_set(key) && !literal_credential(key, value, ctx))
            .map(|(field, key, value)| {
                Violation::new(
                    RuleId::ConfigMapGatewayConfig,
                    FieldPath::root(field).key(key),
                    format!(
                        "{key} is not a setting of the gateway: the gateway takes every key of this ConfigMap into its environment"
                    ),
                    "a key of gatewayConfig.values or gateway.allowedEnv",
                    key.as_str(),
                )
                .with_witness(&String::from_utf8_lossy(value))
            }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::rule::tests::ctx;
    use serde_json::json;

    fn violations(doc: serde_json::Value) -> Vec<Violation> {
        validate(&ctx(), &doc).unwrap()
    }

    #[test]
    fn gateway_config_values() {
        let ok = json!({"metadata": {"name": "portkey-gateway-config"}, "data": {
            "NODE_ENV": "production", "PORT": "8787", "HEALTH_CHECK_PATH": "/v1/health", "LOG_LEVEL": "info"}});
        assert!(violations(ok.clone()).is_empty());
        let mut bad = ok;
        bad["data"]["LOG_LEVEL"] = json!("trace");
        bad["data"].as_object_mut().unwrap().remove("PORT");
        let paths: Vec<String> = violations(bad).into_iter().map(|v| v.path).collect();
        assert_eq!(paths, ["data.LOG_LEVEL", "data.PORT"]);
    }

    #[test]
    fn no_credentials_in_the_gateway_config() {
        let doc = json!({"metadata": {"name": "portkey-gateway-config"}, "data": {
            "NODE_ENV": "production", "PORT": "8787", "HEALTH_CHECK_PATH": "/v1/health", "LOG_LEVEL": "info",
            "OPENAI_API_KEY": "sk-live-literal"}, "binaryData": {"CLIENT_SECRET": "c2VjcmV0"}});
        let found = violations(doc);
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["data.OPENAI_API_KEY", "binaryData.CLIENT_SECRET"]);
        assert!(found
            .iter()
            .all(|v| !v.to_string().contains("sk-live-literal")));
        // Any other ConfigMap: a provider key by its shape, under any key.
        let key = "sk-proj-Abc123LiteralKeyValue0000";
        let doc = json!({"metadata": {"name": "app-settings"}, "data": {
            "notes": key, "OPENAI_API_KEY": "not-a-key-shape", "model": "gpt-4o-mini"}});
        let found = violations(doc);
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["data.notes"]);
        assert!(found.iter().all(|v| !v.to_string().contains(key)));
    }

    #[test]
    fn the_gateway_config_holds_only_its_settings_and_the_allowed_env() {
        let settings = json!({"NODE_ENV": "production", "PORT": "8787",
            "HEALTH_CHECK_PATH": "/v1/health", "LOG_LEVEL": "info"});
        let mut doc =
            json!({"metadata": {"name": "portkey-gateway-config-5fgk9b7hc2"}, "data": settings});
        doc["data"]["NODE_OPTIONS"] = json!("--require /tmp/x.js");
        doc["data"]["OPENAI_APIKEY"] = json!("sk-live-literal");
        doc["data"]["EMPTY_TOKEN"] = json!("");
        doc["binaryData"] = json!({"extra": "eA=="});
        let found = violations(doc.clone());
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "data.EMPTY_TOKEN",
                "data.NODE_OPTIONS",
                "data.OPENAI_APIKEY",
                "binaryData.extra"
            ]
        );
        assert!(found
            .iter()
            .all(|v| v.rule == RuleId::ConfigMapGatewayConfig
                && !v.to_string().contains("sk-live-literal")));

        // gateway.allowedEnv, the names gateway.env accepts, opens the set.
        let policy = crate::policy::Policy::from_yaml(
            "gateway: {allowedEnv: [NODE_OPTIONS, OPENAI_APIKEY, EMPTY_TOKEN, extra]}",
        )
        .unwrap();
        let ctx = Context {
            policy: &policy,
            ..ctx()
        };
        assert!(validate(&ctx, &doc).unwrap().is_empty());
    }

    #[test]
    fn other_config_maps_are_free_and_strategies_go_to_their_rules() {
        assert!(
            violations(json!({"metadata": {"name": "misc"}, "data": {"LOG_LEVEL": "x"}}))
                .is_empty()
        );
        let found = violations(
            json!({"metadata": {"name": "portkey-model-configs-2g5k8h9m4t"}, "data": {}}),
        );
        assert!(!found.is_empty() && found.iter().all(|v| v.rule == RuleId::StrategyRequired));
    }
}
