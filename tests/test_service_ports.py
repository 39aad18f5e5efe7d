"""render.service_ports: the per-Service cache gives the ports of the last call for the
same objects, and builds again those of a Service whose object or slices changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from podnet.model.cluster import load_cluster
from podnet.model.service import EndpointSlice, Service
from podnet.render.service_ports import PortCache, service_ports

ROOT = Path(__file__).resolve().parent.parent


def test_the_cache_reuses_unchanged_services_and_builds_changed_ones() -> None:
    c = load_cluster([str(ROOT / "examples" / "services")])
    cache = PortCache()
    first = service_ports(c.services, c.endpoint_slices, cache)
    assert first == service_ports(c.services, c.endpoint_slices)  # same values as uncached
    again = service_ports(c.services, c.endpoint_slices, cache)
    assert all(a is b for a, b in zip(first, again, strict=True))
    # an equal copy is the same slice (compared by value once identity fails) ...
    web = next(s for s in c.endpoint_slices if s.service_name == "web")
    copied = tuple(s.model_copy() if s is web else s for s in c.endpoint_slices)
    assert all(a is b for a, b in zip(first, service_ports(c.services, copied, cache), strict=True))
    # ... a changed one makes its Service's ports anew, and only those
    fewer = web.model_copy(update={"endpoints": ()})
    slices = tuple(fewer if s is web else s for s in c.endpoint_slices)
    third = service_ports(c.services, slices, cache)
    rebuilt = {a.identity for a, b in zip(first, third, strict=True) if a is not b}
    assert rebuilt and all(i.startswith("svc-demo/web/") for i in rebuilt)
    assert third != first


def test_the_cache_forgets_deleted_services() -> None:
    c = load_cluster([str(ROOT / "examples" / "services")])
    cache = PortCache()
    service_ports(c.services, c.endpoint_slices, cache)
    kept = [s for s in c.services if s.metadata.name != "web"]
    ports = service_ports(kept, c.endpoint_slices, cache)
    assert not any(p.service == "web" for p in ports)
    assert ("svc-demo", "web") not in cache._by_service


# --- the incremental answer (PortCache remembers the last call) ---------------------------


def _svc(i: int, version: int) -> Service:
    ns = "a" if i % 3 else "b"
    spec: dict = {"clusterIP": f"10.96.{version % 200}.{i + 1}", "ports": [{"port": 80}]}
    if i % 5 == 4:
        spec = {"clusterIP": "None", "ports": [{"port": 80}]}  # headless: no ports
    return Service.model_validate(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}", "namespace": ns},
         "spec": spec}
    )  # fmt: skip


def _slice(i: int, j: int, version: int) -> EndpointSlice:
    ns = "a" if i % 3 else "b"
    return EndpointSlice.model_validate(
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": f"s{i}-{j}", "namespace": ns,
                      "labels": {"kubernetes.io/service-name": f"s{i}"}},
         "addressType": "IPv4", "ports": [{"port": 80}],
         "endpoints": [{"addresses": [f"10.244.{j}.{version % 250 + 1}"]}]}
    )  # fmt: skip


_ops = st.lists(
    st.tuples(
        st.sampled_from(["svc", "unsvc", "slice", "unslice", "shuffle"]),
        st.integers(0, 7),
        st.integers(0, 2),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(_ops, st.randoms(use_true_random=False))
def test_the_incremental_answer_is_the_full_walks(ops: list, rnd: Any) -> None:
    """Services and slices added, replaced (a new object: a new version), removed and
    reordered: the answer from the last call and the change is the answer of a walk over
    everything without a cache."""
    services = {i: _svc(i, 0) for i in range(0, 8, 2)}
    slices = {(i, 0): _slice(i, 0, 0) for i in range(0, 8, 2)}
    order = list(slices)
    cache = PortCache()
    assert service_ports(services.values(), [slices[k] for k in order], cache) == service_ports(
        services.values(), [slices[k] for k in order]
    )
    for version, (op, i, j) in enumerate(ops, start=1):
        if op == "svc":
            services[i] = _svc(i, version)
        elif op == "unsvc":
            services.pop(i, None)
        elif op == "slice":
            slices[(i, j)] = _slice(i, j, version)
            order = order if (i, j) in order else [*order, (i, j)]
        elif op == "unslice":
            slices.pop((i, j), None)
            order = [k for k in order if k != (i, j)]
        else:
            rnd.shuffle(order)
        listed = [slices[k] for k in order]
        fresh = service_ports(list(services.values()), listed)
        assert service_ports(list(services.values()), listed, cache) == fresh, (op, i, j)
