//! The pod template of any workload kind, read once through typed objects:
//! containers with their place in the object, security contexts, volumes
//! and mounts. The workload rule modules (`pss`, `pod`, `gateway`) read pods
//! only through this module; it uses none of them.

use super::pod_spec::{Container, PodSpec};
use super::rule::{read_meta_at, read_meta_part, read_part, MalformedObject};
use crate::image::ImageRef;
use crate::kind::Kind;
use crate::object::Doc;
use crate::patch::PatchBuilder;
use crate::violation::FieldPath;
use k8s_openapi::api::core::v1::{SELinuxOptions, SeccompProfile, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use std::sync::Arc;

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
    /// `spec.template.spec.containers[0]` (keyed by the container's name).
    pub path: FieldPath,
    /// Its `securityContext`.
    pub context_path: FieldPath,
    /// Where the workload keeps its pod template.
    template_pointer: &'static [&'static str],
    /// `index` as a pointer segment.
    index_segment: String,
    /// Whether the image names a repository, with the repository asked
    /// about: the gateway rules each ask of every container, and the answer
    /// parses the image.
    names_repository: std::sync::OnceLock<(Box<str>, bool)>,
}

/// JSON Pointer segments, held inline.
pub type Segments<'a> = smallvec::SmallVec<[&'a str; 12]>;

impl ContainerEntry {
    /// Whether the container's image names `repository` (normalised), as
    /// [`ImageRef::names_repository`] decides: remembered for the first
    /// repository asked about; another is decided afresh each time.
    pub fn runs_image_of(&self, repository: &str) -> bool {
        let decide = || {
            let image = self.container.image.as_deref().unwrap_or_default();
            ImageRef::names_repository(image, repository)
        };
        let (asked, answer) = self
            .names_repository
            .get_or_init(|| (repository.into(), decide()));
        if &**asked == repository {
            *answer
        } else {
            decide()
        }
    }

    /// Pointer segments below this container.
    pub fn at<'a>(&'a self, rest: &[&'a str]) -> Segments<'a> {
        let mut p: Segments = self.template_pointer.iter().copied().collect();
        p.extend(["spec", self.list.field(), self.index_segment.as_str()]);
        p.extend_from_slice(rest);
        p
    }

    /// Its volume mounts with their indexes.
    pub fn mounts(&self) -> impl Iterator<Item = (usize, &VolumeMount)> {
        self.container.volume_mounts.iter().flatten().enumerate()
    }

    /// The path of its `i`th mount (keyed by mount path): built only for a
    /// violation.
    pub fn mount_path(&self, i: usize, mount: &VolumeMount) -> FieldPath {
        self.path.field("volumeMounts").item(i, &mount.mount_path)
    }

    /// Whether the container mounts something at `path`.
    pub fn has_mount_at(&self, path: &str) -> bool {
        self.container
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| same_path(&m.mount_path, path))
    }
}

/// The fields the Pod Security Standard reads from a security context, the
/// pod's or a container's alike.
#[derive(Clone, Debug)]
pub struct SecurityContextView<'a> {
    /// `spec.template.spec.securityContext` or
    /// `spec.template.spec.containers[0].securityContext`.
    pub path: &'a FieldPath,
    /// The container's list, `None` for the pod's own context.
    pub list: Option<ContainerList>,
    pub se_linux_options: Option<&'a SELinuxOptions>,
    pub seccomp_profile: Option<&'a SeccompProfile>,
    pub app_armor_type: Option<&'a str>,
    pub host_process: Option<bool>,
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
}

/// The pod template of any workload kind, read through typed objects.
#[derive(Clone, Debug)]
pub struct PodTemplate {
    pub kind: Kind,
    /// Metadata of the workload object itself (for a Pod, the pod's).
    pub workload_meta: Arc<ObjectMeta>,
    /// Metadata of the pod template (for a Pod, the pod's).
    pub meta: Arc<ObjectMeta>,
    pub spec: PodSpec,
    /// Init, regular and ephemeral containers, in that order. (They are
    /// moved here from `spec`, whose container lists are left empty.)
    pub containers: Vec<ContainerEntry>,
    /// `spec.template` (empty for a Pod).
    template_pointer: &'static [&'static str],
    /// `spec.template.spec`, `spec.template.metadata` and
    /// `spec.template.spec.securityContext`, built once: every rule starts
    /// from them.
    spec_path: FieldPath,
    meta_path: FieldPath,
    pod_context_path: FieldPath,
}

impl PodTemplate {
    /// [`PodTemplate::read`], once per object as received: the webhook's
    /// rules and its relation step share what the first of them read.
    pub fn read_shared<'a>(
        kind: Kind,
        doc: impl Into<Doc<'a>>,
    ) -> Result<Arc<PodTemplate>, MalformedObject> {
        match doc.into() {
            Doc::Object(object) => object.shared_view(
                |template: &PodTemplate| template.kind == kind,
                || PodTemplate::read(kind, Doc::Object(object)),
            ),
            tree => PodTemplate::read(kind, tree).map(Arc::new),
        }
    }

    pub fn read<'a>(kind: Kind, doc: impl Into<Doc<'a>>) -> Result<PodTemplate, MalformedObject> {
        let doc = doc.into();
        let name = kind.info().name;
        let template_pointer = template_pointer(kind);
        let with = |last: &'static str| {
            let mut p: Segments = template_pointer.iter().copied().collect();
            p.push(last);
            p
        };
        // Each level is read once: the parts wanted from it in one pass.
        let workload_meta = match doc {
            Doc::Object(object) => Arc::clone(&object.metadata),
            Doc::Tree(_) => Arc::new(read_meta_at(doc, &["metadata"], name)?),
        };
        let (meta, spec_part) = if template_pointer.is_empty() {
            // A Pod is its own template.
            (Arc::clone(&workload_meta), doc.at(&["spec"]))
        } else {
            let [meta, spec] = doc.template_parts(template_pointer);
            (
                Arc::new(read_meta_part(meta, &with("metadata"), name)?),
                spec,
            )
        };
        let spec: PodSpec = read_part(spec_part, &with("spec"), name)?;
        // Room for exactly the containers there are: one entry is below a
        // kilobyte, four (a vector's first growth) are well above it.
        let count = spec.containers.len()
            + spec.init_containers.as_ref().map_or(0, Vec::len)
            + spec.ephemeral_containers.as_ref().map_or(0, Vec::len);
        let mut template = PodTemplate {
            kind,
            workload_meta,
            meta,
            spec,
            containers: Vec::with_capacity(count),
            template_pointer,
            spec_path: FieldPath::default(),
            meta_path: FieldPath::default(),
            pod_context_path: FieldPath::default(),
        };
        let template_path = template_pointer
            .iter()
            .fold(FieldPath::default(), |path, field| path.field(field));
        template.spec_path = template_path.field("spec");
        template.meta_path = template_path.field("metadata");
        template.pod_context_path = template.spec_path.field("securityContext");
        for list in [
            ContainerList::Init,
            ContainerList::Regular,
            ContainerList::Ephemeral,
        ] {
            // Moved out of the spec: the rules read them through `containers`.
            let containers: Vec<Container> = match list {
                ContainerList::Init => template.spec.init_containers.take().unwrap_or_default(),
                ContainerList::Regular => std::mem::take(&mut template.spec.containers),
                ContainerList::Ephemeral => template
                    .spec
                    .ephemeral_containers
                    .take()
                    .unwrap_or_default(),
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
                    context_path: path.field("securityContext"),
                    path,
                    template_pointer,
                    index_segment: index.to_string(),
                    names_repository: std::sync::OnceLock::new(),
                };
                template.containers.push(entry);
            }
        }
        Ok(template)
    }

    /// `spec.template.spec` (or `spec` for a Pod).
    pub fn spec_path(&self) -> &FieldPath {
        &self.spec_path
    }

    /// `spec.template.metadata` (or `metadata` for a Pod).
    pub fn meta_path(&self) -> &FieldPath {
        &self.meta_path
    }

    /// Pointer segments below the pod spec.
    pub fn spec_at<'a>(&self, rest: &[&'a str]) -> Segments<'a> {
        self.below("spec", rest)
    }

    /// Pointer segments below the pod template's metadata.
    pub fn meta_at<'a>(&self, rest: &[&'a str]) -> Segments<'a> {
        self.below("metadata", rest)
    }

    fn below<'a>(&self, part: &'static str, rest: &[&'a str]) -> Segments<'a> {
        let mut p: Segments = self.template_pointer.iter().copied().collect();
        p.push(part);
        p.extend_from_slice(rest);
        p
    }

    /// Whether the workload object has metadata of its own besides the
    /// template's (everything but a bare Pod).
    pub fn has_wrapper(&self) -> bool {
        !self.template_pointer.is_empty()
    }

    /// The workload's and the template's metadata with their paths (a bare
    /// Pod has one).
    pub fn metas(&self) -> impl Iterator<Item = (&ObjectMeta, FieldPath)> {
        let workload = self
            .has_wrapper()
            .then(|| (&*self.workload_meta, FieldPath::root("metadata")));
        workload
            .into_iter()
            .chain([(&*self.meta, self.meta_path().clone())])
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

    /// The `i`th volume's path, keyed by its name.
    pub fn volume_path(&self, i: usize) -> FieldPath {
        let name = self
            .spec
            .volumes
            .as_deref()
            .and_then(|v| v.get(i))
            .map_or("", |v| v.name.as_str());
        self.spec_path().field("volumes").item(i, name)
    }

    /// The pod's security context, then every container's that is set.
    pub fn security_contexts(&self) -> impl Iterator<Item = SecurityContextView<'_>> {
        // The pod's and a container's context are different types with the
        // same fields for what the standard reads.
        macro_rules! view {
            ($sc:expr, $path:expr, $list:expr) => {
                SecurityContextView {
                    path: $path,
                    list: $list,
                    se_linux_options: $sc.se_linux_options.as_ref(),
                    seccomp_profile: $sc.seccomp_profile.as_ref(),
                    app_armor_type: $sc.app_armor_profile.as_ref().map(|p| p.type_.as_str()),
                    host_process: $sc.windows_options.as_ref().and_then(|w| w.host_process),
                    run_as_user: $sc.run_as_user,
                    run_as_group: $sc.run_as_group,
                }
            };
        }
        let pod = self.spec.security_context.as_ref();
        let pod = pod.map(|sc| view!(sc, &self.pod_context_path, None));
        let containers = self.containers.iter().filter_map(|c| {
            let sc = c.container.security_context.as_ref()?;
            Some(view!(sc, &c.context_path, Some(c.list)))
        });
        pod.into_iter().chain(containers)
    }

    /// Appends `volume` to the pod spec unless a volume of that name is
    /// already there, in the manifest or added by an earlier step of this
    /// mutation.
    pub fn ensure_volume(&self, b: &mut PatchBuilder, volume: Value) {
        let path = self.spec_at(&["volumes"]);
        let present = b
            .get(&path)
            .and_then(Value::as_array)
            .is_some_and(|vs| vs.iter().any(|v| v["name"] == volume["name"]));
        if !present {
            b.append(&path, volume);
        }
    }
}

/// The segments of a mount path as the runtime resolves it: `.` and empty
/// segments dropped, `..` taking the previous one away (never above the
/// root). `/tmp/../app` is `/app`, `/tmp//x/` is `/tmp/x`. Held inline:
/// asked of every mount by several rules.
fn path_segments(path: &str) -> smallvec::SmallVec<[&str; 8]> {
    let mut segments = smallvec::SmallVec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    segments
}

/// Whether `path` is written as it resolves: `/`, or `/` and segments
/// none of which is empty, `.` or `..`. Two such paths are the same when
/// their text is, which spares splitting them (nearly every mount path,
/// and every path the policy names, is written so).
fn resolved(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let mut segment = 0;
    for (i, byte) in rest.bytes().chain([b'/']).enumerate() {
        if byte == b'/' {
            if matches!(&rest.as_bytes()[segment..i], b"" | b"." | b"..") {
                return false;
            }
            segment = i + 1;
        }
    }
    true
}

/// Mount paths compare as the runtime resolves them.
pub fn same_path(a: &str, b: &str) -> bool {
    if resolved(a) && resolved(b) {
        return a == b;
    }
    path_segments(a) == path_segments(b)
}

/// `path` is `dir` or below it, both as the runtime resolves them.
pub fn within(path: &str, dir: &str) -> bool {
    if resolved(path) && resolved(dir) {
        return dir == "/"
            || path
                .strip_prefix(dir)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    }
    path_segments(path).starts_with(&path_segments(dir))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::object::RawObject;
    use serde_json::json;

    #[test]
    fn read_shared_reads_an_object_as_received_once_per_kind() {
        let text = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})
        .to_string();
        let object: RawObject = serde_json::from_str(&text).unwrap();
        let first = PodTemplate::read_shared(Kind::Deployment, Doc::Object(&object)).unwrap();
        let again = PodTemplate::read_shared(Kind::Deployment, Doc::Object(&object)).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(again.containers[0].container.name, "c");
        // Read as another kind (another template path): read again.
        let as_pod = PodTemplate::read_shared(Kind::Pod, Doc::Object(&object)).unwrap();
        assert_eq!(as_pod.kind, Kind::Pod);
        assert!(as_pod.containers.is_empty());
        // A tree (a mutated object) is read each time.
        let tree: Value = serde_json::from_str(&text).unwrap();
        let (a, b) = (
            PodTemplate::read_shared(Kind::Deployment, &tree).unwrap(),
            PodTemplate::read_shared(Kind::Deployment, &tree).unwrap(),
        );
        assert!(!Arc::ptr_eq(&a, &b));
    }

    /// A Deployment with this pod spec, read as a template.
    pub fn deployment(spec: Value) -> PodTemplate {
        let doc = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"template": {"metadata": {}, "spec": spec}}});
        PodTemplate::read(Kind::Deployment, &doc).expect("a valid Deployment")
    }

    #[test]
    fn containers_are_read_in_order_with_keyed_paths() {
        let pod = deployment(json!({
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b"}],
            "ephemeralContainers": [{"name": "debug"}],
        }));
        let names: Vec<(&str, String, String)> = pod
            .containers
            .iter()
            .map(|c| {
                (
                    c.container.name.as_str(),
                    c.path.to_string(),
                    c.path.keyed().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            names[2],
            (
                "b",
                "spec.template.spec.containers[1]".to_owned(),
                "spec.template.spec.containers[b]".to_owned()
            )
        );
        assert_eq!(names.len(), 4);
        assert_eq!(pod.running_containers().count(), 3);
        assert_eq!(
            pod.containers[0].at(&["image"]).as_slice(),
            ["spec", "template", "spec", "initContainers", "0", "image"]
        );
    }

    #[test]
    fn image_repository_answers_hold_for_any_repository_asked() {
        let pod =
            deployment(json!({"containers": [{"name": "g", "image": "portkeyai/gateway:1.12.1"}]}));
        let c = &pod.containers[0];
        let gateway = "docker.io/portkeyai/gateway";
        let other = "ghcr.io/portkey-ai/gateway";
        // The first answer is remembered; another repository is not
        // answered from it, and the first still is.
        assert!(c.runs_image_of(gateway));
        assert!(!c.runs_image_of(other));
        assert!(c.runs_image_of(gateway));
        let pod =
            deployment(json!({"containers": [{"name": "g", "image": "portkeyai/gateway:1.12.1"}]}));
        let c = &pod.containers[0];
        assert!(!c.runs_image_of(other));
        assert!(c.runs_image_of(gateway));
    }

    #[test]
    fn security_contexts_of_pod_and_containers() {
        let pod = deployment(json!({
            "securityContext": {"runAsUser": 5},
            "containers": [{"name": "a", "securityContext": {"runAsGroup": 7}}, {"name": "b"}],
        }));
        let views: Vec<_> = pod.security_contexts().collect();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].run_as_user, Some(5));
        assert_eq!(
            views[1].path.to_string(),
            "spec.template.spec.containers[0].securityContext"
        );
        assert_eq!(views[1].run_as_group, Some(7));
    }

    #[test]
    fn malformed_template_is_an_error() {
        let doc = json!({"spec": {"template": {"spec": {"containers": "nope"}}}});
        assert!(PodTemplate::read(Kind::Deployment, &doc).is_err());
    }

    #[test]
    fn paths_within_directories() {
        assert!(same_path("/tmp/", "/tmp"));
        assert!(same_path("/app//configs/.", "/app/configs"));
        assert!(within("/tmp/x", "/tmp"));
        assert!(within("/tmp", "/tmp/"));
        assert!(!within("/tmpx", "/tmp"));
        for escape in [
            "/tmp/../app",
            "/tmp//../app",
            "/tmp/../../etc",
            "/tmp/x/../../etc",
        ] {
            assert!(!within(escape, "/tmp"), "{escape}");
        }
        assert!(within("/tmp/a/../b", "/tmp"));
        assert!(path_segments("/../../").is_empty());
        assert!(resolved("/") && resolved("/tmp") && resolved("/a/.b/c.."));
        for written in ["", "tmp", "//", "/tmp/", "/a//b", "/a/./b", "/a/..", "/."] {
            assert!(!resolved(written), "{written:?}");
        }
    }

    /// Paths of a few segments, one a prefix of another, with every way
    /// of writing one that does not resolve as written.
    fn written_path() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        let segment = proptest::sample::select(vec!["", ".", "..", "a", "aa", "b"]);
        (
            proptest::bool::weighted(0.8),
            proptest::collection::vec(segment, 0..4),
        )
            .prop_map(|(absolute, segments)| {
                let path = segments.join("/");
                if absolute {
                    format!("/{path}")
                } else {
                    path
                }
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2048,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Paths compared as text when both are written as they resolve
        /// compare as their segments do.
        #[test]
        fn paths_compare_as_their_segments(
            a in written_path(),
            b in written_path(),
        ) {
            let (sa, sb) = (path_segments(&a), path_segments(&b));
            proptest::prop_assert_eq!(same_path(&a, &b), sa == sb);
            proptest::prop_assert_eq!(within(&a, &b), sa.starts_with(&sb));
            if resolved(&a) {
                proptest::prop_assert_eq!(&a, &format!("/{}", sa.join("/")));
            }
        }
    }
}
