//! The gateway's ConfigMaps (README: Rules, `configmap.*` and
//! `strategy.*`): its settings, and its routing strategies under their
//! plain or kustomize-hashed name.

use super::rule::{check_all, read_at, Context, MalformedObject, Rule};
use super::strategy::{self, StrategyFiles};
use crate::name_pattern;
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;

pub const RULES: &[Rule<ConfigMap>] = &[Rule::new(RuleId::ConfigMapGatewayConfig, gateway_config)];

pub fn validate(ctx: &Context, doc: &Value) -> Result<Vec<Violation>, MalformedObject> {
    let config_map: ConfigMap = read_at(doc, &[], "ConfigMap")?;
    let name = config_map.metadata.name.as_deref().unwrap_or_default();
    // Any suffix is judged, kustomize's hash included: no name is a way
    // around the strategy rules.
    if name_pattern::is_variant_of(&ctx.policy.strategies.config_map, name) {
        let files = StrategyFiles::parse(&config_map.data.unwrap_or_default());
        return Ok(check_all(strategy::RULES, &files, ctx));
    }
    Ok(check_all(RULES, &config_map, ctx))
}

/// `configmap.gateway-config`: the gateway's production settings.
pub fn gateway_config(config_map: &ConfigMap, ctx: &Context) -> Vec<Violation> {
    let policy = &ctx.policy.gateway_config;
    if config_map.metadata.name.as_deref() != Some(policy.name.as_str()) {
        return Vec::new();
    }
    let data = config_map.data.as_ref();
    policy
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
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::rule::tests::ctx;
    use serde_json::json;

    fn violations(doc: Value) -> Vec<Violation> {
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
