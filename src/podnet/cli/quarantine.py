"""`podnet quarantine NS/POD [--undo] [--keep-ingress-from SEL]`: isolate a compromised pod
of a running cluster at once, and prove it.

1. one store transaction (state.quarantine): the pod labelled podnet.io/quarantine, its
   quarantine NetworkPolicy `quarantine-<pod>` created (a deny that wins over every allow:
   docs/policy-semantics.md, "Quarantine");
2. the daemon's sync, waited for as `label` and `apply` do: the policy in every node's
   table, the pod out of its Services' ready endpoints (and so out of kube-proxy's rules
   and the DNS zone);
3. then, not before (a packet in between would be picked up again under the old rules),
   every conntrack entry that holds the pod's address deleted in every node namespace: an
   open connection's next packet is judged as new, and rejected (TCP with a reset);
4. the proof: a real probe of the pod in both directions (`probe`'s packets, every pod on
   its declared ports, DNS included), every attempt blocked but the kept forensic path.

`--undo` takes the label and the policy away in one transaction and waits for the sync:
policies, labels and endpoints are as they were; the probe then shows the pod reachable as
the engine says. Exit 0 when the proof holds, 1 when it does not (or the sync failed), 2
on bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import time
from typing import TYPE_CHECKING, Any

from podnet.cli.live import add_cluster_arg, open_store, preflight, wait_synced
from podnet.model.errors import InputError
from podnet.state.store import state_dir

if TYPE_CHECKING:  # imported where used: `--help` pays for none of numpy and pydantic
    from podnet.policy.expectations import Report, Result
    from podnet.render.runtime import Runtime

NS_NAME_LABEL = "kubernetes.io/metadata.name"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "quarantine",
        help="isolate a compromised pod at once (policy, connections, endpoints) and prove it",
        description="Deny all ingress and egress of the pod through a NetworkPolicy that "
        "wins over every allow (quarantine-<pod>, labelled podnet.io/quarantine), take the "
        "pod out of its Services' ready endpoints, cut its open connections (conntrack "
        "entries deleted on every node; TCP reset), then probe the pod both ways and print "
        "the proof. Exit 1 when the proof fails. Needs root.",
    )
    p.add_argument("pod", metavar="NS/POD")
    p.add_argument("--undo", action="store_true", help="lift the quarantine: as it was before")
    p.add_argument(
        "--keep-ingress-from",
        metavar="SEL",
        help="one forensic path kept open into the pod: ns/pod (that pod's address), "
        "ns/* (a namespace), or an IP/CIDR; several separated by commas",
    )
    add_cluster_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (status := preflight("quarantine", args.cluster)) is not None:
        return status
    ns, _, pod = args.pod.partition("/")
    if not ns or not pod or "/" in pod:
        raise InputError.line(f"NS/POD: {args.pod!r}: expected namespace/pod")
    if args.undo and args.keep_ingress_from:
        raise InputError.line("--keep-ingress-from: not with --undo (the undo keeps nothing)")
    from podnet.render import runtime as rt

    try:
        runtime = rt.load(state_dir(args.cluster))
    except rt.RuntimeFileError as e:
        raise InputError.line(f"cluster {args.cluster} is not running: {e}") from None
    if args.undo:
        return _undo(args.cluster, runtime, ns, pod)
    return _quarantine(args.cluster, runtime, ns, pod, args.keep_ingress_from or "")


def _quarantine(cluster: str, runtime: Runtime, ns: str, pod: str, keep: str) -> int:
    from podnet.cli.live import check_next_state
    from podnet.model.quarantine_label import QUARANTINE_LABEL, label_value, policy_name
    from podnet.state.quarantine_change import quarantine

    peers = keep_peers(keep, runtime) if keep else ()
    started = time.monotonic()
    with open_store(cluster) as store:
        revision = quarantine(store, ns, pod, peers, check_next_state)
    print(f"pod/{pod} labeled {QUARANTINE_LABEL}={label_value(pod)}")
    print(f"networkpolicy.networking.k8s.io/{policy_name(pod)} created")
    if (status := wait_synced(cluster, revision)) != 0:
        return status
    print(
        f"in force: revision {revision} synced to every node "
        f"({time.monotonic() - started:.2f}s after the command started)"
    )
    # At once: until the entries are gone, packets of open connections still pass.
    here = runtime.pod(f"{ns}/{pod}")
    if here is not None:
        _cut(runtime, here.ip, started)
    _print_services(cluster, ns, pod)
    return _prove(cluster, ns, pod, keep)


def _undo(cluster: str, runtime: Runtime, ns: str, pod: str) -> int:
    from podnet.model.quarantine_label import QUARANTINE_LABEL, policy_name
    from podnet.state.quarantine_change import release

    started = time.monotonic()
    with open_store(cluster) as store:
        revision = release(store, ns, pod)
    print(f"pod/{pod} unlabeled {QUARANTINE_LABEL}")
    print(f'networkpolicy.networking.k8s.io "{policy_name(pod)}" deleted')
    if (status := wait_synced(cluster, revision)) != 0:
        return status
    print(
        f"in force: revision {revision} synced to every node "
        f"({time.monotonic() - started:.2f}s after the command started)"
    )
    _print_services(cluster, ns, pod)
    report = _probe(cluster, f"{ns}/{pod}")
    results = [r for r in report.results if r.probe.source != r.probe.destination]
    passed = sum(r.allowed for r in results)
    agree = all(r.ok for r in results)
    print(
        f"probe: {len(results)} probes to and from {ns}/{pod}: {passed} passed, "
        f"{len(results) - passed} blocked; "
        + ("every one as the policies say" if agree else "SOME DISAGREE with the policies")
    )
    _print_disagreements(results)
    return 0 if agree else 1


def keep_peers(text: str, runtime: Runtime) -> tuple[dict[str, Any], ...]:
    """The NetworkPolicy peers of --keep-ingress-from: a pod by its address (an ipBlock
    /32, so that no other pod sharing its labels gets in), a namespace by its name label,
    an address or CIDR as an ipBlock."""
    out: list[dict[str, Any]] = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        if item[0].isdigit():
            try:
                net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise InputError.line(
                    f"--keep-ingress-from: {item!r} is not an IP address or CIDR"
                ) from None
            if net.version != 4:
                raise InputError.line(f"--keep-ingress-from: {item}: only IPv4 is modelled")
            out.append({"ipBlock": {"cidr": str(net)}})
            continue
        ns, slash, name = item.partition("/")
        if not slash or not ns or not name:
            raise InputError.line(
                f"--keep-ingress-from: {item!r}: expected ns/pod, ns/* or an IP/CIDR"
            )
        if name == "*":
            out.append({"namespaceSelector": {"matchLabels": {NS_NAME_LABEL: ns}}})
            continue
        found = runtime.pod(item)
        if found is None:
            raise InputError.line(f"--keep-ingress-from: pod {item!r} not found (not running)")
        if found.host_network:
            raise InputError.line(
                f"--keep-ingress-from: pod {item} uses its node's network: node traffic is "
                "always allowed, nothing to keep"
            )
        out.append({"ipBlock": {"cidr": f"{found.ip}/32"}})
    return tuple(out)


def _cut(runtime: Runtime, ip: str, started: float) -> None:
    """Every conntrack entry holding `ip`, deleted in every node namespace."""
    from concurrent.futures import ThreadPoolExecutor

    from podnet.datapath import conntrack

    with ThreadPoolExecutor(max_workers=8) as pool:  # the nodes at once: each spawns
        found = pool.map(lambda n: conntrack.delete_address(n.netns, ip), runtime.nodes)
        counts = dict(zip((n.name for n in runtime.nodes), found, strict=True))
    where = ", ".join(f"{n}: {c}" for n, c in counts.items() if c)
    print(
        f"connections cut: {sum(counts.values())} conntrack entries deleted"
        + (f" ({where})" if where else "")
        + f", {time.monotonic() - started:.2f}s after the command started"
    )


def _probe(cluster: str, key: str) -> Report:
    """`probe --from POD` and `probe --to POD` as one run: one engine, one round of
    packets (the pod to itself is probed once)."""
    from podnet.cli.probe import ask, live_engine, targets_of
    from podnet.policy.expectations import ProbePlan, judge
    from podnet.probing.send import probe
    from podnet.render import runtime as rt

    sdir = state_dir(cluster)
    runtime = rt.load(sdir)
    engine = live_engine(sdir, runtime)
    out = ask(engine, sdir, runtime, key, "*", None, "pod")
    into = ask(engine, sdir, runtime, "*", key, None, "pod")
    probes = [*out.probes, *(p for p in into.probes if p.source != key)]
    ports = sorted({*out.ports, *into.ports})
    plan = ProbePlan(sorted({*out.pods, *into.pods}), ports, probes, [*out.skipped, *into.skipped])
    started = time.monotonic()
    seen = probe(targets_of(plan, runtime))
    return judge(plan, seen, time.monotonic() - started)


def _prove(cluster: str, ns: str, pod: str, keep: str) -> int:
    """Probe the pod both ways; the proof holds when every attempt but the kept path was
    blocked by a policy and the packets agree with the engine."""
    from podnet.state.addons import DNS_IDENTITY

    key = f"{ns}/{pod}"
    report = _probe(cluster, key)
    results = [r for r in report.results if r.probe.source != r.probe.destination]
    outgoing = [r for r in results if r.probe.source == key]
    incoming = [r for r in results if r.probe.destination == key]
    kept = [r for r in incoming if r.probe.expected]
    leaks = [r for r in results if r.allowed and r not in kept]
    print(f"proof ({report.seconds:.2f}s of probes):")
    for label, group in (("from", outgoing), ("to", incoming)):
        blocked = sum(r.seen.outcome == "rejected" for r in group)
        peers = {r.probe.destination if label == "from" else r.probe.source for r in group}
        ports = sorted({f"{r.probe.port}/{r.probe.protocol}" for r in group})
        print(
            f"  {label} {key}: {len(group)} attempts ({len(peers)} pods; "
            f"{', '.join(ports) or 'no port'}): {blocked} blocked"
        )
    dns = [r for r in outgoing if r.probe.identity == DNS_IDENTITY]
    if dns:
        blocked = sum(r.seen.outcome == "rejected" for r in dns)
        print(f"  DNS from {key}: {len(dns)} attempts: {blocked} blocked")
    for r in kept:
        print(
            f"  kept: {r.probe.source} -> {key} {r.probe.port}/{r.probe.protocol}: "
            f"{'passed' if r.allowed else r.seen.outcome}"
        )
    _print_disagreements(results)
    holds = not leaks and all(r.ok for r in results)
    if holds:
        print(
            f"{key} is quarantined: every attempt blocked" + (" but the kept path" if keep else "")
        )
        return 0
    print(f"{key}: THE PROOF FAILS ({len(leaks)} passed that must not)", file=sys.stderr)
    return 1


def _print_disagreements(results: list[Result]) -> None:
    for r in results:
        if not r.ok:
            p = r.probe
            if r.wrong_identity:
                said = f"answered {r.seen.reply!r}, not {p.identity!r}"
            else:
                said = f"{r.seen.outcome}, must {'pass' if p.expected else 'be blocked'}"
            print(
                f"  ! {p.source} -> {p.destination} {p.port}/{p.protocol}: {said}", file=sys.stderr
            )


def _print_services(cluster: str, ns: str, pod: str) -> None:
    """Each Service the pod is an endpoint of, with its ready endpoints as now stored."""
    from podnet.state.snapshot import snapshot

    with open_store(cluster) as store:
        c = snapshot(store)
    for s in c.endpoint_slices:
        if (s.metadata.namespace or "default") != ns:
            continue
        mine = [e for e in s.endpoints if e.target_ref is not None and e.target_ref.name == pod]
        if not mine:
            continue
        ready = [
            e.target_ref.name for e in s.endpoints if e.ready and e.target_ref and e.target_ref.name
        ]
        state = "ready" if any(e.ready for e in mine) else "not ready"
        print(
            f"service {ns}/{s.service_name}: {pod} {state}; ready endpoints: "
            f"{', '.join(sorted(ready)) or 'none'}"
        )
