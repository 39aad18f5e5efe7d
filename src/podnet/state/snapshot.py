"""The cluster as the store holds it: every stored object read back and validated exactly
as the loader validates manifests, then built into one immutable Cluster."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from podnet.model.cluster import Cluster, build
from podnet.model.errors import InputError, Origin
from podnet.model.load import Loaded, LoadResult, validate_object
from podnet.state.network import NetworkConfig, from_meta
from podnet.state.placement import Placement, place
from podnet.state.store import PodKey, Store, Stored
from podnet.state.stored_kinds import KIND_NAMES

ParsedCache = dict[tuple[str, str, str], tuple[int, Loaded]]


def stored_objects(store: Store, cache: ParsedCache | None = None) -> LoadResult:
    """Every stored object, validated again as the loader does (origin `<store>`). With a
    cache, an object whose resource version did not change is not parsed again (a sync of
    a 1,000-pod cluster would otherwise spend most of its time here)."""
    result = LoadResult()
    problems = []
    skipped: Counter[str] = Counter()
    seen: set[tuple[str, str, str]] = set()
    for i, kind in enumerate(KIND_NAMES):
        if cache is None:
            listed: list[Stored | tuple[str, str, int]] = list(store.list(kind))
        else:  # the bodies of the objects that changed only
            listed = list(store.versions(kind))
        for j, row in enumerate(listed):
            ns, name, rv = (row.namespace, row.name, row.rv) if isinstance(row, Stored) else row
            key = (kind, ns, name)
            seen.add(key)
            hit = cache.get(key) if cache is not None else None
            if hit is not None and hit[0] == rv:
                result.objects.append(hit[1])
                continue
            o = row if isinstance(row, Stored) else store.get(kind, ns, name)
            assert o is not None  # read in the same transaction as its version
            # The loader mutates (raw defaults): each read parses the stored text anew
            # (Store._stored), so the body is this loop's own and needs no copy (a copy
            # cost ~0.1 s of every read of a 5,000-pod store).
            body = o.body
            body.setdefault("kind", kind)
            problems += validate_object(body, Origin("<store>", i, j), result, skipped)
            if cache is not None and result.objects and result.objects[-1].kind == kind:
                cache[key] = (o.rv, result.objects[-1])
    if cache is not None:
        for key in cache.keys() - seen:
            del cache[key]
    if problems:
        raise InputError(problems)
    return result


def snapshot(store: Store, cache: ParsedCache | None = None) -> Cluster:
    return build(stored_objects(store, cache), node_count=None)


@dataclass(frozen=True)
class StoredCluster:
    """One consistent read of a live cluster's store: what every sync and every view of
    the live cluster starts from."""

    revision: int
    cluster: Cluster
    net: NetworkConfig
    mode: str
    held: dict[PodKey, tuple[str, str]]
    nodes: dict[str, tuple[str, str]]  # the node table: name -> (ip, podCIDR)

    def placement(self) -> Placement:
        """Pods keep the addresses they hold and nodes their ranges; new ones get one
        (strict: every problem is an InputError, as at `up`)."""
        return place(self.cluster, self.net, held=self.held, strict=True, nodes=self.nodes)


def read_cluster(store: Store, cache: ParsedCache | None = None) -> StoredCluster:
    """The stored cluster, in one read transaction."""
    with store.snapshot():
        return StoredCluster(
            revision=store.revision(),
            cluster=snapshot(store, cache),
            net=from_meta(store.get_meta("config")),
            mode=str(store.get_meta("mode", "host-gw")),
            held=store.held(),
            nodes=store.nodes(),
        )
