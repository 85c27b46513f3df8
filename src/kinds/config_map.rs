//! §3.4 — the gateway's ConfigMaps: its settings and its routing strategies.

use super::{read_at, strategy, Context, MalformedObject};
use crate::rules::RuleId;
use crate::violation::{shown, FieldPath, Violation};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;

pub fn validate(ctx: &Context, doc: &Value) -> Result<Vec<Violation>, MalformedObject> {
    let config_map: ConfigMap = read_at(doc, &[], "ConfigMap")?;
    let name = config_map.metadata.name.as_deref().unwrap_or_default();
    let data = config_map.data.unwrap_or_default();
    let policy = ctx.policy;
    if name == policy.gateway_config.name {
        return Ok(gateway_settings(&data, policy));
    }
    // kustomize's hash-suffixed names included, and any other suffix: no
    // name is a way around the strategy rules.
    if crate::name_pattern::is_variant_of(&policy.strategies.config_map, name) {
        return Ok(strategy::validate_files(&data, &policy.strategies));
    }
    Ok(Vec::new())
}

fn gateway_settings(
    data: &std::collections::BTreeMap<String, String>,
    policy: &crate::policy::Policy,
) -> Vec<Violation> {
    policy
        .gateway_config
        .values
        .iter()
        .filter_map(|(key, allowed)| {
            let actual = data.get(key);
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
