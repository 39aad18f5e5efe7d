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
            model = getattr(importlib.import_module(f"podnet.model.{module}"), name)
            self._loaded[kind] = model
        return model

    def __iter__(self) -> Iterator[str]:
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)


MODELS: Mapping[str, type[BaseModel]] = _Models()

CLUSTER_SCOPED = frozenset({"Namespace", "Node", "IngressClass"})


def identity(kind: str, namespace: str | None, name: str) -> str:
    """How messages name an object: `Pod web/api-0`, `Namespace web`."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
