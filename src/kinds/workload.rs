//! Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and CronJob:
//! one code path on the pod spec, whatever the wrapper.

use super::{gateway, pod_security, pod_spec, read_at, Context, Kind, MalformedObject};
use crate::patch::PatchBuilder;
use crate::violation::{FieldPath, Violation};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

/// Where a kind keeps its pod template.
pub fn template_pointer(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Pod => &[],
        Kind::CronJob => &["spec", "jobTemplate", "spec", "template"],
        _ => &["spec", "template"],
    }
}

/// Which list of the pod spec a container is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerList {
    Init,
    Regular,
    Ephemeral,
}

impl ContainerList {
    pub fn field(self) -> &'static str {
        match self {
            ContainerList::Init => "initContainers",
            ContainerList::Regular => "containers",
            ContainerList::Ephemeral => "ephemeralContainers",
        }
    }
}

/// One container of a pod spec with its place in the object.
#[derive(Clone, Debug)]
pub struct ContainerEntry {
    pub list: ContainerList,
    pub index: usize,
    pub container: Container,
    /// `spec.template.spec.containers[0]`
    pub path: FieldPath,
    /// JSON Pointer segments of the container.
    pub pointer: Vec<String>,
}

impl ContainerEntry {
    /// Pointer segments below this container.
    pub fn at(&self, rest: &[&str]) -> Vec<String> {
        let mut p = self.pointer.clone();
        p.extend(rest.iter().map(|s| (*s).to_owned()));
        p
    }
}

/// The pod template of any workload kind, read through typed objects.
#[derive(Clone, Debug)]
pub struct PodTemplate {
    pub kind: Kind,
    /// Metadata of the workload object itself (for a Pod, the pod's).
    pub workload_meta: ObjectMeta,
    /// Metadata of the pod template (for a Pod, the pod's).
    pub meta: ObjectMeta,
    pub spec: PodSpec,
    /// Init, regular and ephemeral containers, in that order. (They are
    /// moved here from `spec`, whose container lists are left empty.)
    pub containers: Vec<ContainerEntry>,
    /// Per volume, its source fields as written (`emptyDir`, `hostPath`,
    /// ...): read from the JSON so that no source type is ever missed.
    pub volume_sources: Vec<Vec<String>>,
    /// `spec.template` (empty for a Pod).
    template_pointer: &'static [&'static str],
}

impl PodTemplate {
    pub fn read(kind: Kind, doc: &Value) -> Result<PodTemplate, MalformedObject> {
        let name = kind.info().name;
        let template_pointer = template_pointer(kind);
        let with = |last: &'static str| {
            let mut p = template_pointer.to_vec();
            p.push(last);
            p
        };
        let workload_meta: ObjectMeta = read_at(doc, &["metadata"], name)?;
        let meta: ObjectMeta = read_at(doc, &with("metadata"), name)?;
        let spec: PodSpec = read_at(doc, &with("spec"), name)?;
        let mut volumes_pointer = with("spec");
        volumes_pointer.push("volumes");
        let volume_sources = volumes_pointer
            .iter()
            .try_fold(doc, |node, segment| node.get(segment))
            .and_then(Value::as_array)
            .map(|volumes| {
                volumes
                    .iter()
                    .filter_map(Value::as_object)
                    .map(|v| v.keys().filter(|k| *k != "name").cloned().collect())
                    .collect()
            })
            .unwrap_or_default();
        let mut template = PodTemplate {
            kind,
            workload_meta,
            meta,
            spec,
            containers: Vec::new(),
            volume_sources,
            template_pointer,
        };
        for list in [
            ContainerList::Init,
            ContainerList::Regular,
            ContainerList::Ephemeral,
        ] {
            let mut pointer = with("spec");
            pointer.push(list.field());
            // Moved out of the spec: the rules read them through `containers`.
            let containers: Vec<Container> = match list {
                ContainerList::Init => template.spec.init_containers.take().unwrap_or_default(),
                ContainerList::Regular => std::mem::take(&mut template.spec.containers),
                // Ephemeral containers share the fields the rules read.
                ContainerList::Ephemeral => read_at(doc, &pointer, name)?,
            };
            for (index, container) in containers.into_iter().enumerate() {
                let path = template
                    .spec_path()
                    .field(list.field())
                    .item(index, &container.name);
                let entry = ContainerEntry {
                    list,
                    index,
                    container,
                    path,
                    pointer: template.spec_at(&[list.field(), &index.to_string()]),
                };
                template.containers.push(entry);
            }
        }
        Ok(template)
    }

    /// `spec.template.spec` (or `spec` for a Pod).
    pub fn spec_path(&self) -> FieldPath {
        self.template_path().field("spec")
    }

    /// `spec.template.metadata` (or `metadata` for a Pod).
    pub fn meta_path(&self) -> FieldPath {
        self.template_path().field("metadata")
    }

    fn template_path(&self) -> FieldPath {
        FieldPath::root(&self.template_pointer.join("."))
    }

    /// Pointer segments below the pod spec.
    pub fn spec_at(&self, rest: &[&str]) -> Vec<String> {
        self.below("spec", rest)
    }

    /// Pointer segments below the pod template's metadata.
    pub fn meta_at(&self, rest: &[&str]) -> Vec<String> {
        self.below("metadata", rest)
    }

    fn below(&self, part: &str, rest: &[&str]) -> Vec<String> {
        let mut p: Vec<String> = self
            .template_pointer
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        p.push(part.to_owned());
        p.extend(rest.iter().map(|s| (*s).to_owned()));
        p
    }

    /// Whether the workload object has metadata of its own besides the
    /// template's (everything but a bare Pod).
    pub fn has_wrapper(&self) -> bool {
        !self.template_pointer.is_empty()
    }

    /// The name of the `i`th volume (empty when it has none).
    pub fn volume_name(&self, i: usize) -> &str {
        self.spec
            .volumes
            .as_deref()
            .and_then(|v| v.get(i))
            .map_or("", |v| v.name.as_str())
    }

    pub fn is_windows(&self) -> bool {
        self.spec.os.as_ref().is_some_and(|os| os.name == "windows")
    }

    /// Init and regular containers: the ones that run with the pod spec.
    pub fn running_containers(&self) -> impl Iterator<Item = &ContainerEntry> {
        self.containers
            .iter()
            .filter(|c| c.list != ContainerList::Ephemeral)
    }
}

pub fn mutate(
    kind: Kind,
    ctx: &Context,
    builder: &mut PatchBuilder,
) -> Result<Vec<String>, MalformedObject> {
    let template = PodTemplate::read(kind, builder.doc())?;
    // Neither step adds containers, so the template read once stays valid
    // for both; lists they extend are extended through the builder.
    let mut injected = pod_spec::mutate(&template, ctx.policy, builder);
    // What the gateway needs was decided, and injected, on the owner.
    if ctx.origin == super::Origin::Authored {
        injected.extend(gateway::mutate(&template, ctx.policy, builder));
    }
    Ok(injected)
}

pub fn validate(kind: Kind, ctx: &Context, doc: &Value) -> Result<Vec<Violation>, MalformedObject> {
    let template = PodTemplate::read(kind, doc)?;
    let mut violations = pod_security::validate(&template, &ctx.policy.pod_security);
    violations.extend(pod_spec::validate(&template, ctx.policy));
    violations.extend(gateway::validate(&template, ctx.policy));
    Ok(violations)
}
