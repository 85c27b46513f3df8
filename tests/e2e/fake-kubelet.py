#!/usr/bin/env python3
"""The kubelet's part of a pod's life, for the end-to-end suite.

There is no container runtime and no scheduler in the suite. This process
watches the pods of the given namespaces and reports every new pod as
Running and Ready through `pods/status`, as a kubelet does once the
containers have started and the readiness probe passed, so Deployments
become available and rollouts progress. Pods stay unscheduled (no
nodeName), so the API server deletes them at once when a controller scales
down; nothing has to be stopped.

It authenticates with a bearer token as a node (system:node:NAME in
system:nodes) and verifies the API server against the suite's CA. Standard
library only; it stops on SIGTERM.

Usage: fake-kubelet.py --server URL --ca FILE --token-file FILE NAMESPACE...
"""

import argparse
import datetime
import json
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request


def log(message):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    print(f"{stamp} {message}", flush=True)


class Api:
    def __init__(self, server, ca, token):
        self.server = server.rstrip("/")
        self.context = ssl.create_default_context(cafile=ca)
        self.token = token

    def request(self, method, path, body=None, content_type=None, timeout=30):
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type or "application/json"
        req = urllib.request.Request(self.server + path, data=data, headers=headers, method=method)
        return urllib.request.urlopen(req, context=self.context, timeout=timeout)

    def get(self, path):
        with self.request("GET", path) as resp:
            return json.load(resp)


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready(pod):
    status = pod.get("status", {})
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))


def running_status(pod):
    started = now()
    spec = pod.get("spec", {})

    def container_status(container, running):
        state = (
            {"running": {"startedAt": started}}
            if running
            else {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started}}
        )
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": running,
            "started": running,
            "restartCount": 0,
            "state": state,
        }

    status = {
        "phase": "Running",
        "startTime": started,
        "conditions": [
            {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": started}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
        "containerStatuses": [container_status(c, True) for c in spec.get("containers", [])],
    }
    if spec.get("initContainers"):
        status["initContainerStatuses"] = [container_status(c, False) for c in spec["initContainers"]]
    return {"status": status}


class Kubelet:
    def __init__(self, api, namespaces):
        self.api = api
        self.namespaces = set(namespaces)

    def observe(self, pod):
        meta = pod.get("metadata", {})
        if meta.get("namespace") not in self.namespaces:
            return
        if meta.get("deletionTimestamp") or ready(pod):
            return
        name = f"{meta['namespace']}/{meta['name']}"
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        try:
            self.api.request(
                "PATCH", path, running_status(pod), "application/strategic-merge-patch+json"
            ).close()
            log(f"running and ready: {name}")
        except urllib.error.HTTPError as error:
            # 404: deleted meanwhile; 409: changed meanwhile (seen again on the watch).
            log(f"status of {name} not set: {error.code} {error.read()[:300]!r}")

    def run(self):
        while True:
            try:
                pods = self.api.get("/api/v1/pods")
                for pod in pods.get("items", []):
                    self.observe(pod)
                self.watch(pods["metadata"]["resourceVersion"])
            except (OSError, ValueError, KeyError, urllib.error.URLError) as error:
                log(f"list/watch interrupted ({error}); listing again")
                time.sleep(0.5)

    def watch(self, resource_version):
        path = f"/api/v1/pods?watch=1&resourceVersion={resource_version}&timeoutSeconds=60&allowWatchBookmarks=true"
        with self.api.request("GET", path, timeout=90) as stream:
            for line in stream:
                event = json.loads(line)
                kind = event.get("type")
                if kind == "ERROR":
                    # Usually 410 Gone: the resource version is too old; list again.
                    raise ValueError(event.get("object", {}).get("message", "watch error"))
                if kind in ("ADDED", "MODIFIED"):
                    self.observe(event["object"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("namespaces", nargs="+")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(args.token_file) as f:
        token = f.read().strip()
    log(f"watching pods in {', '.join(args.namespaces)}")
    Kubelet(Api(args.server, args.ca, token), args.namespaces).run()


if __name__ == "__main__":
    main()
