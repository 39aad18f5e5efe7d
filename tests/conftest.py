"""Shared helpers for the NetworkPolicy semantics tests: endpoints by name, and the verdict
check that every table-driven case uses."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from podnet.policy.addresses import AddressSet
from podnet.policy.engine import Endpoint, Engine, External
from podnet.policy.ports import PortProto
from podnet.testing import engine

# Live test clusters are built from exactly the manifests each test gives: no DNS add-on
# (its pod would take addresses and count among the pods). Tests of cluster DNS and of
# Services pass `--cluster-dns on`.
os.environ.setdefault("PODNET_CLUSTER_DNS", "off")

# (source, destination, "80/TCP", expected): a pod is "ns/name", an outside peer is "ext:CIDR".
Check = tuple[str, str, str, bool]


def endpoint(e: Engine, name: str) -> Endpoint:
    if name.startswith("ext:"):
        cidr = name.removeprefix("ext:")
        cidr = cidr if "/" in cidr else f"{cidr}/32"
        return External(cidr, AddressSet.cidr(cidr))
    return e.by_key[name]


def port(text: str) -> PortProto:
    number, _, proto = text.partition("/")
    return PortProto(int(number), proto or "TCP")


def verify(e: Engine, checks: Iterable[Check]) -> None:
    """Every check at once, so that a failure lists all wrong verdicts, not just the first."""
    wrong = []
    for src, dst, pp, expected in checks:
        got = e.allowed(endpoint(e, src), endpoint(e, dst), port(pp))
        if got != expected:
            wrong.append(f"{src} -> {dst} {pp}: expected {expected}, engine says {got}")
    assert not wrong, "\n".join(wrong)


@pytest.fixture
def check() -> Callable[..., None]:
    """check(docs, checks, ipblock_pods="match"): build the engine and verify every check."""

    def run(docs: list[dict[str, Any]], checks: list[Check], ipblock_pods: str = "match") -> None:
        verify(engine(*docs, ipblock_pods=ipblock_pods), checks)

    return run
