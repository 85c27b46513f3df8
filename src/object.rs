//! Objects as they arrive in an AdmissionReview: the JSON as sent, and the
//! metadata read once. kube-core's `DynamicObject` does the same with
//! `#[serde(flatten)]`, which buffers the object twice and must be turned
//! back into JSON for patching; this keeps the parsed JSON itself.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::dynamic::ApiResource;
use kube_core::{DynamicResourceScope, Resource};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;

/// A Kubernetes object of any kind.
#[derive(Clone, Debug, PartialEq)]
pub struct RawObject {
    /// The object exactly as received.
    pub json: Value,
    /// Its `metadata`, read from `json`.
    pub metadata: ObjectMeta,
}

impl RawObject {
    pub fn from_json(json: Value) -> Result<Self, serde_json::Error> {
        let metadata = match json.get("metadata") {
            Some(meta) if !meta.is_null() => ObjectMeta::deserialize(meta)?,
            _ => ObjectMeta::default(),
        };
        if !json.is_object() {
            return Err(serde_json::Error::custom("an object must be a JSON object"));
        }
        Ok(RawObject { json, metadata })
    }

    pub fn api_version(&self) -> &str {
        self.json
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn kind(&self) -> &str {
        self.json
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawObject::from_json(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl Resource for RawObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// Changes here are not written back to `json`; decisions never change
    /// the object they read.
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Where and what kind of JSON error, without echoing any of the input
/// (which may hold a secret).
pub fn describe_json_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "unexpected end",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "wrong shape",
        serde_json::error::Category::Io => "read error",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_json_and_reads_the_metadata() {
        let json = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {"x": 1}});
        let object: RawObject = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(object.json, json);
        assert_eq!(object.metadata.name.as_deref(), Some("p"));
        assert_eq!((object.api_version(), object.kind()), ("v1", "Pod"));
        assert_eq!(serde_json::to_value(&object).unwrap(), json);
        assert!(serde_json::from_value::<RawObject>(json!([1])).is_err());
        assert!(serde_json::from_value::<RawObject>(json!({"metadata": {"name": 5}})).is_err());
    }

    #[test]
    fn json_errors_are_described_without_content() {
        let e = serde_json::from_str::<Value>("{\"api_key\": sk-secret}").unwrap_err();
        let described = describe_json_error(&e);
        assert_eq!(described, "syntax error at line 1 column 13");
        assert!(!described.contains("sk-secret"));
    }
}
