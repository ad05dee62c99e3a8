#!/usr/bin/python3
"""Offline validation of a kustomize directory of Kubernetes manifests (deploy/k8s).

Usage: validate_manifests.py DIR [--schema FILE]

Checks, with no cluster and no network:
- kustomization.yaml: only known fields, and every listed resource file exists;
- every object in the resource files against a strict JSON Schema of its kind (k8s-schema.json,
  generated from the Kubernetes API models by make_schema.mjs): unknown or misspelt fields, wrong
  types, missing required fields and unsupported kinds fail;
- references between the objects: workload selectors match their pod labels, Services select
  some workload, named ports exist, and the PersistentVolumeClaims, ConfigMaps, Secrets and the
  StatefulSets' governing Services that the pods name are defined;
- the image names that kustomization's `images` rewrites are used by some container.
Exit status 0 when everything passes, 1 with one line per problem otherwise.
"""
import argparse
import json
import os
import sys

import jsonschema
import yaml

KUSTOMIZATION_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["resources"],
    "properties": {
        "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"},
        "kind": {"const": "Kustomization"},
        "namespace": {"type": "string"},
        "namePrefix": {"type": "string"},
        "nameSuffix": {"type": "string"},
        "commonLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "commonAnnotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "resources": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {k: {"type": "string"}
                               for k in ("name", "newName", "newTag", "digest")},
            },
        },
        "replicas": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "count"],
                "properties": {"name": {"type": "string"}, "count": {"type": "integer"}},
            },
        },
        "patches": {"type": "array"},
        "configMapGenerator": {"type": "array"},
        "secretGenerator": {"type": "array"},
    },
}

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}


def error_path(error):
    return "/".join(str(p) for p in error.absolute_path) or "(top)"


class Checker:
    def __init__(self, schema):
        self.schema = schema
        self.problems = []
        self.objects = []  # (file, document index, object)

    def problem(self, where, message):
        self.problems.append(f"{where}: {message}")

    def validate_object(self, where, obj):
        if not isinstance(obj, dict):
            self.problem(where, "not a mapping")
            return False
        key = f"{obj.get('apiVersion')}/{obj.get('kind')}"
        ref = self.schema["kinds"].get(key)
        if ref is None:
            self.problem(where, f"unsupported apiVersion/kind {key} (known: "
                         f"{', '.join(sorted(self.schema['kinds']))})")
            return False
        validator = jsonschema.Draft7Validator(
            {"$ref": ref, "definitions": self.schema["definitions"]})
        ok = True
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            self.problem(where, f"{error_path(error)}: {error.message}")
            ok = False
        return ok

    def load_directory(self, directory):
        path = os.path.join(directory, "kustomization.yaml")
        try:
            with open(path) as f:
                kustomization = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            self.problem(path, f"cannot read: {e}")
            return None
        for error in jsonschema.Draft7Validator(KUSTOMIZATION_SCHEMA).iter_errors(kustomization):
            self.problem(path, f"{error_path(error)}: {error.message}")
        for resource in (kustomization or {}).get("resources", []) or []:
            file = os.path.join(directory, resource)
            if not os.path.isfile(file):
                self.problem(path, f"resource {resource} does not exist")
                continue
            try:
                with open(file) as f:
                    documents = list(yaml.safe_load_all(f))
            except yaml.YAMLError as e:
                self.problem(file, f"YAML error: {e}")
                continue
            for index, obj in enumerate(d for d in documents if d is not None):
                name = (obj.get("metadata") or {}).get("name", "?") if isinstance(obj, dict) else "?"
                where = f"{resource}[{index}] {obj.get('kind', '?') if isinstance(obj, dict) else '?'}/{name}"
                if self.validate_object(where, obj):
                    self.objects.append((where, obj))
        return kustomization

    def named(self, kind):
        return {o["metadata"]["name"]: (w, o) for w, o in self.objects if o["kind"] == kind}

    def check_references(self, kustomization):
        pvcs, config_maps, secrets, services = (self.named(k) for k in (
            "PersistentVolumeClaim", "ConfigMap", "Secret", "Service"))
        pod_labels = []
        images = set()
        for where, obj in self.objects:
            if obj["kind"] not in WORKLOAD_KINDS:
                continue
            spec = obj["spec"]
            template = spec["template"]
            labels = (template.get("metadata") or {}).get("labels") or {}
            pod_labels.append(labels)
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            if obj["kind"] != "Job" and not selector:
                self.problem(where, "spec.selector.matchLabels is empty")
            for key, value in selector.items():
                if labels.get(key) != value:
                    self.problem(where, f"selector {key}={value} does not match the pod labels")
            if obj["kind"] == "StatefulSet" and spec.get("serviceName") not in services:
                self.problem(where, f"serviceName {spec.get('serviceName')} is not a Service here")
            pod = template["spec"]
            for volume in pod.get("volumes") or []:
                claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                if claim is not None and claim not in pvcs:
                    self.problem(where, f"volume {volume['name']}: no PersistentVolumeClaim {claim}")
                config_map = (volume.get("configMap") or {}).get("name")
                if config_map is not None and config_map not in config_maps:
                    self.problem(where, f"volume {volume['name']}: no ConfigMap {config_map}")
                secret = (volume.get("secret") or {}).get("secretName")
                if secret is not None and secret not in secrets:
                    self.problem(where, f"volume {volume['name']}: no Secret {secret}")
            volume_names = {v["name"] for v in pod.get("volumes") or []}
            for container in (pod.get("containers") or []) + (pod.get("initContainers") or []):
                images.add(container.get("image", "").split(":")[0])
                port_names = {p.get("name") for p in container.get("ports") or [] if p.get("name")}
                for mount in container.get("volumeMounts") or []:
                    if mount["name"] not in volume_names:
                        self.problem(where, f"container {container['name']} mounts unknown volume "
                                     f"{mount['name']}")
                for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
                    probe = container.get(probe_name) or {}
                    for action in ("httpGet", "tcpSocket"):
                        port = (probe.get(action) or {}).get("port")
                        if isinstance(port, str) and port not in port_names:
                            self.problem(where, f"container {container['name']} {probe_name} "
                                         f"names unknown port {port}")
        for name, (where, service) in services.items():
            selector = service["spec"].get("selector") or {}
            if not selector:
                continue
            if not any(all(labels.get(k) == v for k, v in selector.items()) for labels in pod_labels):
                self.problem(where, f"selector {selector} matches no workload's pods")
        for image in (kustomization or {}).get("images") or []:
            if image["name"] not in images:
                self.problem("kustomization.yaml", f"images: no container uses image "
                             f"{image['name']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--schema", default=os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "k8s-schema.json"))
    args = parser.parse_args()
    with open(args.schema) as f:
        checker = Checker(json.load(f))
    kustomization = checker.load_directory(args.directory)
    if not checker.problems:
        checker.check_references(kustomization)
    for problem in checker.problems:
        print(f"INVALID {problem}")
    if checker.problems:
        return 1
    for where, _ in checker.objects:
        print(f"valid {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
