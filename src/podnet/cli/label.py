"""`podnet label KIND NAME KEY=VALUE|KEY- ... [-n NS] [--overwrite]`: set or remove labels
of a pod or namespace of a running cluster; returns once the cluster enforces it."""

from __future__ import annotations

import argparse
import re
from typing import Any

from podnet.cli.live import add_cluster_arg, open_store, preflight, wait_synced
from podnet.cli.resources import kind_of
from podnet.model.errors import InputError

LABELLED = ("Pod", "Namespace")
_LABEL = re.compile(r"^([^=\s]+)=(.*)$")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "label",
        help="set or remove labels of a pod or namespace",
        description="KEY=VALUE sets a label, KEY- removes it; changing a label that has a "
        "value needs --overwrite (as kubectl).",
    )
    p.add_argument("kind", metavar="KIND", help="pods or namespaces")
    p.add_argument("name", metavar="NAME")
    p.add_argument("labels", nargs="+", metavar="KEY=VALUE|KEY-")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("--overwrite", action="store_true", help="replace existing values")
    add_cluster_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Not state.changes and model.kinds: they build the model's pydantic classes, which
    # would take most of this command's time.
    from podnet.state.labels import label_object

    if (status := preflight("label", args.cluster)) is not None:
        return status
    kind = kind_of(args.kind)
    if kind not in LABELLED:
        raise InputError.line(f"label works on pods and namespaces, not {args.kind!r}")
    changes = [parse_label(text) for text in args.labels]
    ns = "" if kind == "Namespace" else args.namespace
    with open_store(args.cluster) as store:
        revision = label_object(store, kind, ns, args.name, changes, args.overwrite)
    print(f"{kind.lower()}/{args.name} labeled")
    return wait_synced(args.cluster, revision)


def parse_label(text: str) -> tuple[str, str | None]:
    """KEY=VALUE -> (KEY, VALUE); KEY- -> (KEY, None)."""
    if text.endswith("-") and "=" not in text:
        return text[:-1], None
    m = _LABEL.match(text)
    if not m:
        raise InputError.line(f"label {text!r}: expected KEY=VALUE or KEY-")
    return m.group(1), m.group(2)
