"""Synthetic clusters of realistic shape for the analyzer benchmark, as plain Kubernetes YAML.

Deterministic: the same parameters and seed give byte-identical files. The layout is the one
network-config-analyzer (NCA) reads as well, so that both tools see the very same input:

    OUT/ns/namespaces.yaml        kind: List of Namespaces (what `kubectl get ns -o yaml` prints)
    OUT/pods/pods.yaml            kind: List of Pods, as a dump: nodeName, podIP, hostIP, phase
    OUT/nodes/nodes.yaml          kind: List of Nodes (podCIDR, InternalIP); podnet only
    OUT/policies/policies.yaml    multi-document YAML of NetworkPolicies (a GitOps folder)
    OUT/meta.txt                  JSON: counts (pods, ports, pairs); not .json, so `-f OUT` skips it

Shape: namespaces carry team (a..z) and env (prod/staging/dev) labels, plus kube-system (the
cluster DNS pods) and monitoring (Prometheus). Pods come in apps of 3-10 replicas that share
app/tier labels and named container ports (http 8080/TCP, grpc 50051/TCP, metrics 9090/TCP,
dns 53/UDP, ...). Pods are plain Pods without ownerReferences by default: NCA folds the pods
of one owner and label set into two representatives, and we want it to analyse every pod, as
podnet does (--owners writes them, as a real dump has them). Pod addresses
are fixed in the dump (spec.nodeName, status.podIP, one /24 per node in 10.244.0.0/16, about
100 pods a node), so that ipBlock peers over pod ranges mean the same thing in every run.

NetworkPolicies are of the usual kinds: default-deny per namespace (ingress; in some
namespaces egress too, with the DNS allowance to kube-system that egress isolation needs),
allow from the same app or from other tiers by podSelector (matchLabels, matchExpressions),
from namespaces by namespaceSelector (team/env), combined namespace+pod peers, ipBlock peers
with `except` (outside ranges and pod ranges), named and numeric ports, endPort ranges, and
egress rules to data tiers, other teams and the internet.

    python bench/gen_cluster.py --pods 2000 --policies 400 --namespaces 40 --seed 1 OUT
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import string
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEAMS = tuple(string.ascii_lowercase)
ENVS = ("prod", "staging", "dev")
CLUSTER_PREFIX = "10.244"  # podnet's default cluster CIDR 10.244.0.0/16, one /24 per node
PODS_PER_NODE = 100
SYSTEM_NAMESPACES = ("kube-system", "monitoring")

Doc = dict[str, Any]
Port = tuple[str, int, str]  # (name, number, protocol)

HTTP: Port = ("http", 8080, "TCP")
METRICS: Port = ("metrics", 9090, "TCP")
GRPC: Port = ("grpc", 50051, "TCP")


@dataclass(frozen=True)
class Profile:
    """What one kind of application looks like: its tier and its container ports."""

    name: str
    tier: str
    ports: tuple[Port, ...]


PROFILES = (
    Profile("frontend", "web", (HTTP, METRICS)),
    Profile("web", "web", (HTTP, METRICS)),
    Profile("gateway", "web", (HTTP, ("https", 8443, "TCP"), METRICS)),
    Profile("api", "api", (HTTP, GRPC, METRICS)),
    Profile("orders", "api", (GRPC, METRICS)),
    Profile("payments", "api", (GRPC, METRICS)),
    Profile("users", "api", (HTTP, GRPC)),
    Profile("catalog", "api", (HTTP, METRICS)),
    Profile("search", "api", (HTTP, METRICS)),
    Profile("worker", "backend", (METRICS,)),
    Profile("scheduler", "backend", (HTTP, METRICS)),
    Profile("mailer", "backend", (("smtp", 2525, "TCP"), METRICS)),
    Profile("kafka", "data", (("kafka", 9092, "TCP"), ("kafka-int", 9093, "TCP"), METRICS)),
    Profile("redis", "data", (("redis", 6379, "TCP"), ("metrics", 9121, "TCP"))),
    Profile("postgres", "data", (("postgres", 5432, "TCP"), ("metrics", 9187, "TCP"))),
    Profile("resolver", "infra", (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"))),
    Profile("statsd", "infra", (("statsd", 8125, "UDP"), METRICS)),
    Profile("syslog", "infra", (("syslog", 514, "UDP"),)),
)
SIDECAR_PORTS: tuple[Port, ...] = (("envoy-admin", 15000, "TCP"), ("envoy-stats", 15090, "TCP"))
COREDNS = Profile("coredns", "infra", (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")))
PROMETHEUS = Profile("prometheus", "infra", (("web", 9090, "TCP"),))

OUTSIDE_EXCEPT = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


@dataclass
class Namespace:
    name: str
    team: str
    env: str
    apps: list[App] = field(default_factory=list)
    deny_egress: bool = False


@dataclass
class App:
    name: str
    profile: Profile
    namespace: str
    replicas: int
    sidecar: bool

    @property
    def ports(self) -> tuple[Port, ...]:
        return self.profile.ports + (SIDECAR_PORTS if self.sidecar else ())


def default_namespaces(pods: int) -> int:
    """About 50 pods a namespace: 500 -> 10, 2,000 -> 40, 10,000 -> 200."""
    return max(len(SYSTEM_NAMESPACES) + 1, round(pods / 50))


# ---- namespaces and pods -------------------------------------------------------------------


def _namespaces(rng: random.Random, count: int) -> list[Namespace]:
    out: list[Namespace] = []
    seen: dict[str, int] = {}
    for _ in range(count - len(SYSTEM_NAMESPACES)):
        team, env = rng.choice(TEAMS), rng.choices(ENVS, weights=(3, 2, 2))[0]
        base = f"team-{team}-{env}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}-{seen[base]}"
        out.append(Namespace(name, team, env))
    return out


def _apps(rng: random.Random, namespaces: list[Namespace], pods: int) -> None:
    """Fill namespaces with apps of 3-10 replicas until `pods` pods exist; sizes are skewed
    (a few big namespaces, many small ones) as in real clusters."""
    weights = [rng.paretovariate(1.5) for _ in namespaces]
    left = pods
    # Every namespace gets one app first, so that none stays empty.
    order = list(namespaces) + rng.choices(namespaces, weights=weights, k=pods)
    for ns in order:
        if left <= 0:
            break
        replicas = min(rng.randint(3, 10), left)
        if 0 < left - replicas < 3:  # no app of one or two pods at the very end
            replicas = left - 3 if left - 3 >= 3 else left
        used = {a.name for a in ns.apps}
        profile = rng.choice(PROFILES)
        name, k = profile.name, 1
        while name in used:
            k += 1
            name = f"{profile.name}-{k}"
        ns.apps.append(App(name, profile, ns.name, replicas, rng.random() < 0.2))
        left -= replicas


def _suffix(rng: random.Random, n: int) -> str:
    return "".join(rng.choices("bcdfghjklmnpqrstvwxz2456789", k=n))


def _pod_docs(rng: random.Random, apps: list[App], owners: bool) -> list[Doc]:
    docs = []
    replicas = [(a, h) for a in apps for h in [_suffix(rng, 9)] for _ in range(a.replicas)]
    for index, (app, hash_) in enumerate(replicas):
        node, host = divmod(index, PODS_PER_NODE)
        labels = {"app": app.name, "tier": app.profile.tier, "pod-template-hash": hash_}
        labels["version"] = "canary" if rng.random() < 0.1 else "v1"
        containers = [_container(app.profile.name, app.profile.ports)]
        if app.sidecar:
            containers.append(_container("envoy", SIDECAR_PORTS))
        metadata: Doc = {
            "name": f"{app.name}-{hash_}-{_suffix(rng, 5)}",
            "namespace": app.namespace,
            "labels": labels,
        }
        if owners:
            metadata["ownerReferences"] = [_owner(app.namespace, f"{app.name}-{hash_}")]
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": metadata,
                "spec": {"containers": containers, "nodeName": f"node-{node:03d}"},
                "status": {
                    "phase": "Running",
                    "hostIP": _host_ip(node),
                    "podIP": f"{_node_range(node)}.{host + 2}",
                },
            }
        )
    return docs


def _owner(namespace: str, replicaset: str) -> Doc:
    uid = uuid.uuid5(uuid.NAMESPACE_URL, f"podnet-bench/{namespace}/{replicaset}")
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": replicaset,
        "uid": str(uid),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _container(name: str, ports: tuple[Port, ...]) -> Doc:
    return {
        "name": name,
        "image": f"registry.example/{name}:1.0",
        "ports": [{"name": n, "containerPort": p, "protocol": proto} for n, p, proto in ports],
    }


def _node_doc(name: str) -> Doc:
    index = int(name.rsplit("-", 1)[1])
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"podCIDR": f"{_node_range(index)}.0/24"},
        "status": {"addresses": [{"type": "InternalIP", "address": _host_ip(index)}]},
    }


def _node_range(node: int) -> str:
    """The first three octets of a node's /24: 10.244.0-255 for the first 256 nodes (podnet's
    cluster CIDR), then on into 10.245, 10.246, ... for dumps of more than 25,600 pods."""
    return f"10.{244 + node // 256}.{node % 256}"


def _host_ip(node: int) -> str:
    return f"172.18.{(node + 2) // 256}.{(node + 2) % 256}"


def _namespace_doc(name: str, labels: dict[str, str]) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}},
    }


# ---- policies ------------------------------------------------------------------------------


def _policy(ns: str, name: str, selector: Doc, types: list[str], **rules: Any) -> Doc:
    spec: Doc = {"podSelector": selector, "policyTypes": types, **rules}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def _app_sel(app: App) -> Doc:
    return {"matchLabels": {"app": app.name}}


def _ports(app: App, rng: random.Random, named: bool | None = None) -> list[Doc]:
    """One or two of the app's ports, by name or by number."""
    chosen = rng.sample(app.profile.ports, k=min(len(app.profile.ports), rng.choice((1, 1, 2))))
    named = rng.random() < 0.6 if named is None else named
    return [
        {"protocol": proto, "port": n if named else p}
        if proto != "TCP"
        else {"port": n if named else p}
        for n, p, proto in chosen
    ]


PolicyMaker = Callable[[random.Random, Namespace, App, list[Namespace]], Doc]


def same_app(rng: random.Random, ns: Namespace, app: App, _: list[Namespace]) -> Doc:
    """Replicas of one app talk to each other (a cluster, a gossip ring)."""
    return _policy(
        ns.name,
        f"allow-{app.name}-peers",
        _app_sel(app),
        ["Ingress"],
        ingress=[{"from": [{"podSelector": _app_sel(app)}], "ports": _ports(app, rng)}],
    )


UPSTREAM_TIERS = {
    "web": ["web"],
    "api": ["web", "api"],
    "backend": ["api", "backend"],
    "data": ["api", "backend"],
    "infra": ["web", "api", "backend", "data"],
}


def from_tiers(rng: random.Random, ns: Namespace, app: App, _: list[Namespace]) -> Doc:
    """An app accepts its upstream tiers in the namespace (matchExpressions In / NotIn)."""
    peer: Doc = {
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": UPSTREAM_TIERS[app.profile.tier]}
        ]
    }
    if rng.random() < 0.3:
        peer["matchExpressions"].append(
            {"key": "version", "operator": "NotIn", "values": ["canary"]}
        )
    return _policy(
        ns.name,
        f"allow-{app.name}-from-tiers",
        _app_sel(app),
        ["Ingress"],
        ingress=[{"from": [{"podSelector": peer}], "ports": _ports(app, rng, named=False)}],
    )


def from_namespaces(rng: random.Random, ns: Namespace, app: App, _: list[Namespace]) -> Doc:
    """An app accepts callers of other teams or environments (namespaceSelector)."""
    kind = rng.randrange(4)
    if kind == 0:
        sel: Doc = {"matchLabels": {"team": rng.choice(TEAMS)}}
    elif kind == 1:
        sel = {"matchLabels": {"team": ns.team, "env": ns.env}}
    elif kind == 2:
        sel = {
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]}]
        }
    else:
        sel = {"matchExpressions": [{"key": "team", "operator": "Exists"}]}
    peers = [{"namespaceSelector": sel}]
    if rng.random() < 0.3:
        peers.append({"namespaceSelector": {"matchLabels": {"team": rng.choice(TEAMS)}}})
    return _policy(
        ns.name,
        f"allow-{app.name}-from-namespaces",
        _app_sel(app),
        ["Ingress"],
        ingress=[{"from": peers, "ports": _ports(app, rng)}],
    )


def from_ns_and_pods(rng: random.Random, ns: Namespace, app: App, _: list[Namespace]) -> Doc:
    """Only a given tier of given namespaces: namespaceSelector and podSelector in one peer."""
    ns_sel: Doc = (
        {"matchLabels": {"env": ns.env}}
        if rng.random() < 0.5
        else {"matchLabels": {"team": rng.choice(TEAMS)}}
    )
    pod_sel: Doc = {"matchLabels": {"tier": rng.choice(UPSTREAM_TIERS[app.profile.tier])}}
    return _policy(
        ns.name,
        f"allow-{app.name}-from-callers",
        _app_sel(app),
        ["Ingress"],
        ingress=[
            {
                "from": [{"namespaceSelector": ns_sel, "podSelector": pod_sel}],
                "ports": _ports(app, rng),
            }
        ],
    )


def metrics_scrape(rng: random.Random, ns: Namespace, app: App, _: list[Namespace]) -> Doc:
    """Prometheus in namespace monitoring scrapes every pod's metrics port."""
    port: Doc = {"port": "metrics"} if rng.random() < 0.5 else {"port": 9090, "endPort": 9200}
    return _policy(
        ns.name,
        f"allow-{app.name}-scrape",
        _app_sel(app) if rng.random() < 0.5 else {},
        ["Ingress"],
        ingress=[
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                        },
                        "podSelector": {"matchLabels": {"app": "prometheus"}},
                    }
                ],
                "ports": [port],
            }
        ],
    )


def from_outside(rng: random.Random, ns: Namespace, app: App, _: list[Namespace]) -> Doc:
    """Public entry: the internet but not private ranges, or the pod network but some nodes."""
    if rng.random() < 0.5:
        block = {"cidr": "0.0.0.0/0", "except": list(OUTSIDE_EXCEPT[: rng.randint(1, 3)])}
    else:
        nodes = sorted(rng.sample(range(8), k=rng.randint(1, 3)))
        block = {
            "cidr": f"{CLUSTER_PREFIX}.0.0/16",
            "except": [f"{CLUSTER_PREFIX}.{n}.0/24" for n in nodes],
        }
    peers: list[Doc] = [{"ipBlock": block}]
    if rng.random() < 0.3:
        peers.append({"ipBlock": {"cidr": "198.51.100.0/24"}})
    return _policy(
        ns.name,
        f"allow-{app.name}-from-outside",
        _app_sel(app),
        ["Ingress"],
        ingress=[{"from": peers, "ports": _ports(app, rng, named=rng.random() < 0.3)}],
    )


def allow_all(rng: random.Random, ns: Namespace, app: App, _: list[Namespace]) -> Doc:
    """An open service: any source (an empty rule) or any namespace (an empty selector)."""
    rule: Doc = {} if rng.random() < 0.5 else {"from": [{"namespaceSelector": {}}]}
    if rng.random() < 0.5:
        rule["ports"] = _ports(app, rng)
    return _policy(ns.name, f"allow-{app.name}-all", _app_sel(app), ["Ingress"], ingress=[rule])


def egress_to_data(rng: random.Random, ns: Namespace, app: App, _: list[Namespace]) -> Doc:
    """An app may call the data tier of its namespace and its team's namespaces."""
    to: list[Doc] = [{"podSelector": {"matchLabels": {"tier": "data"}}}]
    if rng.random() < 0.5:
        to.append(
            {
                "namespaceSelector": {"matchLabels": {"team": ns.team}},
                "podSelector": {
                    "matchExpressions": [
                        {"key": "tier", "operator": "In", "values": ["api", "data"]}
                    ]
                },
            }
        )
    ports = rng.choice(
        (
            [{"port": "postgres"}, {"port": "redis"}, {"port": "kafka"}],
            [{"port": 5432}, {"port": 6379}],
            [{"port": 9092, "endPort": 9094}],
            [{"port": "grpc"}, {"port": 8080}],
        )
    )
    return _policy(
        ns.name,
        f"allow-{app.name}-egress",
        _app_sel(app),
        ["Egress"],
        egress=[{"to": to, "ports": ports}],
    )


def egress_internet(rng: random.Random, ns: Namespace, app: App, _: list[Namespace]) -> Doc:
    """An app may call out to the internet on 443 (and a NodePort range), nothing private."""
    rule: Doc = {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(OUTSIDE_EXCEPT)}}],
        "ports": [{"port": 443}],
    }
    if rng.random() < 0.3:
        rule["ports"].append({"port": 30000, "endPort": 32767})
    return _policy(ns.name, f"allow-{app.name}-internet", _app_sel(app), ["Egress"], egress=[rule])


def egress_pods(rng: random.Random, ns: Namespace, app: App, _: list[Namespace]) -> Doc:
    """An app may call anything in the pod network on its service ports (an ipBlock over pods)."""
    rule = {
        "to": [
            {
                "ipBlock": {
                    "cidr": f"{CLUSTER_PREFIX}.0.0/16",
                    "except": [f"{CLUSTER_PREFIX}.{rng.randrange(8)}.0/24"],
                }
            }
        ],
        "ports": [{"port": 8080}, {"port": 50051}, {"port": 8000, "endPort": 8999}],
    }
    return _policy(
        ns.name, f"allow-{app.name}-pod-network", _app_sel(app), ["Egress"], egress=[rule]
    )


INGRESS_KINDS: tuple[tuple[PolicyMaker, int], ...] = (
    (same_app, 3),
    (from_tiers, 4),
    (from_namespaces, 3),
    (from_ns_and_pods, 3),
    (metrics_scrape, 2),
    (from_outside, 2),
    (allow_all, 1),
)
EGRESS_KINDS: tuple[tuple[PolicyMaker, int], ...] = (
    (egress_to_data, 4),
    (egress_internet, 2),
    (egress_pods, 1),
)


def _baseline(ns: Namespace) -> list[Doc]:
    """Default deny (ingress; egress too where the namespace isolates egress) and the DNS
    allowance that egress isolation needs."""
    if not ns.deny_egress:
        return [_policy(ns.name, "default-deny-ingress", {}, ["Ingress"])]
    dns = {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": (
            [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
            if len(ns.name) % 2
            else [{"protocol": "UDP", "port": "dns"}, {"protocol": "TCP", "port": "dns-tcp"}]
        ),
    }
    return [
        _policy(ns.name, "default-deny-all", {}, ["Ingress", "Egress"]),
        _policy(ns.name, "allow-dns", {}, ["Egress"], egress=[dns]),
    ]


def _policies(rng: random.Random, namespaces: list[Namespace], count: int) -> list[Doc]:
    out: list[Doc] = []
    for ns in namespaces:
        if rng.random() < 0.1:
            continue  # a namespace nobody isolated
        ns.deny_egress = rng.random() < 0.3
        base = _baseline(ns)
        if len(out) + len(base) > count:
            ns.deny_egress = False
            base = _baseline(ns)[: count - len(out)]
        out += base
    names = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in out}
    for doc in _per_app(rng, namespaces):
        if len(out) >= count:
            break
        key = (doc["metadata"]["namespace"], doc["metadata"]["name"])
        k = 1
        while key in names:
            k += 1
            key = (key[0], f"{doc['metadata']['name']}-{k}")
        doc["metadata"]["name"] = key[1]
        names.add(key)
        out.append(doc)
    return out


def _per_app(rng: random.Random, namespaces: list[Namespace]) -> Iterator[Doc]:
    """Endless: round after round over every app (in a shuffled order), one policy each."""
    apps = [(ns, a) for ns in namespaces for a in ns.apps]
    if not apps:
        return
    ingress, iw = zip(*INGRESS_KINDS, strict=True)
    egress, ew = zip(*EGRESS_KINDS, strict=True)
    while True:
        order = apps[:]
        rng.shuffle(order)
        for ns, app in order:
            egress_first = ns.deny_egress and rng.random() < 0.5
            maker = rng.choices(egress, ew)[0] if egress_first else rng.choices(ingress, iw)[0]
            yield maker(rng, ns, app, namespaces)


# ---- the cluster ---------------------------------------------------------------------------


@dataclass
class Generated:
    namespaces: list[Doc]
    nodes: list[Doc]
    pods: list[Doc]
    policies: list[Doc]

    @property
    def meta(self) -> Doc:
        port_slots = sum(
            len(
                {
                    (p["containerPort"], p["protocol"])
                    for c in d["spec"]["containers"]
                    for p in c["ports"]
                }
            )
            for d in self.pods
        )
        return {
            "pods": len(self.pods),
            "policies": len(self.policies),
            "namespaces": len(self.namespaces),
            "port_slots": port_slots,
            "nodes": len(self.nodes),
            # The full matrix over declared ports: every other source pod against each
            # destination pod's distinct (port, protocol) pairs (a pod to itself not counted).
            "pairs": (len(self.pods) - 1) * port_slots,
        }


def generate(
    pods: int, policies: int, namespaces: int | None = None, seed: int = 1, owners: bool = False
) -> Generated:
    """A cluster of exactly `pods` pods, `policies` policies and `namespaces` namespaces
    (kube-system and monitoring included). With `owners`, pods name their ReplicaSet in
    ownerReferences as a real dump does (the ReplicaSets themselves are not written); NCA then
    analyses at most two representatives per ReplicaSet and label set. Otherwise the files
    are the same."""
    namespaces = default_namespaces(pods) if namespaces is None else namespaces
    if namespaces < len(SYSTEM_NAMESPACES) + 1:
        raise ValueError(f"need at least {len(SYSTEM_NAMESPACES) + 1} namespaces")
    if pods < 4 + 3:
        raise ValueError("need at least 7 pods (4 system pods and one app)")
    rng = random.Random(seed)
    app_ns = _namespaces(rng, namespaces)
    system = [
        App("coredns", COREDNS, "kube-system", 2, False),
        App("prometheus", PROMETHEUS, "monitoring", 2, False),
    ]
    _apps(rng, app_ns, pods - sum(a.replicas for a in system))
    pod_docs = _pod_docs(rng, system + [a for ns in app_ns for a in ns.apps], owners)
    for d in pod_docs[:2]:  # the cluster DNS pods carry the label DNS policies select
        d["metadata"]["labels"]["k8s-app"] = "kube-dns"
    ns_docs = [
        _namespace_doc("kube-system", {}),
        _namespace_doc("monitoring", {"team": "platform", "env": "prod"}),
        *(_namespace_doc(ns.name, {"team": ns.team, "env": ns.env}) for ns in app_ns),
    ]
    nodes = sorted({d["spec"]["nodeName"] for d in pod_docs})
    return Generated(
        ns_docs, [_node_doc(n) for n in nodes], pod_docs, _policies(rng, app_ns, policies)
    )


def write(gen: Generated, out: Path, fmt: str = "yaml") -> None:
    """The NCA-compatible layout (see the module docstring). With fmt "json", the same objects
    as `kubectl get -o json` prints them (one List per file, policies too)."""
    for sub in ("ns", "nodes", "pods", "policies"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    lists = {
        "ns/namespaces": gen.namespaces,
        "nodes/nodes": gen.nodes,
        "pods/pods": gen.pods,
        "policies/policies": gen.policies,
    }
    for name, items in lists.items():
        as_list = {"apiVersion": "v1", "kind": "List", "items": items}
        if fmt == "json":
            (out / f"{name}.json").write_text(json.dumps(as_list, indent=1) + "\n")
        elif name.startswith("policies"):
            _dump(out / f"{name}.yaml", items)  # a folder of policies: multi-document YAML
        else:
            _dump(out / f"{name}.yaml", [as_list])
    (out / "meta.txt").write_text(json.dumps(gen.meta, indent=2) + "\n")


# GitOps shape: what a repository of manifests holds. Each app becomes one workload of a
# kind drawn with these weights, or bare Pods; none carries nodeName or podIP, so the
# analyzer places them. One DaemonSet (a host-network node exporter) adds a pod per node.
WORKLOAD_WEIGHTS = (("Deployment", 70), ("StatefulSet", 12), ("Job", 8), ("Pod", 10))
NODE_EXPORTER_PORT = 9100
MAX_PODS_PER_NODE = 110  # what podnet synthesises without Node objects: one node per 110 pods


def gitops_nodes(pods: int) -> int:
    """The nodes podnet synthesises for `pods` pods (podnet.model.cluster.auto_node_count)."""
    return max(3, -(-pods // MAX_PODS_PER_NODE))


def _template(doc: Doc) -> Doc:
    labels = {k: v for k, v in doc["metadata"]["labels"].items() if k != "pod-template-hash"}
    return {"metadata": {"labels": labels}, "spec": {"containers": doc["spec"]["containers"]}}


def _workload(kind: str, first: Doc, name: str, replicas: int) -> Doc:
    tpl = _template(first)
    ns = first["metadata"]["namespace"]
    if kind == "Job":
        spec: Doc = {"parallelism": replicas, "completions": replicas, "template": tpl}
        tpl["spec"]["restartPolicy"] = "Never"
        return {
            "apiVersion": "batch/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }
    spec = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": tpl["metadata"]["labels"]["app"]}},
        "template": tpl,
    }
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def _bare(doc: Doc) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {k: v for k, v in doc["metadata"].items() if k != "ownerReferences"},
        "spec": {"containers": doc["spec"]["containers"]},
    }


def _node_exporter() -> Doc:
    labels = {"app": "node-exporter", "tier": "infra"}
    port = {"name": "metrics", "containerPort": NODE_EXPORTER_PORT, "protocol": "TCP"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "node-exporter", "namespace": "monitoring"},
        "spec": {
            "selector": {"matchLabels": {"app": "node-exporter"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": True,
                    "containers": [
                        {
                            "name": "node-exporter",
                            "image": "registry.example/node-exporter:1.0",
                            "ports": [port],
                        }
                    ],
                },
            },
        },
    }


def write_gitops(gen: Generated, out: Path, seed: int = 1) -> dict[str, int]:
    """The same apps as GitOps manifests: one file of workloads per namespace, no Nodes, no
    placement. Returns the counts (meta.txt), the DaemonSet's pods included."""
    rng = random.Random(f"gitops/{seed}")
    kinds, weights = zip(*WORKLOAD_WEIGHTS, strict=True)
    by_ns: dict[str, list[Doc]] = {}
    runs: list[list[Doc]] = []  # the pods of one app: consecutive, sharing pod-template-hash
    for d in gen.pods:
        h = d["metadata"]["labels"]["pod-template-hash"]
        if runs and runs[-1][0]["metadata"]["labels"]["pod-template-hash"] == h:
            runs[-1].append(d)
        else:
            runs.append([d])
    counts: Counter[str] = Counter()
    for app in runs:
        first = app[0]
        ns, name = first["metadata"]["namespace"], first["metadata"]["labels"]["app"]
        kind = "Deployment" if ns == "kube-system" else rng.choices(kinds, weights)[0]
        docs = by_ns.setdefault(ns, [])
        if kind == "Pod":
            docs += [_bare(d) for d in app]
            counts["Pod"] += len(app)
        else:
            docs.append(_workload(kind, first, name, len(app)))
            counts[kind] += 1
    by_ns.setdefault("monitoring", []).append(_node_exporter())
    counts["DaemonSet"] += 1
    (out / "ns").mkdir(parents=True, exist_ok=True)
    (out / "policies").mkdir(parents=True, exist_ok=True)
    (out / "apps").mkdir(parents=True, exist_ok=True)
    _dump(out / "ns/namespaces.yaml", gen.namespaces)
    _dump(out / "policies/policies.yaml", gen.policies)
    for ns, docs in sorted(by_ns.items()):
        _dump(out / f"apps/{ns}.yaml", docs)
    nodes = gitops_nodes(len(gen.pods))
    meta = {**gen.meta, "nodes": nodes, "pods": len(gen.pods) + nodes}
    meta["port_slots"] += nodes
    meta["pairs"] = (meta["pods"] - 1) * meta["port_slots"]
    meta.update({("bare_pods" if k == "Pod" else f"{k.lower()}s"): v for k, v in counts.items()})
    (out / "meta.txt").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def outside_case(
    pods: int = 30, blocks: int = 600, peers: int = 1000, seed: int = 1
) -> tuple[list[Doc], list[str]]:
    """Outside peers at scale: `pods` pods under one policy whose ingress and egress rules
    each hold `blocks` ipBlocks (a /16 with an except), and `peers` outside CIDRs to ask
    about (/24, /28 and /32, some inside a block, some across an except, most outside)."""
    rng = random.Random(f"outside/{seed}")
    nets = []
    for _ in range(blocks):
        a, b = rng.randrange(11, 223), rng.randrange(256)
        nets.append(
            {
                "ipBlock": {
                    "cidr": f"{a}.{b}.0.0/16",
                    "except": [f"{a}.{b}.{rng.randrange(256)}.0/24"],
                }
            }
        )
    ns = "edge"
    docs: list[Doc] = [_namespace_doc(ns, {"team": "edge"})]
    for i in range(pods):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"gw-{i:03d}", "namespace": ns, "labels": {"app": "gw"}},
                "spec": {"containers": [_container("gw", (HTTP,))]},
            }
        )
    docs.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "partners", "namespace": ns},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": nets}],
                "egress": [{"to": nets}],
            },
        }
    )
    cidrs = []
    for _ in range(peers):
        block = rng.choice(nets)["ipBlock"]["cidr"].split(".")
        a, b = (
            (block[0], block[1])
            if rng.random() < 0.3
            else (rng.randrange(11, 223), rng.randrange(256))
        )
        cidrs.append(
            f"{a}.{b}.{rng.randrange(256)}.{rng.choice((0, 16, 77))}/{rng.choice((24, 28, 32))}"
        )
    return docs, [str(ipaddress.ip_network(c, strict=False)) for c in cidrs]


def _dump(path: Path, docs: list[Doc]) -> None:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump_all(docs, Dumper=dumper, sort_keys=False, default_flow_style=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--policies", type=int, default=100)
    parser.add_argument("--namespaces", type=int, default=None, help="default: pods / 50")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--owners", action="store_true", help="pods with ownerReferences")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml")
    parser.add_argument(
        "--shape",
        choices=("dump", "gitops"),
        default="dump",
        help="dump: placed pods as `kubectl get -A -o yaml`; gitops: workloads, nothing placed",
    )
    args = parser.parse_args(argv)
    gen = generate(args.pods, args.policies, args.namespaces, args.seed, args.owners)
    if args.shape == "gitops":
        print(json.dumps(write_gitops(gen, args.out, args.seed)))
        return 0
    write(gen, args.out, args.format)
    print(json.dumps(gen.meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
