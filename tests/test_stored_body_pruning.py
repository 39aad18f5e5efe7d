"""state.changes body_of's pruning (the API server's JSON omits empty fields; an empty
selector stays): the one-pass version against the rule written as plainly as it reads,
over random JSON values, and the cases that matter named."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from podnet.state.changes import KEEP_EMPTY, _pruned


def plain(value: Any) -> Any:
    """Prune the children, then drop every field that is {}, [], "" or None, except an
    empty selector."""
    if isinstance(value, dict):
        out = {k: plain(v) for k, v in value.items()}
        return {
            k: v
            for k, v in out.items()
            if v not in ({}, [], "", None) or (k in KEEP_EMPTY and v == {})
        }
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


KEYS = st.sampled_from(["a", "b", "podSelector", "namespaceSelector", "ports"])
ATOMS = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["", "x"]))
JSON = st.recursive(
    ATOMS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_one_pass_equals_the_plain_rule(value: Any) -> None:
    got = _pruned(value)
    assert got == plain(value)
    assert repr(got) == repr(plain(value))  # same order, False and 0 kept apart


def test_cases() -> None:
    body = {
        "metadata": {"name": "x", "labels": {}, "annotations": None},
        "spec": {
            "podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"a": ""}}]}],
            "egress": [],
            "policyTypes": ["Ingress"],
            "x": {"y": {"z": ""}},
            "port": 0,
            "enabled": False,
        },
    }
    assert _pruned(body) == {
        "metadata": {"name": "x"},
        "spec": {
            "podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {}}]}],
            "policyTypes": ["Ingress"],
            "port": 0,
            "enabled": False,
        },
    }
