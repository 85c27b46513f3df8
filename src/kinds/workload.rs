//! Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and CronJob:
//! one code path on the pod template, whatever the wrapper. The rules are
//! those of the `pss`, `pod` and `gateway` modules.

use super::pod_template::PodTemplate;
use super::rule::{check_all, inject_all, Context, MalformedObject, Origin};
use super::{gateway, pod, pss};
use crate::kind::Kind;
use crate::object::Doc;
use crate::patch::PatchBuilder;
use crate::violation::Violation;

pub fn mutate(
    kind: Kind,
    ctx: &Context,
    builder: &mut PatchBuilder,
) -> Result<Vec<String>, MalformedObject> {
    // Read from the object's text when nothing was added yet, and kept
    // with the object for its judgement should nothing be added (a
    // patched object is judged from its tree). No injection adds
    // containers, so the template read once stays valid for all; lists
    // they extend are extended through the builder.
    let template = PodTemplate::read_shared(kind, builder.doc())?;
    let mut injected = inject_all(pod::INJECTIONS, &template, ctx.policy, builder);
    // What the gateway needs was decided, and injected, on the owner.
    if ctx.origin == Origin::Authored {
        let groups = inject_all(gateway::INJECTIONS, &template, ctx.policy, builder);
        if !groups.is_empty() {
            injected.push(format!("gateway {}", groups.join(", ")));
        }
    }
    Ok(injected)
}

pub fn validate(kind: Kind, ctx: &Context, doc: Doc) -> Result<Vec<Violation>, MalformedObject> {
    let template = PodTemplate::read_shared(kind, doc)?;
    let mut violations = check_all(pss::RULES, &template, ctx);
    violations.extend(check_all(pod::RULES, &template, ctx));
    violations.extend(check_all(gateway::RULES, &template, ctx));
    Ok(violations)
}
