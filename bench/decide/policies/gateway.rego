# The gateway Deployment rules of portkey-guard's default policy (SPEC
# §3.2-3.3, validation only), written in Rego as OPA/Gatekeeper users
# would. Used by bench/decide to compare evaluation time; checked to give
# portkey-guard's verdicts on the same fixtures first.
package portkey

import rego.v1

pod := input.spec.template.spec

pod_sc := object.get(pod, "securityContext", {})

template_meta := object.get(input.spec.template, "metadata", {})

containers := array.concat(object.get(pod, "initContainers", []), pod.containers)

gateway_repositories := {"portkeyai/gateway", "docker.io/portkeyai/gateway", "index.docker.io/portkeyai/gateway"}

image_name(image) := split(image, "@")[0]

repository(image) := split(image_name(image), ":")[0]

tag(image) := split(image_name(image), ":")[1]

gateways := [c | some c in pod.containers; repository(c.image) in gateway_repositories]

sc(c) := object.get(c, "securityContext", {})

# --- pod hardening (§3.2) ---

deny contains "pod runAsUser" if object.get(pod_sc, "runAsUser", -1) != 1000

deny contains "pod runAsGroup" if object.get(pod_sc, "runAsGroup", -1) != 1000

deny contains "runAsNonRoot" if object.get(pod_sc, "runAsNonRoot", false) != true

deny contains "seccomp" if not object.get(object.get(pod_sc, "seccompProfile", {}), "type", "") in {"RuntimeDefault", "Localhost"}

deny contains "host namespaces" if {
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	object.get(pod, field, false) == true
}

allowed_volume_sources := {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret"}

deny contains "volume type" if {
	some v in object.get(pod, "volumes", [])
	some source, _ in v
	source != "name"
	not source in allowed_volume_sources
}

deny contains "privileged" if {
	some c in containers
	object.get(sc(c), "privileged", false) == true
}

deny contains "allowPrivilegeEscalation" if {
	some c in containers
	object.get(sc(c), "allowPrivilegeEscalation", true) != false
}

deny contains "readOnlyRootFilesystem" if {
	some c in containers
	object.get(sc(c), "readOnlyRootFilesystem", false) != true
}

deny contains "capabilities drop" if {
	some c in containers
	not "ALL" in object.get(object.get(sc(c), "capabilities", {}), "drop", [])
}

deny contains "capabilities add" if {
	some c in containers
	some cap in object.get(object.get(sc(c), "capabilities", {}), "add", [])
	cap != "NET_BIND_SERVICE"
}

deny contains "container identity" if {
	some c in containers
	some field in ["runAsUser", "runAsGroup"]
	object.get(sc(c), field, 1000) != 1000
}

deny contains "container seccomp" if {
	some c in containers
	object.get(object.get(sc(c), "seccompProfile", {}), "type", "RuntimeDefault") == "Unconfined"
}

writable_paths := {"/tmp", "/var/tmp"}

deny contains "writable mount" if {
	some c in containers
	some m in object.get(c, "volumeMounts", [])
	object.get(m, "readOnly", false) != true
	not m.mountPath in writable_paths
}

credential_name(name) if endswith(upper(name), "_KEY")
credential_name(name) if endswith(upper(name), "_TOKEN")
credential_name(name) if contains(upper(name), "SECRET")
credential_name(name) if contains(upper(name), "PASSWORD")

deny contains "credential env" if {
	some c in containers
	some e in object.get(c, "env", [])
	credential_name(e.name)
	object.get(e, "value", "") != ""
}

# --- the gateway container (§3.3) ---

deny contains "image" if {
	some c in gateways
	not tag(c.image) == "1.12.1"
}

deny contains "version label" if {
	some c in gateways
	some meta in [input.metadata, template_meta]
	object.get(object.get(meta, "labels", {}), "app.kubernetes.io/version", "") != tag(c.image)
}

deny contains "name label" if {
	count(gateways) > 0
	some meta in [input.metadata, template_meta]
	object.get(object.get(meta, "labels", {}), "app.kubernetes.io/name", "") != "portkey-gateway"
}

deny contains "port" if {
	some c in gateways
	not named_port(c)
}

named_port(c) if {
	some p in object.get(c, "ports", [])
	p.containerPort == 8787
	object.get(p, "name", "") == "http"
}

deny contains "envFrom" if {
	some c in gateways
	not env_from(c)
}

env_from(c) if {
	some e in object.get(c, "envFrom", [])
	e.configMapRef.name == "portkey-gateway-config"
}

resolve_port(_, port) := port if is_number(port)

resolve_port(c, port) := p.containerPort if {
	is_string(port)
	some p in object.get(c, "ports", [])
	object.get(p, "name", "") == port
}

probe_ok(c, field) if {
	probe := c[field]
	probe.httpGet.path == "/v1/health"
	resolve_port(c, probe.httpGet.port) == 8787
}

deny contains "probe handler" if {
	some c in gateways
	some field in ["startupProbe", "readinessProbe", "livenessProbe"]
	not probe_ok(c, field)
}

deny contains "readiness period" if {
	some c in gateways
	object.get(object.get(c, "readinessProbe", {}), "periodSeconds", 10) != 10
}

deny contains "liveness period" if {
	some c in gateways
	object.get(object.get(c, "livenessProbe", {}), "periodSeconds", 10) != 30
}

deny contains "startup time" if {
	some c in gateways
	probe := object.get(c, "startupProbe", {})
	wait := object.get(probe, "initialDelaySeconds", 0) + object.get(probe, "periodSeconds", 10) * object.get(probe, "failureThreshold", 3)
	wait > 50
}

wanted_resources := {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}

deny contains "resources" if {
	some c in gateways
	some side, values in wanted_resources
	some name, want in values
	not units.parse(object.get(object.get(object.get(c, "resources", {}), side, {}), name, "0")) == units.parse(want)
}

deny contains "strategy mount" if {
	some c in gateways
	not strategy_mount(c)
}

strategy_mount(c) if {
	some m in object.get(c, "volumeMounts", [])
	m.mountPath == "/app/configs"
	object.get(m, "readOnly", false) == true
	some v in object.get(pod, "volumes", [])
	v.name == m.name
	v.configMap.name == "portkey-model-configs"
}

wanted_annotations := {"prometheus.io/scrape": "true", "prometheus.io/port": "8787", "prometheus.io/path": "/metrics"}

deny contains "metrics annotations" if {
	count(gateways) > 0
	some key, value in wanted_annotations
	object.get(object.get(template_meta, "annotations", {}), key, "") != value
}
