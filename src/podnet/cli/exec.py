"""`podnet exec`: run a command inside a pod's, a node's or the internet client's network
namespace, with the pod's own /etc/resolv.conf as kubelet writes it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from podnet.cli.live import keep_daemon
from podnet.cli.output import print_error
from podnet.datapath import netns
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
            "ndots:5) and hostname. The exit status is CMD's."
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


def _pod_dns(root: Path, spec: str) -> PodDNS | None:
    """The stored pod's dnsPolicy, dnsConfig and hostNetwork; None when `spec` names no
    stored pod (a node, the internet client: resolve() says what is wrong)."""
    namespace, sep, name = spec.partition("/")
    if not sep:
        return None
    from podnet.model.pod import Pod
    from podnet.state.store import Store

    with Store.open(root) as store:
        stored = store.get("Pod", namespace, name)
    if stored is None:
        return None
    spec_ = Pod.model_validate({**stored.body, "kind": "Pod"}).spec
    cfg = spec_.dns_config
    return PodDNS(
        policy=spec_.dns_policy,
        host_network=spec_.host_network,
        nameservers=cfg.nameservers if cfg else (),
        searches=cfg.searches if cfg else (),
        options=tuple((o.name, o.value) for o in cfg.options) if cfg else (),
        configured=cfg is not None,
    )


def entered(cluster: str, spec: str, container: str | None = None) -> tuple[list[str], str]:
    """The argv prefix that runs a command inside `spec` (NS/POD, node/NAME, internet) of
    `cluster`, with the pod's resolv.conf, and the target's label (TargetError: why not).
    `exec` and `curl` go in the same way."""
    root = state_dir(cluster)
    try:
        runtime = rt.load(root)
    except rt.RuntimeFileError:
        raise TargetError(
            f"no cluster {cluster}: {root / 'runtime.json'} does not exist "
            "(bring it up with podnet up)"
        ) from None
    target = resolve(runtime, spec, container, _pod_dns(root, spec))
    if not netns.exists(target.netns):
        raise TargetError(f"the namespace {target.netns} of {target.label} does not exist")
    if os.geteuid() != 0:
        raise TargetError("podnet exec needs root (setns and a private mount namespace)")
    keep_daemon(cluster)
    resolv = resolv_file(root, target.resolv_name, target.resolv)
    return argv_for(target.netns, str(resolv), target.hostname, []), target.label


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
