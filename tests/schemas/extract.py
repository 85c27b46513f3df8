#!/usr/bin/env python3
"""Writes the openAPIV3Schema of each version of CustomResourceDefinitions
as JSON Schema files, descriptions dropped (they do not take part in
validation). How the files in crds/ were made; see README.md.

Usage: extract.py OUT_DIR CRD.yaml...
"""
import json
import os
import sys

import yaml


def strip_descriptions(node):
    if isinstance(node, dict):
        return {
            k: strip_descriptions(v)
            for k, v in node.items()
            # A property may be named "description": keep those.
            if not (k == "description" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def main():
    out, files = sys.argv[1], sys.argv[2:]
    for path in files:
        with open(path) as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group = crd["spec"]["group"]
                kind = crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    if not version.get("served"):
                        continue
                    schema = strip_descriptions(version["schema"]["openAPIV3Schema"])
                    name = f"{kind.lower()}-{group}-{version['name']}.json"
                    with open(os.path.join(out, name), "w") as f:
                        json.dump(schema, f, indent=1, sort_keys=True)
                        f.write("\n")
                    print(name)


if __name__ == "__main__":
    main()
