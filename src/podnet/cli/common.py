"""Arguments shared by the commands that read manifests."""

from __future__ import annotations

import argparse
import contextlib
import gc
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily: every command pays for what it uses only
    import ipaddress

    from podnet.model.cluster import Cluster
    from podnet.policy.engine import Engine
    from podnet.state.network import NetworkConfig


@contextlib.contextmanager
def without_cycle_collection() -> Iterator[None]:
    """A one-shot analysis builds a snapshot of millions of objects that live until the
    command ends; the cyclic collector would walk all of them again at every collection
    while they grow (half of the time at 20,000 pods) to find cycles the analysis does not
    make. Reference counting still frees everything else; the collector is back on after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def add_manifest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="append",
        required=True,
        metavar="PATH",
        help="manifest file, folder (recursive: .yaml, .yml, .json) or - for stdin; repeatable",
    )


def add_cluster_cidr_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cluster-cidr",
        type=_cidr,
        default=None,
        metavar="CIDR",
        help="the pod network, split into one /24 per node (default 10.244.0.0/16: 256 "
        "nodes; a cluster of more nodes needs a larger one, as kube-controller-manager's "
        "--cluster-cidr)",
    )


def _cidr(text: str) -> ipaddress.IPv4Network:
    import ipaddress

    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 CIDR: {e}") from None
    if net.prefixlen > 24:
        raise argparse.ArgumentTypeError(f"{text}: must hold at least one /24 node range")
    return net


def network_config(args: argparse.Namespace) -> NetworkConfig:
    """The address plan the arguments ask for (DESIGN.md's defaults otherwise)."""
    from podnet.state.network import NetworkConfig

    cidr = getattr(args, "cluster_cidr", None)
    return NetworkConfig(cluster_cidr=cidr) if cidr is not None else NetworkConfig()


def add_ipblock_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ipblock-pods",
        choices=("match", "ignore"),
        default="match",
        help="whether ipBlock peers match pod addresses: match (upstream e2e tests, Calico; "
        "default) or ignore (Cilium: only addresses outside the cluster)",
    )


def add_hostnetwork_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hostnetwork-pods",
        choices=("node", "pod"),
        default="node",
        help="how hostNetwork pods are read: node (their traffic is their node's: no selector "
        "matches them, no policy isolates them, their own node always reaches them; default, "
        "as Calico, Cilium, kube-network-policies) or pod (pods like any other, at their node's address, as "
        "network-config-analyzer)",
    )


def load_engine(args: argparse.Namespace) -> tuple[Cluster, Engine]:
    from podnet.cli.output import print_warnings
    from podnet.model.cluster import load_cluster
    from podnet.policy.engine import Engine
    from podnet.state.placement import place

    cluster = load_cluster(args.files)
    placement = place(cluster, network_config(args))
    engine = Engine(
        cluster, placement, ipblock_pods=args.ipblock_pods, hostnetwork_pods=args.hostnetwork_pods
    )
    print_warnings([*cluster.warnings, *engine.placement.warnings])
    return cluster, engine
