"""Small builders with keyword tweaks: `pod("x/a", labels={"app": "web"}, ports=[...])`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from podnet.model.cluster import Cluster, build
from podnet.model.errors import Origin
from podnet.model.load import LoadResult, validate_object
from podnet.policy.engine import Engine


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(labels)},
    }


def pod(
    key: str,
    labels: dict[str, str] | None = None,
    ports: list[dict[str, Any]] | None = None,
    ip: str | None = None,
    node: str | None = None,
    host_network: bool = False,
    containers: dict[str, list[dict[str, Any]]] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`key` is ns/name. `ports` are containerPort dicts, e.g. {"name": "http", "containerPort": 80},
    of the one container `c`; or `containers` maps each container's name to its ports."""
    ns, name = key.split("/")
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": {
            "containers": [
                {"name": c, "image": "x", "ports": p}
                for c, p in (containers or {"c": ports or []}).items()
            ]
        },
    }
    if annotations:
        doc["metadata"]["annotations"] = dict(annotations)
    if node:
        doc["spec"]["nodeName"] = node
    if host_network:
        doc["spec"]["hostNetwork"] = True
    if ip:
        doc["status"] = {"podIP": ip}
    return doc


def policy(key: str, spec: dict[str, Any] | str) -> dict[str, Any]:
    """`spec` as a dict or as YAML text (handy for copying examples from the docs)."""
    ns, name = key.split("/")
    if isinstance(spec, str):
        spec = yaml.safe_load(spec)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def service(
    key: str,
    selector: dict[str, str] | None = None,
    ports: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """`key` is ns/name; `ports` are ServicePort dicts (default one port 80 -> 8080);
    further spec fields by their API names (`type="NodePort"`, `clusterIP="None"`)."""
    ns, name = key.split("/")
    body: dict[str, Any] = {
        "ports": ports if ports is not None else [{"port": 80, "targetPort": 8080}],
        **spec,
    }
    if selector is not None:
        body["selector"] = selector
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


def example_docs(name: str) -> list[dict[str, Any]]:
    """Every document of the repository's examples/NAME folder (for live tests of an
    example; the package is installed from the checkout)."""
    root = Path(__file__).resolve().parents[3] / "examples" / name
    out: list[dict[str, Any]] = []
    for f in sorted(root.glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return out


def cluster(*docs: dict[str, Any], nodes: int | None = None) -> Cluster:
    """Validate and build as the loader would; raises InputError like it."""
    from collections import Counter

    from podnet.model.errors import InputError

    result = LoadResult()
    problems = []
    skipped: Counter[str] = Counter()
    for i, d in enumerate(docs):
        problems += validate_object(
            yaml.safe_load(yaml.safe_dump(d)), Origin("test.yaml", i), result, skipped
        )
    if problems:
        raise InputError(problems)
    return build(result, node_count=nodes)


def engine(*docs: dict[str, Any], ipblock_pods: str = "match", nodes: int | None = None) -> Engine:
    return Engine(cluster(*docs, nodes=nodes), ipblock_pods=ipblock_pods)  # type: ignore[arg-type]


def ingress(
    key: str,
    rules: list[dict[str, Any]] | None = None,
    class_name: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """`key` is ns/name; `rules` as the API spells them (see `rule`); further spec fields by
    their API names (`defaultBackend=...`, `tls=[...]`)."""
    ns, name = key.split("/")
    body: dict[str, Any] = {**spec}
    if rules is not None:
        body["rules"] = rules
    if class_name is not None:
        body["ingressClassName"] = class_name
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


def backend(service: str, port: int | str = 80) -> dict[str, Any]:
    """An IngressBackend of a Service, its port by number or by name."""
    key = "number" if isinstance(port, int) else "name"
    return {"service": {"name": service, "port": {key: port}}}


def rule(
    host: str | None, *paths: tuple[str, str, str] | tuple[str, str, str, int | str]
) -> dict[str, Any]:
    """An IngressRule: (path, pathType, service[, port]) per path."""
    out: dict[str, Any] = {
        "http": {
            "paths": [
                {"path": p[0], "pathType": p[1], "backend": backend(p[2], *p[3:])} for p in paths
            ]
        }
    }
    if host is not None:
        out["host"] = host
    return out
