"""runtime.json: what `up` built, as the daemon and `podnet exec` read it.

Written by `up` once the datapath is applied (the kernel side owns the writer); this module
only reads it into immutable values. Namespace names come from here and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.daemon.paths import StateFiles


class RuntimeFileError(Exception):
    """runtime.json is missing or malformed (one line, for the user)."""


@dataclass(frozen=True)
class Port:
    name: str | None
    port: int
    protocol: str  # TCP | UDP | SCTP


@dataclass(frozen=True)
class Container:
    name: str
    ports: tuple[Port, ...] = ()


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    node: str
    ip: str
    netns: str  # the node's namespace for hostNetwork pods
    host_network: bool = False
    annotations: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[Container, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    netns: str
    pod_cidr: str


@dataclass(frozen=True)
class Runtime:
    cluster: str
    mode: str
    dns_ip: str
    dns_domain: str
    fabric_netns: str
    internet_netns: str
    internet_ip: str
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    digest: str  # sha256 of the file: tells a reloaded daemon from a stale one

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def pod(self, key: str) -> Pod | None:
        return next((p for p in self.pods if p.key == key), None)


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(root: Path) -> Runtime:
    path = StateFiles(root).runtime
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RuntimeFileError(f"{path} does not exist") from None
    try:
        return parse(json.loads(raw), hashlib.sha256(raw).hexdigest())
    except (ValueError, KeyError, TypeError) as e:
        raise RuntimeFileError(f"{path}: malformed: {e!r}") from None


def parse(doc: dict[str, Any], digest: str = "") -> Runtime:
    return Runtime(
        cluster=doc["cluster"],
        mode=doc.get("mode", "host-gw"),
        dns_ip=doc.get("dns", {}).get("ip", "10.96.0.10"),
        dns_domain=doc.get("dns", {}).get("domain", "cluster.local"),
        fabric_netns=doc.get("fabric", {}).get("netns", ""),
        internet_netns=doc.get("internet", {}).get("netns", ""),
        internet_ip=doc.get("internet", {}).get("ip", ""),
        nodes=tuple(
            Node(n["name"], n["ip"], n["netns"], n.get("podCIDR", "")) for n in doc.get("nodes", ())
        ),
        pods=tuple(_pod(p) for p in doc.get("pods", ())),
        digest=digest,
    )


def _pod(p: dict[str, Any]) -> Pod:
    return Pod(
        namespace=p["namespace"],
        name=p["name"],
        node=p["node"],
        ip=p["ip"],
        netns=p["netns"],
        host_network=bool(p.get("hostNetwork", False)),
        annotations=dict(p.get("annotations") or {}),
        containers=tuple(
            Container(
                c.get("name", ""),
                tuple(
                    Port(q.get("name"), int(q["port"]), str(q.get("protocol", "TCP")).upper())
                    for q in c.get("ports") or ()
                ),
            )
            for c in p.get("containers") or ()
        ),
    )
