"""render.service_ports: the per-Service cache gives the ports of the last call for the
same objects, and builds again those of a Service whose object or slices changed."""

from __future__ import annotations

from pathlib import Path

from podnet.model.cluster import load_cluster
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
