//! The objects the relations read: each object parsed once into the typed
//! parts relations look at, and a set of them with what it knows to be
//! complete. Pure data: no I/O.

use crate::kind::{Kind, HANDLED_KINDS};
use crate::kinds::external_secret::ExternalSecretSpec;
use crate::kinds::gateway::gateway_containers;
use crate::kinds::http_route;
use crate::kinds::network_policy::selects;
use crate::kinds::pod_template::PodTemplate;
use crate::kinds::rule::{has_labels, read_at, MalformedObject};
use crate::kinds::service_monitor::ServiceMonitorSpec;
use crate::kinds::strategy::{env_reference, StrategyFiles};
use crate::object::Doc;
use crate::policy::{Labels, Policy};
use crate::violation::FieldPath;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, LazyLock};

/// An object's identity as messages name it: `Service portkey/portkey-gateway`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectName {
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One object, read once into what the relations look at.
#[derive(Debug)]
pub struct Object {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub labels: Labels,
    /// Made by a controller from an owner (it has a controller owner
    /// reference): the owner holds the references, so relations read the
    /// owner, never this copy.
    pub controlled: bool,
    pub view: View,
}

/// The typed parts of an object that relations read.
#[derive(Debug)]
pub enum View {
    Workload(Box<Workload>),
    Service(Box<ServiceSpec>),
    HttpRoute(Vec<BackendRef>),
    ServiceMonitor(Box<ServiceMonitor>),
    NetworkPolicy(LabelSelector),
    ExternalSecret(ExternalSecret),
    ConfigMap(ConfigMapView),
    /// A kind no relation reads.
    Other,
}

/// A workload's pod template and its own selector.
#[derive(Debug)]
pub struct Workload {
    pub template: Arc<PodTemplate>,
    /// `spec.selector` of a Deployment, ReplicaSet, StatefulSet or
    /// DaemonSet; `None` for the other kinds, or when absent.
    pub selector: Option<LabelSelector>,
}

/// One backendRef of an HTTPRoute (or the backendRef of a RequestMirror
/// filter), with the field path of the reference.
#[derive(Clone, Debug)]
pub struct BackendRef {
    pub path: FieldPath,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub port: Option<i32>,
}

#[derive(Debug, Default)]
pub struct ServiceMonitor {
    pub selector: LabelSelector,
    /// `namespaceSelector.any`.
    pub any_namespace: bool,
    /// `namespaceSelector.matchNames`: `None` when unset or empty (its own
    /// namespace).
    pub match_names: Option<Vec<String>>,
    /// Each endpoint's `port` (a Service port name), `None` when it scrapes
    /// by `targetPort` instead.
    pub endpoint_ports: Vec<Option<String>>,
}

/// What an ExternalSecret produces: a Secret of this name with these keys.
#[derive(Debug, Default)]
pub struct ExternalSecret {
    /// `spec.target.name`, or the ExternalSecret's own name.
    pub target: String,
    /// Keys it writes: `data[].secretKey` and the template's `data` keys.
    pub keys: BTreeSet<String>,
    /// `dataFrom` or `templateFrom`: it writes keys no manifest lists.
    pub open_keys: bool,
}

/// A ConfigMap's keys, and the environment references of its `*.json`
/// files (strategy files) with their paths.
#[derive(Debug, Default)]
pub struct ConfigMapView {
    pub keys: BTreeSet<String>,
    pub env_references: Vec<(FieldPath, String)>,
}

/// The kinds with a pod template ([`Kind::has_pod_template`]), in the
/// catalog's order.
static WORKLOAD_KINDS: LazyLock<Vec<Kind>> = LazyLock::new(|| {
    HANDLED_KINDS
        .iter()
        .map(|h| h.kind)
        .filter(|k| k.has_pod_template())
        .collect()
});

impl Object {
    /// Reads `doc`, an object of `kind` in `namespace` (`None` for a
    /// cluster-scoped one).
    pub fn read<'a>(
        kind: Kind,
        namespace: Option<&str>,
        doc: impl Into<Doc<'a>>,
    ) -> Result<Object, MalformedObject> {
        let doc = doc.into();
        let name = kind.info().name;
        // An object as received has its metadata read already.
        let meta: ObjectMeta = match doc {
            Doc::Object(object) => ObjectMeta::clone(&object.metadata),
            Doc::Tree(_) => read_at(doc, &["metadata"], name)?,
        };
        let view = match kind {
            k if k.has_pod_template() => {
                let selector = match k {
                    Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet | Kind::DaemonSet => {
                        read_at::<Option<LabelSelector>>(doc, &["spec", "selector"], name)?
                    }
                    _ => None,
                };
                View::Workload(Box::new(Workload {
                    template: PodTemplate::read_shared(k, doc)?,
                    selector,
                }))
            }
            Kind::Service => View::Service(Box::new(read_at(doc, &["spec"], name)?)),
            Kind::HttpRoute => View::HttpRoute(backend_refs(&read_at(doc, &["spec"], name)?)),
            Kind::ServiceMonitor => {
                let spec: ServiceMonitorSpec = read_at(doc, &["spec"], name)?;
                View::ServiceMonitor(Box::new(ServiceMonitor {
                    selector: spec.selector,
                    any_namespace: spec.namespace_selector.as_ref().is_some_and(|n| n.any),
                    // No names (or no namespaceSelector): its own namespace.
                    match_names: spec
                        .namespace_selector
                        .map(|n| n.match_names)
                        .filter(|names| !names.is_empty()),
                    endpoint_ports: spec.endpoints.into_iter().map(|e| e.port).collect(),
                }))
            }
            Kind::NetworkPolicy => {
                View::NetworkPolicy(read_at(doc, &["spec", "podSelector"], name)?)
            }
            Kind::ExternalSecret => {
                let spec: ExternalSecretSpec = read_at(doc, &["spec"], name)?;
                let target = spec.target.unwrap_or_default();
                let template = target.template.unwrap_or_default();
                let mut keys: BTreeSet<String> =
                    spec.data.into_iter().filter_map(|d| d.secret_key).collect();
                keys.extend(template.data.into_keys());
                View::ExternalSecret(ExternalSecret {
                    target: target
                        .name
                        .or_else(|| meta.name.clone())
                        .unwrap_or_default(),
                    keys,
                    open_keys: !spec.data_from.is_empty() || !template.template_from.is_empty(),
                })
            }
            Kind::ConfigMap => {
                // The strategies ConfigMap's files were parsed by its
                // admission already; any other is read here.
                let files = StrategyFiles::read_shared(doc, || {
                    read_at::<ConfigMap>(doc, &[], name).map(|cm| StrategyFiles::parse(&cm))
                })?;
                let mut view = ConfigMapView::default();
                for (key, config) in &files.files {
                    if let Ok(config) = config {
                        let file = FieldPath::root("data").key(key);
                        env_references(config, &file, &mut Vec::new(), &mut view.env_references);
                    }
                }
                view.keys = files
                    .keys
                    .iter()
                    .chain(&files.binary_keys)
                    .cloned()
                    .collect();
                View::ConfigMap(view)
            }
            _ => View::Other,
        };
        Ok(Object {
            kind,
            namespace: namespace.map(str::to_owned),
            name: meta.name.unwrap_or_default(),
            uid: meta.uid,
            labels: meta.labels.unwrap_or_default(),
            controlled: meta
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.controller == Some(true)),
            view,
        })
    }

    pub fn object_name(&self) -> ObjectName {
        ObjectName {
            kind: self.kind.info().name,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    pub fn workload(&self) -> Option<&Workload> {
        match &self.view {
            View::Workload(w) => Some(w),
            _ => None,
        }
    }

    /// The indices (into the template's containers) of the gateway
    /// containers of a workload, as the `gateway.*` rules find them.
    pub fn gateway_containers(&self, policy: &Policy) -> Vec<usize> {
        let Some(workload) = self.workload() else {
            return Vec::new();
        };
        let found = gateway_containers(&workload.template, &policy.gateway);
        workload
            .template
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| found.iter().any(|g| std::ptr::eq(*g, *c)))
            .map(|(i, _)| i)
            .collect()
    }
}

// === the parts read, as serde reads them ===

fn backend_ref(path: FieldPath, raw: &http_route::BackendRef) -> BackendRef {
    BackendRef {
        path,
        group: raw.group.clone(),
        kind: raw.kind.clone(),
        name: raw.name.clone(),
        namespace: raw.namespace.clone(),
        port: raw.port,
    }
}

/// Every backendRef of a route, mirrors included, with its path.
fn backend_refs(spec: &http_route::RouteSpec) -> Vec<BackendRef> {
    let mut out = Vec::new();
    let mirrors = |filters: &[http_route::Filter], path: &FieldPath, out: &mut Vec<BackendRef>| {
        for (k, filter) in filters.iter().enumerate() {
            if let Some(mirror) = &filter.request_mirror {
                let at = path.index(k).field("requestMirror").field("backendRef");
                out.push(backend_ref(at, &mirror.backend_ref));
            }
        }
    };
    for (i, rule) in spec.rules.iter().enumerate() {
        let rule_path = FieldPath::root("spec").field("rules").index(i);
        for (j, raw) in rule.backend_refs.iter().enumerate() {
            let path = rule_path.field("backendRefs").index(j);
            out.push(backend_ref(path.clone(), raw));
            mirrors(&raw.filters, &path.field("filters"), &mut out);
        }
        mirrors(&rule.filters, &rule_path.field("filters"), &mut out);
    }
    out
}

/// A step from a JSON value to one inside it.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Every string of a strategy file (at `file`) that is an environment
/// reference (`$OPENAI_API_KEY`), with its path. `at` is the way down to
/// `value`; a path is built only for what is found.
fn env_references<'a>(
    value: &'a Value,
    file: &FieldPath,
    at: &mut Vec<Step<'a>>,
    out: &mut Vec<(FieldPath, String)>,
) {
    match value {
        Value::String(s) => {
            if let Some(name) = env_reference(s) {
                let path = at.iter().fold(file.clone(), |path, step| match step {
                    Step::Key(key) => path.key(key),
                    Step::Index(i) => path.index(*i),
                });
                out.push((path, name.to_owned()));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                at.push(Step::Index(i));
                env_references(item, file, at, out);
                at.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                at.push(Step::Key(key));
                env_references(item, file, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

// === impl ObjectSet ===

/// Where an object is in an [`Objects`] view: an index into the set, or
/// [`ObjectId::ADMITTED`] for the object being admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub usize);

impl ObjectId {
    /// The object of an admission request, judged against a set that may
    /// hold an older version of it.
    pub const ADMITTED: ObjectId = ObjectId(usize::MAX);
}

/// Objects, and the kinds of which the set holds every object of the
/// policy's namespace (a live listing does; files given to `check` never
/// do). Where a kind is complete, a name that is not in the set names
/// nothing; elsewhere it is unknown.
#[derive(Debug, Default)]
pub struct ObjectSet {
    objects: Vec<Arc<Object>>,
    /// Per object, its gateway containers (see [`Object::gateway_containers`]).
    gateway: Vec<Vec<usize>>,
    by_kind: HashMap<Kind, Vec<usize>>,
    /// The namespace's objects by kind and name.
    by_name: HashMap<Kind, HashMap<String, usize>>,
    /// The namespace's ExternalSecrets by the Secret they produce.
    by_target: HashMap<String, Vec<usize>>,
    /// The pods of the namespace's workloads people write, by each of
    /// their labels (`key=value`).
    by_pod_label: HashMap<String, HashMap<String, Vec<usize>>>,
    complete: HashSet<Kind>,
    /// The namespace relations look in.
    namespace: String,
    /// The namespace's Services and NetworkPolicies by their selectors, for
    /// [`Objects::gateway_selectors`].
    selecting: HashMap<Kind, Selecting>,
}

/// Objects of one kind with a pod selector (Services, NetworkPolicies),
/// indexed so that admission visits only those a written gateway workload
/// can be involved with.
#[derive(Debug, Default)]
struct Selecting {
    /// By the first `key=value` their selector pins (a selector selects
    /// only pods carrying every label it pins, that one among them).
    pinned: HashMap<String, HashMap<String, Vec<usize>>>,
    /// Those whose selector pins no label.
    unpinned: Vec<usize>,
    /// Those that may be broken whatever workload is written: a Service
    /// that selects no workload of the set; a NetworkPolicy that selects no
    /// gateway workload of the set, and either no workload at all or is
    /// named after the gateway Service or a gateway workload.
    suspect: Vec<usize>,
}

impl ObjectSet {
    pub fn new(objects: Vec<Arc<Object>>, complete: HashSet<Kind>, policy: &Policy) -> Self {
        let mut by_kind: HashMap<Kind, Vec<usize>> = HashMap::new();
        let mut by_name: HashMap<Kind, HashMap<String, usize>> = HashMap::new();
        let mut by_target: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_pod_label: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::new();
        for (i, o) in objects.iter().enumerate() {
            if o.namespace.as_deref() != Some(policy.namespace.as_str()) {
                continue;
            }
            by_kind.entry(o.kind).or_default().push(i);
            // The first of a kind and name is the one looked up, as set order has it.
            by_name
                .entry(o.kind)
                .or_default()
                .entry(o.name.clone())
                .or_insert(i);
            match &o.view {
                View::ExternalSecret(es) => by_target.entry(es.target.clone()).or_default().push(i),
                View::Workload(w) if !o.controlled => {
                    for (k, v) in w.template.meta.labels.iter().flatten() {
                        by_pod_label
                            .entry(k.clone())
                            .or_default()
                            .entry(v.clone())
                            .or_default()
                            .push(i);
                    }
                }
                _ => {}
            }
        }
        let gateway = objects
            .iter()
            .map(|o| o.gateway_containers(policy))
            .collect();
        let mut set = ObjectSet {
            objects,
            gateway,
            by_kind,
            by_name,
            by_target,
            by_pod_label,
            complete,
            namespace: policy.namespace.clone(),
            selecting: HashMap::new(),
        };
        set.selecting = set.index_selectors(policy);
        set
    }

    /// The [`Selecting`] index of the Services and NetworkPolicies.
    fn index_selectors(&self, policy: &Policy) -> HashMap<Kind, Selecting> {
        let view = self.view();
        let gateways: Vec<Member<'_>> = view.gateway_workloads().collect();
        let mut out: HashMap<Kind, Selecting> = HashMap::new();
        for kind in [Kind::Service, Kind::NetworkPolicy] {
            let index = out.entry(kind).or_default();
            for m in view.of(kind) {
                let ObjectId(i) = m.id;
                let (pinned, suspect) = match &m.object.view {
                    View::Service(spec) => {
                        let selector = spec.selector.as_ref().filter(|s| !s.is_empty());
                        let nothing =
                            selector.is_some_and(|s| view.workloads_labelled(s).is_empty());
                        (selector.and_then(|s| s.iter().next()), nothing)
                    }
                    View::NetworkPolicy(selector) => {
                        let pinned = selector.match_labels.as_ref().filter(|l| !l.is_empty());
                        let empty = Labels::new();
                        let selects = |w: &Member<'_>| {
                            selects(selector, super::pod_labels(w).unwrap_or(&empty))
                        };
                        let candidates = match pinned {
                            Some(labels) => view.workloads_labelled(labels),
                            None => view.workloads().collect(),
                        };
                        let suspect = !gateways.iter().any(selects)
                            && (!candidates.iter().any(selects)
                                || super::meant_for_gateway(&m.object.name, &gateways, policy));
                        (pinned.and_then(|l| l.iter().next()), suspect)
                    }
                    _ => (None, true),
                };
                match pinned {
                    Some((k, v)) => index
                        .pinned
                        .entry(k.clone())
                        .or_default()
                        .entry(v.clone())
                        .or_default()
                        .push(i),
                    None => index.unpinned.push(i),
                }
                if suspect {
                    index.suspect.push(i);
                }
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn objects(&self) -> &[Arc<Object>] {
        &self.objects
    }

    /// The namespace the set was made for.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where an object of this kind and name is, in the policy's namespace.
    pub fn find(&self, kind: Kind, name: &str) -> Option<usize> {
        self.by_name.get(&kind)?.get(name).copied()
    }

    /// The whole set, as it is.
    pub fn view(&self) -> Objects<'_> {
        Objects {
            set: self,
            replaced: None,
            admitted: None,
            scan_all: false,
        }
    }

    /// The set as it would be with `admitted` written: it takes the place
    /// of the set's object of the same kind and name, if any.
    pub fn with<'a>(&'a self, admitted: &'a Admitted) -> Objects<'a> {
        let o = &admitted.object;
        let in_namespace = o.namespace.as_deref() == Some(self.namespace.as_str());
        Objects {
            set: self,
            replaced: if in_namespace {
                self.find(o.kind, &o.name)
            } else {
                None
            },
            admitted: in_namespace.then_some(admitted),
            scan_all: false,
        }
    }
}

/// An object being admitted, read with its gateway containers.
#[derive(Debug)]
pub struct Admitted {
    pub object: Object,
    gateway: Vec<usize>,
}

impl Admitted {
    pub fn new(object: Object, policy: &Policy) -> Self {
        let gateway = object.gateway_containers(policy);
        Admitted { object, gateway }
    }
}

/// One object of a view.
#[derive(Clone, Copy, Debug)]
pub struct Member<'a> {
    pub id: ObjectId,
    pub object: &'a Object,
    /// Its gateway containers (indices into the template's containers).
    pub gateway: &'a [usize],
}

impl Member<'_> {
    pub fn name(&self) -> ObjectName {
        self.object.object_name()
    }
}

/// What relations read: a set, optionally with one object written over it.
#[derive(Clone, Copy, Debug)]
pub struct Objects<'a> {
    set: &'a ObjectSet,
    replaced: Option<usize>,
    admitted: Option<&'a Admitted>,
    /// [`Objects::gateway_selectors`] visits every one (tests).
    scan_all: bool,
}

impl<'a> Objects<'a> {
    /// The objects of `kind` in the policy's namespace.
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = Member<'a>> + 'a {
        let this = *self;
        let base = this
            .set
            .by_kind
            .get(&kind)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(move |i| Some(*i) != this.replaced)
            .map(move |i| this.member(i));
        let admitted = this.admitted().filter(|a| a.object.kind == kind);
        base.chain(admitted)
    }

    /// Objects of several kinds.
    pub fn of_kinds(&self, kinds: &'a [Kind]) -> impl Iterator<Item = Member<'a>> + 'a {
        let this = *self;
        kinds.iter().flat_map(move |k| this.of(*k))
    }

    fn member(&self, i: usize) -> Member<'a> {
        Member {
            id: ObjectId(i),
            object: &self.set.objects[i],
            gateway: &self.set.gateway[i],
        }
    }

    /// The object being admitted, if the view has one.
    pub fn admitted(&self) -> Option<Member<'a>> {
        self.admitted.map(|a| Member {
            id: ObjectId::ADMITTED,
            object: &a.object,
            gateway: &a.gateway,
        })
    }

    /// The object of `kind` named `name`, if the view holds it.
    pub fn named(&self, kind: Kind, name: &str) -> Option<Member<'a>> {
        if let Some(a) = self.admitted() {
            if a.object.kind == kind && a.object.name == name {
                return Some(a);
            }
        }
        self.set
            .find(kind, name)
            .filter(|i| Some(*i) != self.replaced)
            .map(|i| self.member(i))
    }

    /// The ExternalSecrets that produce the Secret `name`.
    pub fn producers(&self, name: &str) -> Vec<Member<'a>> {
        let mut out: Vec<Member<'a>> = self
            .set
            .by_target
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|i| Some(*i) != self.replaced)
            .map(|i| self.member(i))
            .collect();
        if let Some(a) = self.admitted() {
            if matches!(&a.object.view, View::ExternalSecret(es) if es.target == name) {
                out.push(a);
            }
        }
        out
    }

    /// The workloads people write whose pods carry every `key=value` of
    /// `wanted` (a non-empty selector), from the label index.
    pub fn workloads_labelled(&self, wanted: &Labels) -> Vec<Member<'a>> {
        let Some((k, v)) = wanted.iter().next() else {
            return self.workloads().collect();
        };
        let matches = |m: &Member<'_>| has_labels(super::pod_labels(m), wanted);
        let mut out: Vec<Member<'a>> = self
            .set
            .by_pod_label
            .get(k)
            .and_then(|values| values.get(v))
            .into_iter()
            .flatten()
            .copied()
            .filter(|i| Some(*i) != self.replaced)
            .map(|i| self.member(i))
            .filter(|m| matches(m))
            .collect();
        if let Some(a) = self.admitted() {
            if !a.object.controlled && a.object.workload().is_some() && matches(&a) {
                out.push(a);
            }
        }
        out
    }

    /// The objects of `kind` that may hold a broken reference worth
    /// finding: in a view with an admitted object of that kind, only it
    /// (what admission asks about is what involves the object written, and
    /// no relation names an object of its holder's own kind); otherwise
    /// all of them.
    pub fn holders(&self, kind: Kind) -> Vec<Member<'a>> {
        match self.admitted() {
            Some(a) if a.object.kind == kind => vec![a],
            _ => self.of(kind).collect(),
        }
    }

    /// The Services or NetworkPolicies (`kind`) that a finding of the
    /// gateway relations involving `admitted`, a gateway workload being
    /// written, can be held on: those selecting its pods as written or as
    /// they were, those selecting by no label, those named after it, and
    /// those that select no gateway of the set. Any other one selects a
    /// gateway the write does not change, or another app's pods it does not
    /// change, so the write cannot break it. In the set's order; for a kind
    /// not indexed (or [`Objects::scanning_all`]), every one.
    pub fn gateway_selectors(&self, kind: Kind, admitted: &Member<'a>) -> Vec<Member<'a>> {
        let Some(index) = self.set.selecting.get(&kind).filter(|_| !self.scan_all) else {
            return self.holders(kind);
        };
        let mut ids: Vec<usize> = index
            .unpinned
            .iter()
            .chain(&index.suspect)
            .copied()
            .collect();
        let old = self
            .replaced
            .and_then(|i| self.set.objects[i].workload())
            .and_then(|w| w.template.meta.labels.as_ref());
        let new = admitted
            .object
            .workload()
            .and_then(|w| w.template.meta.labels.as_ref());
        for (k, v) in old.into_iter().chain(new).flatten() {
            if let Some(found) = index.pinned.get(k).and_then(|values| values.get(v)) {
                ids.extend(found);
            }
        }
        ids.extend(self.set.find(kind, &admitted.object.name));
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|i| self.member(i)).collect()
    }

    /// The view with [`Objects::gateway_selectors`] visiting every
    /// Service and NetworkPolicy (to compare against, in tests).
    #[cfg(test)]
    pub fn scanning_all(mut self) -> Self {
        self.scan_all = true;
        self
    }

    /// [`Objects::workloads`] as holders (see [`Objects::holders`]).
    pub fn holder_workloads(&self) -> Vec<Member<'a>> {
        match self.admitted() {
            Some(a) if a.object.kind.has_pod_template() => {
                if a.object.controlled || a.object.workload().is_none() {
                    Vec::new()
                } else {
                    vec![a]
                }
            }
            _ => self.workloads().collect(),
        }
    }

    /// Whether the view holds every object of `kind` in the namespace, so
    /// that a name it lacks names nothing.
    pub fn complete(&self, kind: Kind) -> bool {
        self.set.complete.contains(&kind)
    }

    pub fn namespace(&self) -> &'a str {
        &self.set.namespace
    }

    /// The object behind an id.
    pub fn get(&self, id: ObjectId) -> Option<&'a Object> {
        if id == ObjectId::ADMITTED {
            return self.admitted.map(|a| &a.object);
        }
        self.set.objects.get(id.0).map(|o| &**o)
    }

    /// Workloads people write (no controller made them), of every kind
    /// with a pod template.
    pub fn workloads(&self) -> impl Iterator<Item = Member<'a>> + 'a {
        self.of_kinds(&WORKLOAD_KINDS)
            .filter(|m| !m.object.controlled && m.object.workload().is_some())
    }

    /// The workloads that run the gateway.
    pub fn gateway_workloads(&self) -> impl Iterator<Item = Member<'a>> + 'a {
        self.workloads().filter(|m| !m.gateway.is_empty())
    }

    /// Whether the view holds every workload of the namespace.
    pub fn workloads_complete(&self) -> bool {
        WORKLOAD_KINDS.iter().all(|k| self.complete(*k))
    }
}
