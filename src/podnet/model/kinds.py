"""Which API kinds podnet reads, and the model class of each."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

WORKLOAD_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"})

# kind -> (module of podnet.model, class name)
_WHERE: dict[str, tuple[str, str]] = {
    "Namespace": ("cluster_objects", "Namespace"),
    "Node": ("cluster_objects", "Node"),
    "Pod": ("pod", "Pod"),
    "Service": ("service", "Service"),
    "Endpoints": ("service", "Endpoints"),
    "EndpointSlice": ("service", "EndpointSlice"),
    "Ingress": ("ingress", "Ingress"),
    "IngressClass": ("ingress", "IngressClass"),
    "Secret": ("secret", "Secret"),
    "NetworkPolicy": ("networkpolicy", "NetworkPolicy"),
    "CronJob": ("workloads", "CronJob"),
    **dict.fromkeys(WORKLOAD_KINDS, ("workloads", "Workload")),
}


# Models nested in several kinds' models, or built on their own too (a default factory or
# the expansion makes one; expansion hashes a pod template's JSON): built before the first
# kind that holds them, so that its schema takes theirs as it is (pydantic reuses a complete
# model's schema, as it does without defer_build) instead of generating them once more.
# ~10 ms of `analyze` of the example (issue 8 point 4).
_META = (("meta", "OwnerReference"), ("meta", "ObjectMeta"))
_POD = (*_META, ("pod", "PodSpec"))
_LB = (*_META, ("service", "LoadBalancerStatus"))
_PARTS_FIRST: dict[str, tuple[tuple[str, str], ...]] = {
    "pod": _POD,
    "workloads": (*_POD, ("pod", "PodTemplate")),
    "service": (*_LB, ("service", "ServiceStatus")),
    "ingress": (*_LB, ("ingress", "IngressStatus")),
    "cluster_objects": (*_META, ("cluster_objects", "NodeSpec"), ("cluster_objects", "NodeStatus")),
}


class _Models(Mapping[str, "type[BaseModel]"]):
    """The model class of each kind, its module imported when an object of the kind is
    first read: defining pydantic classes is most of the model's import time, and `apply`
    of one pod (on the way of a change to enforcement) needs the Pod's classes only."""

    def __init__(self) -> None:
        self._loaded: dict[str, type[BaseModel]] = {}

    def __getitem__(self, kind: str) -> type[BaseModel]:
        model = self._loaded.get(kind)
        if model is None:
            module, name = _WHERE[kind]
            for part_module, part in _PARTS_FIRST.get(module, _META):
                _model(part_module, part).model_rebuild()  # at once when already built
            model = self._loaded[kind] = _model(module, name)
        return model

    def __iter__(self) -> Iterator[str]:
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)


def _model(module: str, name: str) -> type[BaseModel]:
    return getattr(importlib.import_module(f"podnet.model.{module}"), name)  # type: ignore[no-any-return]


MODELS: Mapping[str, type[BaseModel]] = _Models()

CLUSTER_SCOPED = frozenset({"Namespace", "Node", "IngressClass"})


def identity(kind: str, namespace: str | None, name: str) -> str:
    """How messages name an object: `Pod web/api-0`, `Namespace web`."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
