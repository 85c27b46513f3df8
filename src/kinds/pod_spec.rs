//! The parts of a pod spec that the rules read, as small types of their
//! own. k8s-openapi's `PodSpec` reads every field of the schema into
//! structs sized for all of them (a `Volume` is 3,280 bytes, a `Container`
//! 2,336), and reading one moves those structs through every layer of the
//! parse: a third of the time of a pod spec read went to copying them.
//! These types keep the field names, and k8s-openapi's types for the
//! smaller parts they hold, so a rule reads them as it would read
//! k8s-openapi's.
//!
//! - A field no rule reads is skipped, not type-checked: the API server
//!   checks the schema, and nothing decides on it here.
//! - As in k8s-openapi, a field given as `null` is as if absent, and so are
//!   the schema's required fields (a container's `name`, a pod's
//!   `containers`).
//! - A field that a rule reads, given twice, makes the object malformed
//!   (k8s-openapi kept the last): the API server never sends one, and the
//!   rules must not judge a value it may not keep. A volume's members are
//!   the exception: as before, the last counts, and `sources` lists each
//!   occurrence.

use k8s_openapi::api::core::v1::{
    ConfigMapKeySelector, ConfigMapVolumeSource, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, HTTPGetAction, HostAlias, Lifecycle, PodDNSConfig, PodOS, PodSecurityContext,
    ProjectedVolumeSource, ResourceRequirements, SecretKeySelector, SecurityContext,
    TCPSocketAction, VolumeDevice, VolumeMount,
};
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::fmt;

/// A pod spec: what the rules read of it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    pub automount_service_account_token: Option<bool>,
    #[serde(deserialize_with = "containers")]
    pub containers: Vec<Container>,
    pub dns_config: Option<PodDNSConfig>,
    pub dns_policy: Option<String>,
    #[serde(deserialize_with = "list_from_one")]
    pub ephemeral_containers: Option<Vec<Container>>,
    pub host_aliases: Option<Vec<HostAlias>>,
    #[serde(rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    pub host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,
    pub host_users: Option<bool>,
    #[serde(deserialize_with = "list_from_one")]
    pub init_containers: Option<Vec<Container>>,
    pub os: Option<PodOS>,
    pub security_context: Option<Box<PodSecurityContext>>,
    pub service_account_name: Option<String>,
    pub volumes: Option<Vec<Volume>>,
}

/// A container of any of the three lists (an ephemeral container has the
/// same fields for what the rules read).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Container {
    pub args: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub env: Option<Vec<EnvVar>>,
    pub env_from: Option<Vec<EnvFromSource>>,
    pub image: Option<String>,
    pub lifecycle: Option<Box<Lifecycle>>,
    pub liveness_probe: Option<Box<Probe>>,
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    pub ports: Option<Vec<ContainerPort>>,
    pub readiness_probe: Option<Box<Probe>>,
    pub resources: Option<ResourceRequirements>,
    pub restart_policy: Option<String>,
    pub security_context: Option<Box<SecurityContext>>,
    pub startup_probe: Option<Box<Probe>>,
    pub volume_devices: Option<Vec<VolumeDevice>>,
    pub volume_mounts: Option<Vec<VolumeMount>>,
    pub working_dir: Option<String>,
}

/// A probe: its timing and the two handlers that name a host.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Probe {
    pub failure_threshold: Option<i32>,
    pub http_get: Option<HTTPGetAction>,
    pub initial_delay_seconds: Option<i32>,
    pub period_seconds: Option<i32>,
    pub tcp_socket: Option<TCPSocketAction>,
}

/// An environment variable.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvVar {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    pub value: Option<String>,
    pub value_from: Option<EnvVarSource>,
}

/// Where a variable's value comes from: the two sources the rules follow
/// (any other, such as `fieldRef`, still makes `valueFrom` set).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvVarSource {
    pub config_map_key_ref: Option<ConfigMapKeySelector>,
    pub secret_key_ref: Option<SecretKeySelector>,
}

/// A volume: its name, the sources the rules read, and the names of
/// all its members besides `name` as written (`emptyDir`, `hostPath`, ...),
/// so that no source type is ever missed.
#[derive(Clone, Debug, Default)]
pub struct Volume {
    pub name: String,
    /// Whether `emptyDir` is set (not null).
    pub empty_dir: bool,
    pub config_map: Option<ConfigMapVolumeSource>,
    pub projected: Option<ProjectedVolumeSource>,
    /// Held inline (a volume has one source), the schema's names without
    /// a copy.
    pub sources: smallvec::SmallVec<[Cow<'static, str>; 1]>,
}

/// The members a volume may have besides `name`: the schema's volume
/// sources (`VolumeSource`).
const VOLUME_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
];

/// A volume source's name: the schema's own, or a copy of one it lacks.
fn source_name(member: &str) -> Cow<'static, str> {
    match VOLUME_SOURCES.iter().find(|known| **known == member) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(member.to_owned()),
    }
}

/// A member's name, borrowed from the text unless it has escapes.
struct MemberName<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = MemberName<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Borrowed(name)))
            }

            fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(name.to_owned())))
            }

            fn visit_string<E>(self, name: String) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(name)))
            }
        }
        d.deserialize_str(NameVisitor)
    }
}

impl<'de> Deserialize<'de> for Volume {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct VolumeVisitor;
        impl<'de> Visitor<'de> for VolumeVisitor {
            type Value = Volume;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a volume")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Volume, A::Error> {
                let mut volume = Volume::default();
                while let Some(MemberName(key)) = map.next_key()? {
                    match &*key {
                        "name" => {
                            volume.name = map.next_value::<Option<String>>()?.unwrap_or_default()
                        }
                        "emptyDir" => {
                            volume.empty_dir =
                                map.next_value::<Option<EmptyDirVolumeSource>>()?.is_some()
                        }
                        "configMap" => volume.config_map = map.next_value()?,
                        "projected" => volume.projected = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    if key != "name" {
                        volume.sources.push(source_name(&key));
                    }
                }
                Ok(volume)
            }
        }
        d.deserialize_map(VolumeVisitor)
    }
}

/// `containers`, required: `null` reads as empty, as in k8s-openapi.
fn containers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Container>, D::Error> {
    Ok(list_from_one(d)?.unwrap_or_default())
}

/// A list of large items, or `null`, read with room for one item and then
/// twice as many each time it fills. serde's own reading makes room for
/// four at once: four containers take 1.5 KB, a size glibc's allocator
/// serves only after folding every small block freed so far back into its
/// bins, on every admission. Most pods have one container, some two.
fn list_from_one<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct List<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for List<T> {
        type Value = Option<Vec<T>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list or null")
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                if items.len() == items.capacity() {
                    items.reserve_exact(items.len().max(1));
                }
                items.push(item);
            }
            Ok(Some(items))
        }
    }
    d.deserialize_option(List(std::marker::PhantomData))
}

/// A required field: `null` reads as its default, as in k8s-openapi.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(spec: serde_json::Value) -> Result<PodSpec, serde_json::Error> {
        serde_json::from_str(&spec.to_string())
    }

    #[test]
    fn null_is_absent_as_in_k8s_openapi() {
        let spec = read(json!({"containers": null, "hostNetwork": null,
            "initContainers": [{"name": null, "securityContext": null}]}))
        .unwrap();
        assert!(spec.containers.is_empty());
        assert_eq!(spec.host_network, None);
        let init = &spec.init_containers.unwrap()[0];
        assert_eq!(init.name, "");
        assert!(init.security_context.is_none());
    }

    #[test]
    fn container_lists_keep_every_item_in_order_with_room_for_no_more() {
        let names = |n: usize| (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>();
        for n in [0, 1, 2, 3, 5, 9] {
            let list: Vec<_> = names(n).iter().map(|name| json!({"name": name})).collect();
            let spec = read(json!({"containers": list, "initContainers": list,
                "ephemeralContainers": list}))
            .unwrap();
            for read in [
                &spec.containers,
                spec.init_containers.as_ref().unwrap(),
                spec.ephemeral_containers.as_ref().unwrap(),
            ] {
                let read_names: Vec<_> = read.iter().map(|c| c.name.clone()).collect();
                assert_eq!(read_names, names(n));
                // Grown from one by doubling: never room for four at once
                // when there are fewer.
                assert!(read.capacity() < 2 * n.max(1), "{n}: {}", read.capacity());
            }
        }
        let absent = read(json!({})).unwrap();
        assert!(absent.containers.is_empty() && absent.init_containers.is_none());
        let null = read(json!({"initContainers": null, "ephemeralContainers": null})).unwrap();
        assert!(null.init_containers.is_none() && null.ephemeral_containers.is_none());
        for wrong in [
            json!({"containers": "a"}),
            json!({"initContainers": {"name": "a"}}),
            json!({"ephemeralContainers": 5}),
            json!({"containers": [{"name": 5}]}),
        ] {
            let error = read(wrong.clone()).unwrap_err().to_string();
            assert!(error.contains("invalid type"), "{wrong}: {error}");
        }
    }

    #[test]
    fn volumes_keep_every_source_as_written() {
        let spec = read(json!({"volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "c"}, "hostPath": null},
            {"name": "off", "emptyDir": null},
            {"name": "sa", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
        ]}))
        .unwrap();
        let volumes = spec.volumes.unwrap();
        let sources: Vec<Vec<&str>> = (volumes.iter())
            .map(|v| v.sources.iter().map(|s| s.as_ref()).collect())
            .collect();
        assert_eq!(
            sources,
            [
                &["emptyDir"][..],
                &["configMap", "hostPath"],
                &["emptyDir"],
                &["projected"],
            ]
        );
        let empty: Vec<bool> = volumes.iter().map(|v| v.empty_dir).collect();
        assert_eq!(empty, [true, false, false, false]);
        assert_eq!(volumes[1].config_map.as_ref().unwrap().name, "c");
        assert!(volumes[3].projected.is_some());
        // A name written with escapes is the name; one the schema lacks
        // is kept as written.
        let text = r#"{"volumes": [{"n\u0061me": "e", "empty\u0044ir": {}, "futureSource": {}}]}"#;
        let volume = &serde_json::from_str::<PodSpec>(text)
            .unwrap()
            .volumes
            .unwrap()[0];
        assert_eq!((volume.name.as_str(), volume.empty_dir), ("e", true));
        assert_eq!(volume.sources.as_slice(), ["emptyDir", "futureSource"]);
    }

    #[test]
    fn fields_no_rule_reads_are_skipped_and_read_ones_are_typed() {
        let spec = read(json!({"priorityClassName": 5, "containers": [{"name": "c",
            "tty": "yes", "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}]}))
        .unwrap();
        let env = &spec.containers[0].env.as_ref().unwrap()[0];
        assert!(env
            .value_from
            .as_ref()
            .is_some_and(|v| v.secret_key_ref.is_none()));
        for malformed in [
            json!({"hostNetwork": "yes"}),
            json!({"containers": [{"name": "c", "ports": "80"}]}),
            json!({"volumes": [{"name": "v", "emptyDir": {"sizeLimit": []}}]}),
            json!({"volumes": [{"name": 5}]}),
        ] {
            assert!(read(malformed.clone()).is_err(), "{malformed}");
        }
    }

    #[test]
    fn a_field_a_rule_reads_given_twice_is_malformed() {
        // The API server never sends one: which of the two would it keep?
        let twice = r#"{"containers": [], "hostPID": true, "hostPID": false}"#;
        assert!(serde_json::from_str::<PodSpec>(twice).is_err());
        // A volume's members, as before: the last counts, every one listed.
        let volume = r#"{"name": "a", "emptyDir": {}, "name": "b", "emptyDir": null}"#;
        let volume: Volume = serde_json::from_str(volume).unwrap();
        assert_eq!((volume.name.as_str(), volume.empty_dir), ("b", false));
        assert_eq!(volume.sources.as_slice(), ["emptyDir", "emptyDir"]);
    }
}
