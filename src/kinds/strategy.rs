//! Portkey routing strategies, the `*.json` files of the strategies
//! ConfigMap (README: Rules, `strategy.*`): the config schema, literal
//! credentials, the routing policies the deployment requires, unknown keys.
//! One function per rule over the parsed files.

use super::rule::{looks_like_provider_key, Context, Rule};
use crate::name_pattern;
use crate::object::Doc;
use crate::policy::{RequiredStrategy, Strategies};
use crate::rules::RuleId;
use crate::violation::{FieldPath, Violation};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const RULES: &[Rule<StrategyFiles>] = &[
    Rule::new(RuleId::StrategySchema, schema),
    Rule::new(RuleId::StrategyCredentials, credentials),
    Rule::new(RuleId::StrategyRequired, required),
    Rule::new(RuleId::StrategyUnknownKey, unknown_key),
    Rule::new(RuleId::StrategyCustomHost, custom_host),
];

const MODES: &[&str] = &["single", "loadbalance", "fallback", "conditional"];
const CACHE_MODES: &[&str] = &["simple", "semantic"];
const OPERATORS: &[&str] = &[
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex", "$and", "$or",
];
const MAX_RETRY_ATTEMPTS: u64 = 5;

/// Keys a config (or target) may carry. Anything else is a warning.
const KNOWN_KEYS: &[&str] = &[
    "strategy",
    "targets",
    "cache",
    "retry",
    "name",
    "provider",
    "api_key",
    "virtual_key",
    "weight",
    "override_params",
    "custom_host",
    "forward_headers",
    "request_timeout",
    "resource_name",
    "deployment_id",
    "api_version",
    "azure_model_name",
    "azure_auth_mode",
    "azure_managed_client_id",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_region",
    "aws_session_token",
    "aws_role_arn",
    "vertex_project_id",
    "vertex_region",
    "vertex_service_account_json",
    "openai_organization",
    "openai_project",
    "metadata",
    "input_guardrails",
    "output_guardrails",
    "before_request_hooks",
    "after_request_hooks",
    "strict_open_ai_compliance",
    "on_status_codes",
    "default_input_guardrails",
    "default_output_guardrails",
];
const STRATEGY_KEYS: &[&str] = &["mode", "on_status_codes", "conditions", "default"];
const CACHE_KEYS: &[&str] = &["mode", "max_age"];
const RETRY_KEYS: &[&str] = &["attempts", "on_status_codes", "use_retry_after_headers"];

/// The strategy files of a ConfigMap: each `*.json` key, parsed.
pub struct StrategyFiles {
    /// Every key of the ConfigMap's `data` (for "present but unparsable").
    pub keys: Vec<String>,
    /// `*.json` keys: the parsed config, or the JSON error.
    pub files: BTreeMap<String, Result<Value, serde_json::Error>>,
    /// Keys of `binaryData`: files the gateway would read that no rule can.
    pub binary_keys: Vec<String>,
}

impl StrategyFiles {
    /// `read()`, once per ConfigMap as received: the webhook's rules and
    /// its relation step share the files the first of them parsed.
    pub fn read_shared<'a, E>(
        doc: impl Into<Doc<'a>>,
        read: impl FnOnce() -> Result<StrategyFiles, E>,
    ) -> Result<Arc<StrategyFiles>, E> {
        match doc.into() {
            Doc::Object(object) => object.shared_view(|_: &StrategyFiles| true, read),
            Doc::Tree(_) => read().map(Arc::new),
        }
    }

    pub fn parse(config_map: &ConfigMap) -> Self {
        let no_data = BTreeMap::new();
        StrategyFiles::from_data(
            config_map.data.as_ref().unwrap_or(&no_data),
            config_map
                .binary_data
                .iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect(),
        )
    }

    fn from_data(data: &BTreeMap<String, String>, binary_keys: Vec<String>) -> Self {
        StrategyFiles {
            keys: data.keys().cloned().collect(),
            files: data
                .iter()
                .filter(|(k, _)| k.ends_with(".json"))
                .map(|(k, text)| (k.clone(), serde_json::from_str(text)))
                .collect(),
            binary_keys,
        }
    }

    /// The files that parsed, with their paths (`data["all-models.json"]`).
    fn configs(&self) -> impl Iterator<Item = (FieldPath, &str, &Value)> {
        self.files.iter().filter_map(|(key, parsed)| {
            let config = parsed.as_ref().ok()?;
            Some((FieldPath::root("data").key(key), key.as_str(), config))
        })
    }
}

// === impl strategy.schema ===

/// `strategy.schema`: every file is a valid Portkey config, and there are
/// no binary files (the gateway reads them from the mount as well, and no
/// rule could).
pub fn schema(files: &StrategyFiles, _: &Context) -> Vec<Violation> {
    let mut out: Vec<Violation> = files
        .binary_keys
        .iter()
        .map(|key| {
            schema_violation(
                &FieldPath::root("binaryData").key(key),
                "strategies are text (data), where they are validated",
                "no binaryData",
                "a binary file",
            )
        })
        .collect();
    // The gateway reads every file of the mount; a `.js` next to the
    // strategies is code no rule reads (NODE_OPTIONS=--require it).
    for key in files.keys.iter().filter(|k| !k.ends_with(".json")) {
        out.push(schema_violation(
            &FieldPath::root("data").key(key),
            "only strategy files (*.json) live in the strategies ConfigMap",
            "a *.json key",
            key.as_str(),
        ));
    }
    for (key, parsed) in &files.files {
        let path = FieldPath::root("data").key(key);
        match parsed {
            Ok(config) => config_schema(config, &path, &mut out),
            Err(e) => out.push(schema_violation(
                &path,
                "the strategy file is not valid JSON",
                "a JSON object",
                crate::object::describe_json_error(e),
            )),
        }
    }
    out
}

fn schema_violation(
    path: &FieldPath,
    message: &str,
    expected: &str,
    actual: impl Into<String>,
) -> Violation {
    Violation::new(RuleId::StrategySchema, path, message, expected, actual)
}

/// A short description of a JSON value's type, for messages (never the value).
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A number as written, anything else by its type.
fn number_shown(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => kind_of(other).to_owned(),
    }
}

/// A config or a target (which may nest its own strategy/targets).
fn config_schema(config: &Value, path: &FieldPath, out: &mut Vec<Violation>) {
    let Value::Object(map) = config else {
        out.push(schema_violation(
            path,
            "a Portkey config is an object",
            "an object",
            kind_of(config),
        ));
        return;
    };
    let targets = map.get("targets");
    if let Some(strategy) = map.get("strategy") {
        strategy_schema(strategy, targets, &path.field("strategy"), out);
        if targets.is_none() {
            out.push(schema_violation(
                &path.field("targets"),
                "a strategy needs targets",
                "a non-empty list",
                "unset",
            ));
        }
    }
    if let Some(targets) = targets {
        let tpath = path.field("targets");
        match targets.as_array() {
            Some(list) if !list.is_empty() => {
                for (i, target) in list.iter().enumerate() {
                    config_schema(target, &tpath.index(i), out);
                }
            }
            Some(_) => out.push(schema_violation(
                &tpath,
                "targets may not be empty",
                "a non-empty list",
                "an empty list",
            )),
            None => out.push(schema_violation(
                &tpath,
                "targets is a list",
                "a non-empty list",
                kind_of(targets),
            )),
        }
    }
    if let Some(weight) = map.get("weight") {
        if !weight.as_f64().is_some_and(|w| w >= 0.0) {
            out.push(schema_violation(
                &path.field("weight"),
                "weight is a non-negative number",
                "a number >= 0",
                number_shown(weight),
            ));
        }
    }
    if let Some(cache) = map.get("cache") {
        cache_schema(cache, &path.field("cache"), out);
    }
    if let Some(retry) = map.get("retry") {
        retry_schema(retry, &path.field("retry"), out);
    }
}

fn strategy_schema(
    strategy: &Value,
    targets: Option<&Value>,
    path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    let Value::Object(s) = strategy else {
        out.push(schema_violation(
            path,
            "strategy is an object",
            "an object",
            kind_of(strategy),
        ));
        return;
    };
    let mode = s.get("mode").and_then(Value::as_str);
    if !mode.is_some_and(|m| MODES.contains(&m)) {
        out.push(schema_violation(
            &path.field("mode"),
            "unknown routing mode",
            &MODES.join(" | "),
            match s.get("mode") {
                Some(Value::String(m)) => m.clone(),
                Some(other) => kind_of(other).to_owned(),
                None => "unset".to_owned(),
            },
        ));
    }
    if let Some(codes) = s.get("on_status_codes") {
        status_codes(codes, &path.field("on_status_codes"), out);
    }
    let target_list = targets
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match mode {
        Some("loadbalance") => {
            let positive = target_list.iter().any(|t| {
                // Portkey weighs a target without `weight` as 1.
                t.get("weight")
                    .is_none_or(|w| w.as_f64().is_some_and(|w| w > 0.0))
            });
            if !target_list.is_empty() && !positive {
                out.push(schema_violation(
                    &path.field("mode"),
                    "a loadbalance needs at least one target with a positive weight",
                    "some weight > 0",
                    "all weights 0",
                ));
            }
        }
        Some("conditional") => conditional(s, target_list, path, out),
        _ => {}
    }
}

fn conditional(
    s: &Map<String, Value>,
    targets: &[Value],
    path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    let names: Vec<&str> = targets
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .collect();
    let cpath = path.field("conditions");
    match s.get("conditions").and_then(Value::as_array) {
        Some(conditions) if !conditions.is_empty() => {
            for (i, condition) in conditions.iter().enumerate() {
                let cpath = cpath.index(i);
                match condition.get("query") {
                    Some(query @ Value::Object(_)) => {
                        query_operators(query, &cpath.field("query"), out)
                    }
                    Some(other) => out.push(schema_violation(
                        &cpath.field("query"),
                        "a condition's query is an object",
                        "an object",
                        kind_of(other),
                    )),
                    None => out.push(schema_violation(
                        &cpath.field("query"),
                        "a condition needs a query",
                        "an object",
                        "unset",
                    )),
                }
                target_reference(condition.get("then"), &cpath.field("then"), &names, out);
            }
        }
        _ => out.push(schema_violation(
            &cpath,
            "a conditional strategy needs conditions",
            "a non-empty list",
            "none",
        )),
    }
    if s.contains_key("default") {
        target_reference(s.get("default"), &path.field("default"), &names, out);
    }
}

fn target_reference(
    value: Option<&Value>,
    path: &FieldPath,
    names: &[&str],
    out: &mut Vec<Violation>,
) {
    match value {
        Some(Value::String(name)) if names.contains(&name.as_str()) => {}
        Some(Value::String(name)) => out.push(schema_violation(
            path,
            "names no target",
            &format!("one of the target names [{}]", names.join(", ")),
            name.as_str(),
        )),
        Some(other) => out.push(schema_violation(
            path,
            "a target name is a string",
            "a target name",
            kind_of(other),
        )),
        None => out.push(schema_violation(
            path,
            "a condition routes to a target",
            "a target name",
            "unset",
        )),
    }
}

/// Every `$`-key of a query is a supported operator; `$and`/`$or` hold
/// lists of queries.
fn query_operators(query: &Value, path: &FieldPath, out: &mut Vec<Violation>) {
    let Value::Object(map) = query else {
        return;
    };
    for (key, value) in map {
        let kpath = path.key(key);
        if key.starts_with('$') && !OPERATORS.contains(&key.as_str()) {
            out.push(schema_violation(
                &kpath,
                "unsupported query operator",
                &OPERATORS.join(" "),
                key.as_str(),
            ));
            continue;
        }
        match (key.as_str(), value) {
            ("$and" | "$or", Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    query_operators(item, &kpath.index(i), out);
                }
            }
            ("$and" | "$or", other) => out.push(schema_violation(
                &kpath,
                "$and/$or take a list of queries",
                "a list",
                kind_of(other),
            )),
            (_, Value::Object(_)) => query_operators(value, &kpath, out),
            _ => {}
        }
    }
}

fn status_codes(codes: &Value, path: &FieldPath, out: &mut Vec<Violation>) {
    let Some(list) = codes.as_array() else {
        out.push(schema_violation(
            path,
            "status codes are a list",
            "a list of integers 100-599",
            kind_of(codes),
        ));
        return;
    };
    for (i, code) in list.iter().enumerate() {
        if !code.as_u64().is_some_and(|c| (100..=599).contains(&c)) {
            out.push(schema_violation(
                &path.index(i),
                "not an HTTP status code",
                "an integer 100-599",
                number_shown(code),
            ));
        }
    }
}

fn cache_schema(cache: &Value, path: &FieldPath, out: &mut Vec<Violation>) {
    let Value::Object(c) = cache else {
        out.push(schema_violation(
            path,
            "cache is an object",
            "an object",
            kind_of(cache),
        ));
        return;
    };
    match c.get("mode") {
        Some(Value::String(m)) if CACHE_MODES.contains(&m.as_str()) => {}
        other => out.push(schema_violation(
            &path.field("mode"),
            "unknown cache mode",
            &CACHE_MODES.join(" | "),
            match other {
                Some(Value::String(m)) => m.clone(),
                Some(v) => kind_of(v).to_owned(),
                None => "unset".to_owned(),
            },
        )),
    }
    if let Some(age) = c.get("max_age") {
        if age.as_u64().is_none_or(|a| a == 0) {
            out.push(schema_violation(
                &path.field("max_age"),
                "max_age is a positive integer (seconds)",
                "an integer > 0",
                number_shown(age),
            ));
        }
    }
}

fn retry_schema(retry: &Value, path: &FieldPath, out: &mut Vec<Violation>) {
    let Value::Object(r) = retry else {
        out.push(schema_violation(
            path,
            "retry is an object",
            "an object",
            kind_of(retry),
        ));
        return;
    };
    if let Some(attempts) = r.get("attempts") {
        if attempts.as_u64().is_none_or(|a| a > MAX_RETRY_ATTEMPTS) {
            out.push(schema_violation(
                &path.field("attempts"),
                "retry attempts are bounded",
                &format!("an integer 0-{MAX_RETRY_ATTEMPTS}"),
                number_shown(attempts),
            ));
        }
    }
    if let Some(codes) = r.get("on_status_codes") {
        status_codes(codes, &path.field("on_status_codes"), out);
    }
}

/// Each config object of a file, nested targets included, with its path.
fn config_objects<'a>(
    config: &'a Value,
    path: FieldPath,
    out: &mut Vec<(FieldPath, &'a Map<String, Value>)>,
) {
    let Value::Object(map) = config else {
        return;
    };
    out.push((path.clone(), map));
    if let Some(Value::Array(targets)) = map.get("targets") {
        for (i, target) in targets.iter().enumerate() {
            config_objects(target, path.field("targets").index(i), out);
        }
    }
}

fn all_config_objects(files: &StrategyFiles) -> Vec<(FieldPath, &Map<String, Value>)> {
    let mut objects = Vec::new();
    for (path, _, config) in files.configs() {
        config_objects(config, path, &mut objects);
    }
    objects
}

// === impl strategy.unknown-key ===

/// `strategy.unknown-key`: only known Portkey config keys (a typo is a
/// warning).
pub fn unknown_key(files: &StrategyFiles, _: &Context) -> Vec<Violation> {
    let mut out = Vec::new();
    for (path, map) in all_config_objects(files) {
        unknown_keys(map, KNOWN_KEYS, &path, &mut out);
        for (field, known) in [
            ("strategy", STRATEGY_KEYS),
            ("cache", CACHE_KEYS),
            ("retry", RETRY_KEYS),
        ] {
            if let Some(Value::Object(inner)) = map.get(field) {
                unknown_keys(inner, known, &path.field(field), &mut out);
            }
        }
    }
    out
}

fn unknown_keys(
    map: &Map<String, Value>,
    known: &[&str],
    path: &FieldPath,
    out: &mut Vec<Violation>,
) {
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        out.push(Violation::new(
            RuleId::StrategyUnknownKey,
            path.key(key),
            "not a known Portkey config key (a typo?)",
            "a known key",
            key.as_str(),
        ));
    }
}

// === impl strategy.custom-host ===

/// `strategy.custom-host`: a `custom_host` sends the target's provider key
/// to that host, so it is an `https` URL of a host the policy names
/// (`strategies.providerHosts`, or a name below one).
pub fn custom_host(files: &StrategyFiles, ctx: &Context) -> Vec<Violation> {
    let hosts = &ctx.policy.strategies.provider_hosts;
    let expected = || {
        let names: Vec<&str> = hosts.values().map(String::as_str).collect();
        format!("https://<{}>/...", names.join(" | "))
    };
    let mut out = Vec::new();
    for (path, map) in all_config_objects(files) {
        let Some(url) = map.get("custom_host") else {
            continue;
        };
        let allowed = url
            .as_str()
            .and_then(https_host)
            .is_some_and(|host| hosts.values().any(|h| names_host(h, &host)));
        if !allowed {
            out.push(Violation::new(
                RuleId::StrategyCustomHost,
                path.key("custom_host"),
                "a custom host receives the provider key: only the policy's provider hosts",
                expected(),
                // The URL may carry a credential (strategy.credentials).
                url.as_str()
                    .filter(|u| !has_userinfo(u))
                    .unwrap_or("another value"),
            ));
        }
    }
    out
}

/// The host of an `https://` URL, lower case and without a trailing dot.
fn https_host(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    if !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.0,
        None => host_port.split(':').next()?,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// `host` is `name` or a name below it (`api.cerebras.ai` under
/// `cerebras.ai`).
fn names_host(name: &str, host: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    host == name
        || host
            .strip_suffix(name.as_str())
            .is_some_and(|below| below.ends_with('.'))
}

// === impl strategy.credentials ===

/// `strategy.credentials`: secret-bearing fields hold only environment
/// references (`$OPENAI_API_KEY`); messages name the field, never the value.
pub fn credentials(files: &StrategyFiles, ctx: &Context) -> Vec<Violation> {
    let policy = &ctx.policy.strategies;
    let mut out = Vec::new();
    for (path, map) in all_config_objects(files) {
        for (key, value) in map {
            // Nested targets are config objects of their own.
            if !matches!(key.as_str(), "targets" | "strategy") {
                credential_value(key, value, &path.key(key), policy, &mut out);
            }
        }
    }
    out
}

/// `scheme://user[:password]@host...`
fn has_userinfo(value: &str) -> bool {
    value.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && rest
                .split(['/', '?', '#'])
                .next()
                .is_some_and(|authority| authority.contains('@'))
    })
}

/// `$OPENAI_API_KEY` or `${OPENAI_API_KEY}`.
fn is_env_reference(value: &str) -> bool {
    env_reference(value).is_some()
}

/// The variable an environment reference names: `OPENAI_API_KEY` for
/// `$OPENAI_API_KEY` or `${OPENAI_API_KEY}`; `None` for anything else.
pub fn env_reference(value: &str) -> Option<&str> {
    let name = value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .or_else(|| value.strip_prefix('$'))?;
    (!name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some(name)
}

fn credential_value(
    key: &str,
    value: &Value,
    path: &FieldPath,
    policy: &Strategies,
    out: &mut Vec<Violation>,
) {
    // A credential in a URL's userinfo (`https://user:sk-...@host`).
    if let Value::String(s) = value {
        if has_userinfo(s) {
            out.push(
                Violation::new(
                    RuleId::StrategyCredentials,
                    path,
                    format!("{key} carries credentials in its URL"),
                    "a URL without user:password@",
                    "a URL with credentials",
                )
                .with_witness(s),
            );
            return;
        }
    }
    match value {
        Value::String(s) if looks_like_provider_key(s) => {
            out.push(
                Violation::new(
                    RuleId::StrategyCredentials,
                    path,
                    format!("{key} holds what looks like a provider key; reference an environment variable"),
                    "no provider key, under any field",
                    "a provider key",
                )
                .with_witness(s),
            );
        }
        Value::String(s)
            if name_pattern::matches_any(&policy.credential_fields, key)
                && !s.is_empty()
                && !is_env_reference(s) =>
        {
            out.push(
                Violation::new(
                    RuleId::StrategyCredentials,
                    path,
                    format!("{key} holds a literal credential; reference an environment variable"),
                    "an environment reference such as \"$OPENAI_API_KEY\"",
                    "a literal value",
                )
                .with_witness(s),
            );
        }
        Value::Object(map) => {
            for (k, v) in map {
                credential_value(k, v, &path.key(k), policy, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                credential_value(key, v, &path.index(i), policy, out);
            }
        }
        _ => {}
    }
}

// === impl strategy.required ===

/// `strategy.required`: the routing policies the deployment needs, each
/// with its mode, targets and providers.
pub fn required(files: &StrategyFiles, ctx: &Context) -> Vec<Violation> {
    let policy = &ctx.policy.strategies;
    let mut out = Vec::new();
    for required in &policy.required {
        let path = FieldPath::root("data").key(&required.key);
        match files.files.get(&required.key) {
            Some(Ok(config)) => required_shape(config, required, &path, policy, &mut out),
            // Reported by strategy.schema.
            Some(Err(_)) => {}
            None if files.keys.contains(&required.key) => {}
            None => out.push(Violation::new(
                RuleId::StrategyRequired,
                path,
                "a required routing policy is missing",
                format!(
                    "{} with {} targets",
                    required.mode,
                    required.providers.join("/")
                ),
                "no such key",
            )),
        }
    }
    out
}

/// The provider a target counts as: its `provider`, unless its custom host
/// is (below) a host of the policy's `providerHosts`.
fn effective_provider<'a>(target: &'a Value, policy: &'a Strategies) -> Option<&'a str> {
    let host = target
        .get("custom_host")
        .and_then(Value::as_str)
        .and_then(https_host);
    let by_host = host.and_then(|host| {
        policy
            .provider_hosts
            .iter()
            .find(|(_, name)| names_host(name, &host))
            .map(|(provider, _)| provider.as_str())
    });
    by_host.or_else(|| target.get("provider").and_then(Value::as_str))
}

/// Leaf targets (the ones that call a provider) with their paths, nested
/// ones included.
fn leaf_targets<'a>(config: &'a Value, path: &FieldPath, out: &mut Vec<(FieldPath, &'a Value)>) {
    let targets = config.get("targets").and_then(Value::as_array);
    for (i, target) in targets.into_iter().flatten().enumerate() {
        let tpath = path.field("targets").index(i);
        if target.get("targets").is_some() {
            leaf_targets(target, &tpath, out);
        } else {
            out.push((tpath, target));
        }
    }
}

fn required_shape(
    config: &Value,
    required: &RequiredStrategy,
    path: &FieldPath,
    policy: &Strategies,
    out: &mut Vec<Violation>,
) {
    let violation = |field: FieldPath, message: &str, expected: String, actual: String| {
        Violation::new(RuleId::StrategyRequired, field, message, expected, actual)
    };
    let mode = config.pointer("/strategy/mode").and_then(Value::as_str);
    if mode != Some(required.mode.as_str()) {
        out.push(violation(
            path.field("strategy").field("mode"),
            "the routing policy uses its required mode",
            required.mode.clone(),
            mode.unwrap_or("unset").to_owned(),
        ));
    }
    let count = config
        .get("targets")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if let Some(wanted) = required.targets.filter(|w| *w != count) {
        out.push(violation(
            path.field("targets"),
            "the routing policy has its required number of targets",
            wanted.to_string(),
            count.to_string(),
        ));
    }
    if let Some(min) = required.min_targets.filter(|m| count < *m) {
        out.push(violation(
            path.field("targets"),
            "the routing policy needs more targets",
            format!("at least {min}"),
            count.to_string(),
        ));
    }
    let mut leaves = Vec::new();
    leaf_targets(config, path, &mut leaves);
    let mut seen: Vec<&str> = Vec::new();
    for (target_path, target) in &leaves {
        let provider = effective_provider(target, policy);
        match provider {
            Some(p) if required.providers.iter().any(|r| r == p) => seen.push(p),
            _ => out.push(violation(
                target_path.field("provider"),
                "a target of this routing policy uses another provider",
                required.providers.join(" | "),
                provider.unwrap_or("unset").to_owned(),
            )),
        }
    }
    if required.includes_every_provider {
        let missing: Vec<&str> = required
            .providers
            .iter()
            .map(String::as_str)
            .filter(|p| !seen.contains(p))
            .collect();
        if !missing.is_empty() {
            out.push(violation(
                path.field("targets"),
                "the routing policy mixes all of its providers",
                required.providers.join(", "),
                format!("missing {}", missing.join(", ")),
            ));
        }
    }
    if let Some(cache_mode) = &required.cache_mode {
        let actual = config.pointer("/cache/mode").and_then(Value::as_str);
        if actual != Some(cache_mode.as_str()) {
            out.push(violation(
                path.field("cache").field("mode"),
                "the routing policy caches responses",
                cache_mode.clone(),
                actual.unwrap_or("unset").to_owned(),
            ));
        }
    }
    if let Some(fragment) = &required.condition_field_contains {
        let conditions = config
            .pointer("/strategy/conditions")
            .and_then(Value::as_array);
        let tested = conditions
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("query"))
            .any(|q| query_mentions(q, fragment));
        if !tested {
            out.push(violation(
                path.field("strategy").field("conditions"),
                "the routing policy routes on the required field",
                format!("a condition on a field containing {fragment:?}"),
                "none".to_owned(),
            ));
        }
    }
}

fn query_mentions(query: &Value, fragment: &str) -> bool {
    match query {
        Value::Object(map) => map.iter().any(|(k, v)| {
            (!k.starts_with('$') && k.contains(fragment)) || query_mentions(v, fragment)
        }),
        Value::Array(items) => items.iter().any(|v| query_mentions(v, fragment)),
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kinds::rule::tests::ctx;
    use crate::object::RawObject;
    use serde_json::json;

    #[test]
    fn strategy_files_of_an_object_as_received_are_parsed_once() {
        let text = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"},
            "data": {"a.json": "{\"retry\": {\"attempts\": 3}}", "notes": "x"}})
        .to_string();
        let object: RawObject = serde_json::from_str(&text).unwrap();
        let parse = || {
            let config_map: ConfigMap = serde_json::from_str(&text).unwrap();
            Ok::<_, ()>(StrategyFiles::parse(&config_map))
        };
        let first = StrategyFiles::read_shared(Doc::Object(&object), parse).unwrap();
        assert_eq!(first.keys, ["a.json", "notes"]);
        assert_eq!(
            first.files["a.json"].as_ref().unwrap()["retry"]["attempts"],
            3
        );
        let again = StrategyFiles::read_shared(Doc::Object(&object), || -> Result<_, ()> {
            panic!("parsed twice")
        })
        .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
    }

    /// deploy/portkey's five strategy files.
    pub(crate) fn shipped() -> BTreeMap<String, String> {
        [
            (
                "azure-models.json",
                include_str!("../../deploy/portkey/strategies/azure-models.json"),
            ),
            (
                "claude-models.json",
                include_str!("../../deploy/portkey/strategies/claude-models.json"),
            ),
            (
                "openai-models.json",
                include_str!("../../deploy/portkey/strategies/openai-models.json"),
            ),
            (
                "all-models.json",
                include_str!("../../deploy/portkey/strategies/all-models.json"),
            ),
            (
                "cost-optimized.json",
                include_str!("../../deploy/portkey/strategies/cost-optimized.json"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn with(key: &str, config: Value) -> StrategyFiles {
        let mut files = shipped();
        files.insert(key.to_owned(), config.to_string());
        StrategyFiles::from_data(&files, Vec::new())
    }

    fn paths(
        check: fn(&StrategyFiles, &Context) -> Vec<Violation>,
        files: &StrategyFiles,
    ) -> Vec<String> {
        check(files, &ctx()).into_iter().map(|v| v.path).collect()
    }

    #[test]
    fn the_shipped_files_break_nothing() {
        let files = StrategyFiles::from_data(&shipped(), Vec::new());
        for rule in RULES {
            assert!(paths(rule.check, &files).is_empty(), "{}", rule.id);
        }
    }

    #[test]
    fn schema_of_modes_targets_weights_cache_retry_and_conditions() {
        let config = json!({
            "strategy": {"mode": "roundrobin", "on_status_codes": [429, 700]},
            "targets": [{"provider": "openai", "weight": -1, "retry": {"attempts": 9}}],
            "cache": {"mode": "semantic", "max_age": 0}});
        assert_eq!(
            paths(schema, &with("extra.json", config)),
            [
                r#"data["extra.json"].strategy.mode"#,
                r#"data["extra.json"].strategy.on_status_codes[1]"#,
                r#"data["extra.json"].targets[0].weight"#,
                r#"data["extra.json"].targets[0].retry.attempts"#,
                r#"data["extra.json"].cache.max_age"#,
            ]
        );
        let conditional = json!({"strategy": {"mode": "conditional", "conditions": [
                {"query": {"metadata.tier": {"$like": "x"}}, "then": "missing"}], "default": "a"},
            "targets": [{"name": "a", "provider": "openai"}]});
        assert_eq!(
            paths(schema, &with("extra.json", conditional)),
            [
                r#"data["extra.json"].strategy.conditions[0].query["metadata.tier"]["$like"]"#,
                r#"data["extra.json"].strategy.conditions[0].then"#,
            ]
        );
        let broken = {
            let mut files = shipped();
            files.insert("extra.json".to_owned(), "{\"api_key\": sk-live".to_owned());
            StrategyFiles::from_data(&files, Vec::new())
        };
        let found = schema(&broken, &ctx());
        assert_eq!(found.len(), 1);
        assert!(!found[0].to_string().contains("sk-live"), "{}", found[0]);
    }

    #[test]
    fn binary_files_are_refused() {
        let files = StrategyFiles::from_data(&shipped(), vec!["azure-models.json".to_owned()]);
        assert_eq!(
            paths(schema, &files),
            [r#"binaryData["azure-models.json"]"#]
        );
    }

    #[test]
    fn credentials_are_environment_references() {
        let config = json!({"strategy": {"mode": "single"}, "targets": [
            {"provider": "openai", "api_key": "$OPENAI_API_KEY"},
            {"provider": "azure-openai", "api_key": "${AZURE_KEY}", "override_params": {"client_secret": "s3cr3t"}},
            {"provider": "anthropic", "api_key": "sk-ant-literal"}]});
        let found = credentials(&with("extra.json", config), &ctx());
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                r#"data["extra.json"].targets[1].override_params.client_secret"#,
                r#"data["extra.json"].targets[2].api_key"#,
            ]
        );
        assert!(found
            .iter()
            .all(|v| !v.to_string().contains("sk-ant-literal")));
    }

    #[test]
    fn required_policies_with_mode_targets_and_providers() {
        let mut files = shipped();
        files.remove("claude-models.json");
        assert_eq!(
            paths(required, &StrategyFiles::from_data(&files, Vec::new())),
            [r#"data["claude-models.json"]"#]
        );
        let openai = json!({"strategy": {"mode": "fallback"}, "targets": [
            {"provider": "openai"}, {"provider": "openai"}, {"provider": "anthropic"}]});
        assert_eq!(
            paths(required, &with("openai-models.json", openai)),
            [
                r#"data["openai-models.json"].strategy.mode"#,
                r#"data["openai-models.json"].targets[2].provider"#,
            ]
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let config = json!({"strategy": {"mode": "single", "retries": 1}, "targets": [{"provider": "openai", "modle": "x"}]});
        assert_eq!(
            paths(unknown_key, &with("extra.json", config)),
            [
                r#"data["extra.json"].strategy.retries"#,
                r#"data["extra.json"].targets[0].modle"#,
            ]
        );
    }

    #[test]
    fn provider_keys_under_any_field_name() {
        let config = json!({"strategy": {"mode": "single"}, "targets": [{"provider": "openai",
            "api_key": "$OPENAI_API_KEY", "note": "sk-proj-Abc123LiteralKeyValue0000",
            "override_params": {"user": "AIzaSyA-0123456789abcdefghij"}}]});
        assert_eq!(
            paths(credentials, &with("extra.json", config)),
            [
                r#"data["extra.json"].targets[0].note"#,
                r#"data["extra.json"].targets[0].override_params.user"#,
            ]
        );
        // Words and model names that merely start alike are not keys.
        for value in [
            "sk-short",
            "gpt-4o-mini",
            "skipping the cache",
            "hf_model name with spaces",
        ] {
            assert!(!looks_like_provider_key(value), "{value}");
        }
        assert!(looks_like_provider_key("sk-ant-api03-AbCdEf0123456789"));
    }

    #[test]
    fn custom_host_only_to_the_policys_provider_hosts() {
        let target = |host: &str| {
            json!({"strategy": {"mode": "single"}, "targets": [
                {"provider": "openai-compatible", "api_key": "$CEREBRAS_API_KEY", "custom_host": host}]})
        };
        for allowed in [
            "https://api.cerebras.ai/v1",
            "HTTPS://API.Cerebras.AI./v1",
            "https://cerebras.ai:443",
        ] {
            assert!(
                paths(custom_host, &with("extra.json", target(allowed))).is_empty(),
                "{allowed}"
            );
        }
        for refused in [
            "https://cerebras.attacker.example/v1",
            "https://api.cerebras.ai.attacker.example/v1",
            "https://evilcerebras.ai/v1",
            "http://api.cerebras.ai/v1",
            "https://attacker.example@api.cerebras.ai.evil/v1",
            "api.cerebras.ai",
        ] {
            assert_eq!(
                paths(custom_host, &with("extra.json", target(refused))),
                [r#"data["extra.json"].targets[0].custom_host"#],
                "{refused}"
            );
        }
        // Not a string at all, and at the top level of a config.
        assert_eq!(
            paths(
                custom_host,
                &with(
                    "extra.json",
                    json!({"provider": "openai", "custom_host": 7})
                )
            ),
            [r#"data["extra.json"].custom_host"#]
        );
        // A look-alike does not count as the provider either.
        let lookalike =
            json!({"provider": "openai", "custom_host": "https://cerebras.attacker.example"});
        assert_eq!(
            effective_provider(&lookalike, &ctx().policy.strategies),
            Some("openai")
        );
    }
}
