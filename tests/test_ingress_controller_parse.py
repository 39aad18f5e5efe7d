"""The ingress controller takes the objects the daemon's reconciler parsed at the same
resource version (its ParsedCache) instead of validating them a third time, and parses
anew whatever the cache holds at another version; either way the same configuration."""

from __future__ import annotations

from pathlib import Path

import yaml

from podnet.controller.ingress_controller import IngressController
from podnet.model.cluster import load_cluster
from podnet.model.load import load
from podnet.state import changes as change
from podnet.state.changes import store_cluster
from podnet.state.ingress_addon import with_ingress_controller
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.service_alloc import with_services
from podnet.state.snapshot import ParsedCache, stored_objects
from podnet.state.store import Store
from podnet.testing import ingress, namespace, pod, rule, service

KEY = ("Ingress", "web", "i1")


def _store(root: Path) -> Path:
    docs = [
        namespace("web"),
        pod("web/a", labels={"app": "a"}, ports=[{"name": "http", "containerPort": 8080}]),
        service("web/s", selector={"app": "a"}, ports=[{"port": 80, "targetPort": "http"}]),
        ingress("web/i0", [rule("zero.test", ("/", "Prefix", "s"))]),
        ingress("web/i1", [rule("one.test", ("/", "Prefix", "s"))]),
    ]
    path = root / "up.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    net = NetworkConfig()
    cluster = with_services(with_ingress_controller(load_cluster([str(path)])), net)
    sdir = root / "state"
    with Store.open(sdir) as s:
        store_cluster(s, cluster, place(cluster, net, strict=True), "c1", "host-gw", net)
    return sdir


def _parsed(sdir: Path) -> ParsedCache:
    cache: ParsedCache = {}
    with Store.open(sdir) as s, s.snapshot():
        stored_objects(s, cache)  # as the reconciler's sync fills its cache
    return cache


def test_objects_the_reconciler_parsed_are_taken_as_they_are(tmp_path: Path) -> None:
    sdir = _store(tmp_path)
    cache = _parsed(sdir)
    shared = IngressController(sdir, "c1", cache)
    desired = shared.desired()
    alone = IngressController(sdir, "c1").desired()
    assert desired is not None and alone is not None
    assert desired.conf == alone.conf and "one.test" in desired.conf
    assert shared._cache[KEY][1] is cache[KEY][1].obj  # not validated again


def test_another_version_is_parsed_anew(tmp_path: Path) -> None:
    sdir = _store(tmp_path)
    cache = _parsed(sdir)  # the reconciler has not synced the update below yet
    update = tmp_path / "update.yaml"
    update.write_text(yaml.safe_dump(ingress("web/i1", [rule("uno.test", ("/", "Prefix", "s"))])))
    with Store.open(sdir) as s:
        change.apply_objects(s, load([str(update)]).objects)
    shared = IngressController(sdir, "c1", cache)
    desired = shared.desired()
    assert desired is not None
    assert "uno.test" in desired.conf and "one.test" not in desired.conf
    assert shared._cache[KEY][1] is not cache[KEY][1].obj
    assert desired.conf == IngressController(sdir, "c1").desired().conf  # type: ignore[union-attr]
