"""`podnet exec`: run a command inside a pod's, a node's or the internet client's network
namespace, with the pod's own /etc/resolv.conf and /etc/hosts as kubelet writes them."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from podnet.cli.live import keep_daemon
from podnet.cli.output import print_error
from podnet.datapath import netns
from podnet.enter.hosts import PodHosts, hosts_file
from podnet.enter.resolv import PodDNS, resolv_file
from podnet.enter.run import argv_for
from podnet.enter.targets import USAGE, TargetError, resolve
from podnet.render import runtime as rt
from podnet.state.files import state_dir

EXIT_USAGE = 2
USAGE_LINE = "podnet exec [--cluster NAME] NS/POD|node/NAME|internet [-c CONTAINER] -- CMD..."


def register(sub: Any) -> None:
    p = sub.add_parser(
        "exec",
        usage=USAGE_LINE,
        help="run a command inside a pod's, a node's or the internet client's namespace",
        description=(
            "Run CMD inside the network namespace of a pod (shared by its containers, so -c "
            "only checks the name), of a node, or of the internet client outside the cluster. "
            "A pod's command sees the pod's /etc/resolv.conf (cluster DNS, search path, "
            "ndots:5), /etc/hosts and hostname, as kubelet writes them. The exit status is "
            "CMD's."
        ),
    )
    p.add_argument("-c", "--container", help="a container of the pod (checked)")
    p.add_argument("--cluster", default=None, help="the cluster (default: podnet)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, our exit status; no usage dump
        raise TargetError(f"{message} (a target is {USAGE}): {USAGE_LINE}")


def _split(args: argparse.Namespace) -> tuple[str, str | None, str, list[str]]:
    """REMAINDER keeps `-c`/`--cluster` given after the target; read them here."""
    if "--" not in args.rest:
        raise TargetError(f"give the command after --: {USAGE_LINE}")
    i = args.rest.index("--")
    head, command = args.rest[:i], args.rest[i + 1 :]
    mini = _Parser(prog="podnet exec", add_help=False)
    mini.add_argument("target")
    mini.add_argument("-c", "--container")
    mini.add_argument("--cluster")
    opts = mini.parse_args(head)
    if not command:
        raise TargetError(f"no command after --: {USAGE_LINE}")
    container = opts.container or args.container
    cluster = opts.cluster or args.cluster or "podnet"
    return opts.target, container, cluster, command


def _stored_pod(root: Path, spec: str) -> tuple[PodDNS | None, PodHosts | None]:
    """The stored pod's dnsPolicy, dnsConfig and hostNetwork, and its hostname, subdomain
    and hostAliases; None when `spec` names no stored pod (a node, the internet client:
    resolve() says what is wrong)."""
    namespace, sep, name = spec.partition("/")
    if not sep:
        return None, None
    from podnet.model.pod import Pod
    from podnet.state.store import Store

    with Store.open(root) as store:
        stored = store.get("Pod", namespace, name)
    if stored is None:
        return None, None
    spec_ = Pod.model_validate({**stored.body, "kind": "Pod"}).spec
    cfg = spec_.dns_config
    dns = PodDNS(
        policy=spec_.dns_policy,
        host_network=spec_.host_network,
        nameservers=cfg.nameservers if cfg else (),
        searches=cfg.searches if cfg else (),
        options=tuple((o.name, o.value) for o in cfg.options) if cfg else (),
        configured=cfg is not None,
    )
    names = PodHosts(
        name=name,
        hostname=spec_.hostname,
        subdomain=spec_.subdomain,
        aliases=tuple((a.ip, a.hostnames) for a in spec_.host_aliases),
    )
    return dns, names


def _node_hosts() -> str:
    """This machine's /etc/hosts: a node's namespace shares it, so a hostNetwork pod's
    file starts from it, as kubelet's does from the node's."""
    try:
        return Path("/etc/hosts").read_text()
    except OSError:
        return ""


def entered(cluster: str, spec: str, container: str | None = None) -> tuple[list[str], str]:
    """The argv prefix that runs a command inside `spec` (NS/POD, node/NAME, internet) of
    `cluster`, with the pod's resolv.conf, /etc/hosts and hostname, and the target's label
    (TargetError: why not). `exec` and `curl` go in the same way."""
    root = state_dir(cluster)
    try:
        runtime = rt.load(root)
    except rt.RuntimeFileError:
        raise TargetError(
            f"no cluster {cluster}: {root / 'runtime.json'} does not exist "
            "(bring it up with podnet up)"
        ) from None
    dns, names = _stored_pod(root, spec)
    target = resolve(runtime, spec, container, dns, names, _node_hosts())
    if not netns.exists(target.netns):
        raise TargetError(f"the namespace {target.netns} of {target.label} does not exist")
    if os.geteuid() != 0:
        raise TargetError("podnet exec needs root (setns and a private mount namespace)")
    keep_daemon(cluster)
    resolv = resolv_file(root, target.resolv_name, target.resolv)
    hosts = None if target.hosts is None else hosts_file(root, target.hosts_name, target.hosts)
    hosts_arg = None if hosts is None else str(hosts)
    return argv_for(target.netns, str(resolv), target.hostname, [], hosts_arg), target.label


def run(args: argparse.Namespace) -> int:
    try:
        target_spec, container, cluster, command = _split(args)
        prefix, _ = entered(cluster, target_spec, container)
    except TargetError as e:
        print_error(str(e))
        return EXIT_USAGE
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [*prefix, *command])
