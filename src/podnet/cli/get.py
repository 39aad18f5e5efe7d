"""`podnet get KIND [NAME...] [-n NS|-A] [-o wide|json|yaml]`: a live cluster's objects as
kubectl shows them, read from the cluster's store (status filled in from IPAM, the node
table, the kernel's namespace list and the daemon's ready.json)."""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from podnet.cli.live import add_cluster_arg, keep_daemon
from podnet.cli.output import print_error
from podnet.cli.resources import ALIASES, CLUSTER_SCOPED, KINDS
from podnet.datapath import netns
from podnet.render import kernel_names
from podnet.state.store import Store, Stored, state_dir

NONE = "<none>"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "get",
        help="list a live cluster's pods, nodes, ...",
        description="Show objects of a running cluster with kubectl's columns; "
        "-o json|yaml prints them as Kubernetes objects with status filled in.",
    )
    p.add_argument("kind", metavar="KIND", help="pods, nodes, namespaces, services, ...")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these objects")
    p.add_argument("-n", "--namespace", default="default", help="namespace (default: default)")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.add_argument("-o", "--output", choices=("wide", "json", "yaml"), help="output format")
    add_cluster_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    kind = ALIASES.get(args.kind.lower())
    if kind is None:
        print_error(f"unknown kind {args.kind!r}; one of {', '.join(KINDS)}")
        return 2
    sdir = state_dir(args.cluster)
    if not Store.exists(sdir):
        print_error(f"no cluster {args.cluster} ({sdir} not found); `podnet up` creates it")
        return 2
    keep_daemon(args.cluster)
    with Store.open(sdir) as store:
        view = View(store, sdir, args.cluster)
        ns = None if args.all_namespaces or kind in CLUSTER_SCOPED else args.namespace
        objs = [o for o in store.list(KINDS[kind], ns) if not args.names or o.name in args.names]
        missing = [n for n in args.names if n not in {o.name for o in objs}]
        items = [view.full(kind, o) for o in objs]
    for name in missing:
        print_error(f'{KINDS[kind].lower()}s "{name}" not found')
    if args.output in ("json", "yaml"):
        doc: Any = items[0] if len(args.names) == 1 and len(items) == 1 else _list(items)
        if args.output == "json":
            print(json.dumps(doc, indent=4))
        else:
            import yaml

            print(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False), end="")
    elif items:
        wide = args.output == "wide"
        header, rows = TABLES.get(kind, _generic)(view, items, wide)
        if args.all_namespaces and kind not in CLUSTER_SCOPED:
            header = ["NAMESPACE", *header]
            rows = [
                [i["metadata"].get("namespace", ""), *r] for i, r in zip(items, rows, strict=True)
            ]
        _print_table(header, rows)
    elif not missing:
        where = "" if args.all_namespaces or kind in CLUSTER_SCOPED else f" in {ns} namespace"
        print(f"No resources found{where}.", file=sys.stderr)
    return 1 if missing else 0


def _list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


class View:
    """Stored objects, completed with what the cluster knows about them now."""

    def __init__(self, store: Store, sdir: Path, cluster: str) -> None:
        self.cluster = cluster
        self.sdir = sdir
        self.nodes = store.nodes()
        self.ips = store.held()
        self.created = float(store.get_meta("created", time.time()))
        self.serving = _serving(sdir)
        # READY is the kubelet's: the pod runs and its readiness probes pass (the daemon's).
        self.ready = _read_json(sdir / "readiness.json") or {} if self.serving else {}
        self.restarts = _read_json(sdir / "restarts.json") or {}
        self.netns = set(netns.listing(kernel_names.netns_prefix(cluster)))

    def policy_counts(self) -> dict[str, tuple[int, int]] | None:
        """Per policy (accepted, dropped) connections; None without root or a store."""
        if os.geteuid() != 0:
            return None
        from podnet.datapath.nft import read_counters
        from podnet.policy.engine import Engine
        from podnet.render.policy_counters import policy_counts
        from podnet.state.snapshot import read_cluster

        with Store.open(self.sdir) as store:
            stored = read_cluster(store)
        node_ns = {n: kernel_names.node_netns(self.cluster, n) for n in self.nodes}
        return policy_counts(Engine(stored.cluster, stored.placement()), read_counters(node_ns))

    def age(self) -> str:
        return _age(time.time() - self.created)

    def restarts_column(self) -> str:
        """kubectl's RESTARTS, `2 (35s ago)`: every pod's process is the one stand-in, so
        the watchdog's restarts are each pod's."""
        count = int(self.restarts.get("count", 0))
        if not count:
            return "0"
        return f"{count} ({_age(time.time() - float(self.restarts['last']))} ago)"

    def full(self, kind: str, o: Stored) -> dict[str, Any]:
        body = copy.deepcopy(o.body)
        meta = body.setdefault("metadata", {})
        meta["resourceVersion"] = str(o.rv)
        meta["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))
        if kind == "pods":
            self._pod(body, o)
        elif kind == "nodes":
            self._node(body, o)
        return body

    def _pod(self, body: dict[str, Any], o: Stored) -> None:
        spec = body.setdefault("spec", {})
        node, ip = self.ips.get((o.namespace, o.name), (spec.get("nodeName"), None))
        if spec.get("hostNetwork"):
            ip = self.nodes.get(node, (None,))[0] if node else None
        if node:
            spec["nodeName"] = node
        key = f"{o.namespace}/{o.name}"
        up = (
            kernel_names.node_netns(self.cluster, node)
            if spec.get("hostNetwork") and node
            else kernel_names.pod_netns(self.cluster, o.namespace, o.name)
        ) in self.netns
        ready = bool(self.ready.get(key))
        containers = [c.get("name", "") for c in spec.get("containers", ())]
        # What really serves, as the kubelet reports its containers: the stand-in is every
        # pod's process, so a pod runs while its namespace exists and the daemon serves it.
        running = up and self.serving
        status: dict[str, Any] = {"phase": "Running" if up else "Pending"}
        if node in self.nodes:
            status["hostIP"] = self.nodes[node][0]
            status["hostIPs"] = [{"ip": self.nodes[node][0]}]
        if ip:
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        status["conditions"] = [
            {"type": t, "status": "True" if ok else "False"}
            for t, ok in (
                ("PodScheduled", True),
                ("Initialized", True),
                ("ContainersReady", ready),
                ("Ready", ready),
            )
        ]
        if running:
            state: dict[str, Any] = {"running": {}}
        elif up:
            state = {"terminated": {"reason": "Error", "message": "the stand-in is not serving"}}
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        restarts = int(self.restarts.get("count", 0))
        last: dict[str, Any] = {}
        if restarts:
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.restarts["last"]))
            last = {"terminated": {"reason": self.restarts.get("reason", ""), "finishedAt": at}}
        status["containerStatuses"] = [
            {
                "name": c,
                "ready": ready,
                "restartCount": restarts,
                "started": running,
                "state": state,
                **({"lastState": last} if last else {}),
            }
            for c in containers
        ]
        body["status"] = status

    def _node(self, body: dict[str, Any], o: Stored) -> None:
        ip, cidr = self.nodes.get(o.name, ("", ""))
        spec = body.setdefault("spec", {})
        spec["podCIDR"], spec["podCIDRs"] = cidr, [cidr]
        ready = kernel_names.node_netns(self.cluster, o.name) in self.netns
        body["status"] = {
            **body.get("status", {}),
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": o.name},
            ],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }


def _pod_table(
    view: View, items: list[dict[str, Any]], wide: bool
) -> tuple[list[str], list[list[str]]]:
    header = ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    if wide:
        header += ["NOMINATED NODE", "READINESS GATES"]
    rows = []
    for p in items:
        cs = p["status"]["containerStatuses"]
        row = [
            p["metadata"]["name"],
            f"{sum(c['ready'] for c in cs)}/{len(cs)}",
            _pod_status(p),
            view.restarts_column(),
            view.age(),
            p["status"].get("podIP", NONE),
            p["spec"].get("nodeName", NONE),
        ]
        rows.append([*row, NONE, NONE] if wide else row)
    return header, rows


def _pod_status(pod: dict[str, Any]) -> str:
    """kubectl's STATUS: the phase, or why a container does not run."""
    for c in pod["status"]["containerStatuses"]:
        for what in ("waiting", "terminated"):
            if what in c["state"]:
                return str(c["state"][what]["reason"])
    return str(pod["status"]["phase"])


def _serving(sdir: Path) -> bool:
    """The daemon runs and serves the current runtime.json (its status names its digest)."""
    from podnet.daemon import supervisor
    from podnet.state.files import file_digest

    status = _read_json(sdir / "daemon.json") or {}
    runtime = sdir / "runtime.json"
    if supervisor.running_pid(sdir) is None or not runtime.exists():
        return False
    return bool(status.get("runtime") == file_digest(runtime))


def _node_table(
    view: View, items: list[dict[str, Any]], wide: bool
) -> tuple[list[str], list[list[str]]]:
    header = ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "POD-CIDR"]
    rows = []
    for n in items:
        ready = n["status"]["conditions"][0]["status"] == "True"
        ip = n["status"]["addresses"][0]["address"]
        rows.append(
            [
                n["metadata"]["name"],
                "Ready" if ready else "NotReady",
                NONE,
                view.age(),
                "podnet",
                ip,
                n["spec"]["podCIDR"],
            ]
        )
    return header, rows


def _generic(
    view: View, items: list[dict[str, Any]], wide: bool
) -> tuple[list[str], list[list[str]]]:
    return ["NAME", "AGE"], [[i["metadata"]["name"], view.age()] for i in items]


def _netpol_table(
    view: View, items: list[dict[str, Any]], wide: bool
) -> tuple[list[str], list[list[str]]]:
    """kubectl's NAME, POD-SELECTOR, AGE plus the connections each policy accepted and
    dropped (nft counters, summed over nodes; `-` when they cannot be read)."""
    counts = view.policy_counts()
    header = ["NAME", "POD-SELECTOR", "ACCEPTED", "DROPPED", "AGE"]
    if wide:
        header += ["POLICY-TYPES"]
    rows = []
    for p in items:
        key = f"{p['metadata'].get('namespace', 'default')}/{p['metadata']['name']}"
        sel = p.get("spec", {}).get("podSelector", {}).get("matchLabels") or {}
        exprs = p.get("spec", {}).get("podSelector", {}).get("matchExpressions") or []
        shown = ",".join(f"{k}={v}" for k, v in sorted(sel.items()))
        shown += ("," if shown and exprs else "") + ",".join(
            f"{e['key']} {e['operator']}" for e in exprs
        )
        acc, drop = counts.get(key, ("-", "-")) if counts is not None else ("-", "-")
        row = [p["metadata"]["name"], shown or NONE, str(acc), str(drop), view.age()]
        if wide:
            row.append(",".join(p.get("spec", {}).get("policyTypes") or ["Ingress"]))
        rows.append(row)
    return header, rows


def _service_table(
    view: View, items: list[dict[str, Any]], wide: bool
) -> tuple[list[str], list[list[str]]]:
    """kubectl's NAME, TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S), AGE (wide: SELECTOR)."""
    header = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    if wide:
        header.append("SELECTOR")
    rows = []
    for svc in items:
        spec = svc.get("spec", {})
        kind = spec.get("type", "ClusterIP")
        ingress = [
            i.get("ip") or i.get("hostname", "")
            for i in svc.get("status", {}).get("loadBalancer", {}).get("ingress", [])
        ]
        external = [*spec.get("externalIPs", []), *ingress]
        if kind == "ExternalName":
            shown_external = spec.get("externalName", NONE)
        elif external:
            shown_external = ",".join(external)
        else:
            shown_external = "<pending>" if kind == "LoadBalancer" else NONE
        ports = ",".join(
            f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/"
            f"{p.get('protocol', 'TCP')}"
            for p in spec.get("ports", [])
        )
        row = [
            svc["metadata"]["name"],
            kind,
            spec.get("clusterIP", NONE),
            shown_external,
            ports or NONE,
            view.age(),
        ]
        if wide:
            sel = spec.get("selector") or {}
            row.append(",".join(f"{k}={v}" for k, v in sorted(sel.items())) or NONE)
        rows.append(row)
    return header, rows


def _more(values: list[str], shown: int = 3) -> str:
    """kubectl's way of listing many: the first three, then `+ N more...`."""
    if not values:
        return NONE
    text = ",".join(values[:shown])
    return text + (f" + {len(values) - shown} more..." if len(values) > shown else "")


def _endpointslice_table(
    view: View, items: list[dict[str, Any]], wide: bool
) -> tuple[list[str], list[list[str]]]:
    header = ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    rows = []
    for s in items:
        ports = [str(p["port"]) for p in s.get("ports", []) if p.get("port") is not None]
        addresses = [a for e in s.get("endpoints", []) for a in e.get("addresses", [])]
        rows.append(
            [
                s["metadata"]["name"],
                s.get("addressType", "IPv4"),
                ",".join(ports) or "<unset>",
                _more(addresses),
                view.age(),
            ]
        )
    return header, rows


def _endpoints_table(
    view: View, items: list[dict[str, Any]], wide: bool
) -> tuple[list[str], list[list[str]]]:
    rows = []
    for e in items:
        pairs = [
            f"{a['ip']}:{p['port']}"
            for subset in e.get("subsets", [])
            for a in subset.get("addresses", [])
            for p in subset.get("ports", [])
        ]
        rows.append([e["metadata"]["name"], _more(pairs), view.age()])
    return ["NAME", "ENDPOINTS", "AGE"], rows


def _ingress_table(
    view: View, items: list[dict[str, Any]], wide: bool
) -> tuple[list[str], list[list[str]]]:
    """kubectl's NAME, CLASS, HOSTS, ADDRESS, PORTS, AGE: PORTS is 80, or 80, 443 when the
    Ingress has a TLS section; ADDRESS from status.loadBalancer.ingress (the controller's)."""
    rows = []
    for ing in items:
        spec = ing.get("spec", {})
        cls = spec.get("ingressClassName") or ing["metadata"].get("annotations", {}).get(
            "kubernetes.io/ingress.class", NONE
        )
        hosts = [r.get("host") or "*" for r in spec.get("rules", [])] or ["*"]
        lb = ing.get("status", {}).get("loadBalancer", {}).get("ingress", [])
        address = ",".join(i.get("ip") or i.get("hostname", "") for i in lb)
        ports = "80, 443" if spec.get("tls") else "80"
        rows.append([ing["metadata"]["name"], cls, _more(hosts, 4), address, ports, view.age()])
    return ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], rows


def _ingressclass_table(
    view: View, items: list[dict[str, Any]], wide: bool
) -> tuple[list[str], list[list[str]]]:
    rows = [
        [c["metadata"]["name"], c.get("spec", {}).get("controller", NONE), NONE, view.age()]
        for c in items
    ]
    return ["NAME", "CONTROLLER", "PARAMETERS", "AGE"], rows


TABLES = {
    "ingresses": _ingress_table,
    "ingressclasses": _ingressclass_table,
    "pods": _pod_table,
    "nodes": _node_table,
    "networkpolicies": _netpol_table,
    "services": _service_table,
    "endpointslices": _endpointslice_table,
    "endpoints": _endpoints_table,
}


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _age(seconds: float) -> str:
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60}m" if s < 36000 else f"{s // 3600}h"
    return f"{s // 86400}d"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
