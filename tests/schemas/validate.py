#!/usr/bin/env python3
"""Validates rendered Kubernetes manifests against their schemas, strictly
(unknown fields are errors), offline.

Built-in kinds: kubernetes-validate (PyPI), with the Kubernetes OpenAPI
schemas it ships, for each version in KUBERNETES_VERSIONS. Custom resources
(cert-manager, Prometheus Operator): the CRD schemas vendored in crds/
(see README.md), through jsonschema. An object of a kind with no schema is
an error, never skipped.

Usage: validate.py FILE...   (multi-document YAML; - for standard input)
Exit 0 when every object is valid, 1 otherwise.
"""
import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

# The oldest Kubernetes the manifests are meant for (matchConditions are
# read from 1.28; unhealthyPodEvictionPolicy from 1.27) and the newest the
# validator knows.
KUBERNETES_VERSIONS = ["1.28.0", "1.32.0", kubernetes_validate.utils.latest_version()]

CRD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crds")


def strict(schema):
    """Like the API server's structural schemas: fields not declared are
    errors, unless the schema preserves unknown fields."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schema(api_version, kind):
    if "/" not in api_version:
        return None
    group, version = api_version.split("/", 1)
    path = os.path.join(CRD_DIR, f"{kind.lower()}-{group}-{version}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return strict(json.load(f))


def where(obj):
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{(ns + '/') if ns else ''}{meta.get('name')}"


def validate(obj):
    """The problems of one object, as strings."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not api_version or not kind:
        return ["no apiVersion or kind"]
    schema = crd_schema(api_version, kind)
    if schema is not None:
        validator = jsonschema.Draft7Validator(schema)
        return [
            f"{'.'.join(str(p) for p in e.absolute_path) or '(object)'}: {e.message}"
            for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))
        ]
    problems = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"no schema for {api_version} {kind} in Kubernetes {version} "
                            "or in the vendored CRD schemas")
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.absolute_path) or "(object)"
            problems.append(f"Kubernetes {version}: {path}: {e.message}")
    return problems


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    objects = 0
    failed = 0
    for path in sys.argv[1:]:
        text = sys.stdin.read() if path == "-" else open(path).read()
        for obj in yaml.safe_load_all(text):
            if obj is None:
                continue
            objects += 1
            problems = validate(obj)
            if problems:
                failed += 1
                for problem in problems:
                    print(f"{path}: {where(obj)}: {problem}")
    if objects == 0:
        print("no objects to validate", file=sys.stderr)
        return 1
    print(f"{objects} objects, {failed} invalid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
